"""Section 6, ``steps``: each block's training step against ``none``'s at the recall and the smoke sizes, at one
torch thread (what each process of a CPU suite runs under ``launcher.workers: auto``). Issue 25's target: no block's
step slower than 2x ``none``'s."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rad_bench.bench.common import Bench, log
from rad_bench.build import make_dataset, make_model
from rad_bench.config import load_suite
from rad_bench.model.diffusion import Diffusion
from rad_bench.mqar.train import torch_threads
from rad_bench.train import train
from rad_bench.utils import seed_everything

SUITES = Path(__file__).resolve().parents[2] / "suites"
SIZES = {"recall": SUITES / "recall.yaml", "smoke": SUITES / "smoke_all.yaml"}  # the smoke size: every block
STEP_TARGET = 2.0  # max step time, block / none
FULL_STEPS = {"recall": 20, "smoke": 10}  # steps per timed repetition (the smoke step is about 2.5x the recall one)


def size_rows(b: Bench, size: str, path: Path) -> list[dict[str, Any]]:
    """Seconds per training step of every block of the suite at ``path`` (its first sweep point): median and spread
    of 5 timed runs of :data:`FULL_STEPS` steps after 5 untimed steps (``--quick``: one run after one step)."""
    suite = load_suite(path, ["train.eval_every=0", "train.compile=off"])
    if "episodes" in type(suite.data).model_fields:  # a world generated up front: generate only what is sampled
        suite = suite.model_copy(update={"data": suite.data.model_copy(update={"episodes": b.sizes.episodes})})
    data, diffusion = make_dataset(suite, seed=0), Diffusion.of(suite.diffusion)
    quick = b.sizes.reps == 1
    steps, reps, warmup = (b.sizes.train_steps, 1, 1) if quick else (FULL_STEPS[size], max(b.sizes.reps, 3), 5)
    rows = []
    for spec in suite.blocks:
        seed_everything(0)
        model = make_model(suite, spec, data, b.device)

        def run(n: int, model=model) -> float:
            cfg = suite.train.model_copy(update={"steps": n})
            return train(model, diffusion, data, cfg, seed=0, device=b.device, progress=False).step_s

        run(warmup)
        times = sorted(run(steps) for _ in range(reps))
        row = b.row(size=size, suite=path.name, block=spec.display, threads=1, steps=steps, reps=len(times))
        row.update(s_per_step=times[len(times) // 2], s_per_step_lo=times[0], s_per_step_hi=times[-1])
        rows.append(row)
        log(f"steps {size:6s} {spec.display:12s} {row['s_per_step'] * 1e3:7.1f} ms/step (1 thread)")
    return rows


def bench_steps(b: Bench) -> list[dict[str, Any]]:
    with torch_threads(1):
        return [r for size, path in SIZES.items() for r in size_rows(b, size, path)]
