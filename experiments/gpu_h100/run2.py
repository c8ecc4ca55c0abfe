# ruff: noqa  (kept as it ran on the H100 on 2026-11-28; its log is docs/results/gpu_h100/)
"""Run on the device as: PYTHONPATH=$PWD:<pydantic wheels>:<weight carriers> python3 experiments/gpu_h100/run2.py cuda
(at the working tree of the lstm_scan autocast fix and the CUDA test fix, before the train_flops fix).

Second device call: the fixed CUDA tests, the bench crash (bf16 rollout of every block), then the
GPU training rows (steps/s and bf16 MFU) at dit_s and tiny, printed as they come."""

import subprocess, sys, time, torch


def main() -> None:
    """As it ran (wrapped in a function so that importing the file runs nothing)."""
    dev = sys.argv[1] if len(sys.argv) > 1 else "cuda"
    t0 = time.perf_counter()
    if dev == "cuda":
        r = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-m",
                "cuda",
                "-q",
                "-o",
                "addopts=",
                "-rA",
                "-k",
                "rollout_step or kernel_matches or state_prefetch",
            ],
            capture_output=True,
            text=True,
            timeout=100,
        )
        print(
            "\n".join(
                l
                for l in r.stdout.splitlines()
                if l.startswith(("PASSED", "FAILED", "SKIPPED", "ERROR", "=")) or "Error" in l
            )[-3000:],
            flush=True,
        )
    print(f"[{time.perf_counter() - t0:.0f}s] tests done", flush=True)
    from rad_bench.bench.common import setup, QUICK, FULL
    from rad_bench.bench.rollout import rollout_rows
    from rad_bench.bench.gpu import bf16_peak, train_rows
    from dataclasses import replace

    b = setup(dev, QUICK)
    for spec in b.suite.blocks:
        try:
            rows = rollout_rows(b, spec, "bf16-autocast" if dev == "cuda" else "float32")
            print(f"rollout bf16 {spec.display}: ok {rows[-1]['ms_per_frame']:.1f} ms/frame (quick sizes)", flush=True)
        except Exception as e:
            print(f"rollout bf16 {spec.display}: FAILED {type(e).__name__}: {str(e)[:200]}", flush=True)
    print(f"[{time.perf_counter() - t0:.0f}s] bf16 rollouts done", flush=True)
    if dev == "cuda":
        peak = bf16_peak(dev)
        print(f"bf16 peak {peak / 1e12:.0f} TFLOP/s", flush=True)
        bf = setup(dev, FULL)
        for preset in ("dit_s", "tiny"):
            for spec in bf.suite.blocks:
                one = replace(bf, suite=bf.suite.model_copy(update={"blocks": [spec]}))
                try:
                    train_rows(one, preset, peak)
                except Exception as e:
                    print(f"train {preset} {spec.display}: FAILED {type(e).__name__}: {str(e)[:200]}", flush=True)
                print(f"[{time.perf_counter() - t0:.0f}s]", flush=True)


if __name__ == "__main__":
    main()
