"""``make gpu-check``: one command for a machine with one GPU, at most 9 min 20 s (its steps' limits).

    python -m rad_bench.bench.gpu_check [--out results/gpu-check]

Four steps, each a subprocess with its own time limit, then a short summary (``gpu_check.md``):

1. ``pytest -m cuda``: the CUDA-marked tests (every block's train step, state prefetch and rollout
   step on CUDA against the CPU result, the bf16 fast path; the SSD kernel against its reference);
2. every block trained 200 steps and rolled out on CUDA: ``rad-bench run suites/smoke_all.yaml``
   with ``train.steps=200`` and ``device=cuda`` (the fast path ``auto`` picks: compile, bf16, fused
   AdamW, batches drawn ahead), every cell at once (``--workers 8``);
3. ``rad-bench bench --device cuda --quick --section gpu``: the GPU rows (:mod:`rad_bench.bench.gpu`)
   at the ``dit_s`` preset (the other sections at full size take far longer than this check);
4. the summary: steps/s per block (step 2; its 200 steps include compiling), MFU at the ``dit_s``
   preset in bf16 and the SSD kernel vs reference errors (step 3), each step's verdict and wall time.

The limits come from the first H100 run (2026-11-28, torch 2.11): 18 of the CUDA tests took 28 s and
each compiled test about 45 s; a smoke cell about 2 min (57 s training, most of it compiling; 37 s
rollout; 25 s FVD); compiling one block's training step at ``dit_s`` about 30 s.

On a machine without CUDA it stops at once with exit code 2 and says so. CI stays CPU-only.
"""

from __future__ import annotations

import argparse
import csv
import subprocess
import sys
import time
from pathlib import Path

SUITE = Path(__file__).resolve().parents[2] / "suites" / "smoke_all.yaml"
NO_CUDA = (
    "gpu-check: no CUDA device here (torch {torch}, built for CUDA {cuda}); run it on a machine with one GPU "
    "and a CUDA build of torch (README, section GPU). Nothing was run."
)


def cuda_or_exit() -> None:
    import torch

    if not torch.cuda.is_available():
        print(NO_CUDA.format(torch=torch.__version__, cuda=torch.version.cuda), file=sys.stderr)
        raise SystemExit(2)


def step(name: str, cmd: list[str], limit_s: int, log: Path) -> tuple[str, float]:
    """Run one step, its output into ``log``; its verdict (``ok``, ``failed (exit n)``, ``timed out``)."""
    print(f"gpu-check: {name} ...", file=sys.stderr, flush=True)
    t = time.perf_counter()
    with log.open("w") as f:
        try:
            rc = subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, timeout=limit_s).returncode
            verdict = "ok" if rc == 0 else f"failed (exit {rc}; see {log})"
        except subprocess.TimeoutExpired:
            verdict = f"timed out after {limit_s} s (see {log})"
    return verdict, time.perf_counter() - t


def _rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(path.open())) if path.is_file() else []


def summary(out: Path, verdicts: dict[str, tuple[str, float]]) -> str:
    """The markdown summary of the steps' outputs under ``out``."""
    eff = [r for f in sorted((out / "runs").rglob("efficiency.csv")) for r in _rows(f)]
    gpu = _rows(out / "bench" / "gpu-cuda.csv")
    lines = ["# gpu-check", "", "| step | verdict | wall s |", "|---|---|---|"]
    lines += [f"| {k} | {v} | {s:.0f} |" for k, (v, s) in verdicts.items()]
    lines += [
        "",
        "## Training, smoke_all, 200 steps (steps/s per block)",
        "",
        "| block | steps/s | compile | precision |",
    ]
    lines += ["|---|---|---|---|"] + [
        f"| {r['block']} | {1 / float(r['train_step_s']):.1f} | {r.get('train_compile', '')} | "
        f"{r.get('train_precision', '')} |"
        for r in eff
    ]
    lines += [
        "",
        "## bench, GPU rows",
        "",
        "| kind | block | preset | dtype | value | unit |",
        "|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['kind']} | {r['block']} | {r.get('preset', '')} | {r.get('dtype', '')} | {float(r['value']):.4g} | "
        f"{r['unit']} |"
        for r in gpu
    ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="gpu-check", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("results/gpu-check"))
    args = p.parse_args(argv)
    cuda_or_exit()
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m"]
    run = [*py, "rad_bench", "run", str(SUITE), "--set", "train.steps=200", "--set", "device=cuda", "--no-progress"]
    bench = [*py, "rad_bench", "bench", "--device", "cuda", "--quick", "--section", "gpu", "--out", str(out / "bench")]
    steps = {  # name: (command, time limit in s); 9 min 20 s in all
        "pytest -m cuda": ([*py, "pytest", "-m", "cuda", "-q"], 150),
        "smoke_all, 200 steps, CUDA": ([*run, "--results", str(out / "runs"), "--workers", "8"], 210),
        "rad-bench bench --device cuda --quick --section gpu": (bench, 200),
    }
    verdicts = {}
    for i, (name, (cmd, limit)) in enumerate(steps.items()):
        verdicts[name] = step(name, cmd, limit, out / f"step{i + 1}.log")
    text = summary(out, verdicts)
    (out / "gpu_check.md").write_text(text)
    print(text)
    return 0 if all(v == "ok" for v, _ in verdicts.values()) else 1


if __name__ == "__main__":
    raise SystemExit(main())
