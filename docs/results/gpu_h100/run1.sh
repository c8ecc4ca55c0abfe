# device run of `make gpu-check` (not committed: .gpu/ holds carried wheels and weight files)
set -u
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .gpu/whl/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/.gpu/site PYTHONUNBUFFERED=1
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; python3 -c "import torch, sys, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__, sys.version.split()[0])"; nproc; } 2>&1 | tee $OUT/device.txt
python3 -c "import rad_bench.metrics.lpips as l, rad_bench.metrics.i3d as i; print('lpips', l.weights_sha256()[:12], 'i3d', i.weights_sha256()[:12])"
timeout ${GC_LIMIT:-520} python3 -m rad_bench.bench.gpu_check --out /tmp/gc; echo "gpu_check rc=$?"
cp /tmp/gc/gpu_check.md $OUT/ 2>/dev/null
tar czf $OUT/gc.tgz --exclude='*.pt' --exclude='*.ckpt' -C /tmp gc
for f in /tmp/gc/step*.log; do echo "== $f"; tail -25 $f; done
