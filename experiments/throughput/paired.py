"""One block's training step, this checkout against a baseline commit, in alternating processes (paired ratios).

    python experiments/throughput/paired.py OUT suites/smoke_all.yaml --block mamba2 --baseline a4f1403 \\
        [--steps 30] [--pairs 8] [--threads 1]

On this VM whole-step timings drift by 10-20% within minutes, so a before/after figure taken as two separate runs
is noise. Here each pair is one process of this checkout's code and one of the baseline's (``git archive`` into
``OUT``; the child imports it from ``PYTHONPATH`` and says which ``rad_bench`` it ran), one right after the other,
each training ``--steps`` steps of the suite's model (its first sweep point, ``train.compile=off``) and reporting
``train``'s seconds per step. Prints each pair and the median of the ratios (this / baseline) with their range and
how many pairs were faster. Nothing else should run on the machine.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path


def child(suite_path: str, block: str, steps: int, threads: int) -> None:
    import torch

    import rad_bench
    from rad_bench.build import make_dataset, make_model
    from rad_bench.config import load_suite
    from rad_bench.model.diffusion import Diffusion
    from rad_bench.train import train
    from rad_bench.utils import seed_everything

    torch.set_num_threads(threads)
    suite = load_suite(suite_path, ["train.eval_every=0", "train.compile=off"])
    if "episodes" in type(suite.data).model_fields:  # only a few batches are drawn: do not generate 1000 worlds
        suite = suite.model_copy(update={"data": suite.data.model_copy(update={"episodes": 16})})
    data, diffusion = make_dataset(suite, seed=0), Diffusion.of(suite.diffusion)
    (spec,) = [s for s in suite.blocks if s.name == block]
    seed_everything(0)
    model = make_model(suite, spec, data, "cpu")
    cfg = suite.train.model_copy(update={"steps": steps})
    stats = train(model, diffusion, data, cfg, seed=0, device="cpu", progress=False)
    print(json.dumps({"step_s": stats.step_s, "rad_bench": rad_bench.__file__}))


def one(code: Path | None, a: argparse.Namespace) -> float:
    env = dict(os.environ)
    if code is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    cmd = [sys.executable, __file__, "--child", str(a.out), a.suite, "--block", a.block]
    cmd += ["--steps", str(a.steps), "--threads", str(a.threads)]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    row = json.loads(done.stdout.strip().splitlines()[-1])
    root = code or Path(__file__).resolve().parents[2]
    if not Path(row["rad_bench"]).resolve().is_relative_to(root.resolve()):
        sys.exit(f"the child imported rad_bench from {row['rad_bench']}, not from {root}")
    return row["step_s"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("suite")
    p.add_argument("--block", required=True)
    p.add_argument("--baseline", default="a2ad65d")
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--pairs", type=int, default=8)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.child:
        return child(a.suite, a.block, a.steps, a.threads)
    from rad_bench.bench.suites import baseline_code

    a.out.mkdir(parents=True, exist_ok=True)
    base = baseline_code(a.baseline, a.out)
    ratios = []
    for i in range(a.pairs):
        new, old = one(None, a), one(base, a)
        ratios.append(new / old)
        print(f"pair {i}: this {new * 1e3:.1f} ms/step, {a.baseline} {old * 1e3:.1f} ms/step, ratio {new / old:.3f}")
    faster = sum(r < 1 for r in ratios)
    print(
        f"{a.block} at {a.suite}, {a.threads} thread(s), {a.steps} steps a process: this / {a.baseline} = "
        f"{statistics.median(ratios):.2f}x [{min(ratios):.2f}, {max(ratios):.2f}] over {len(ratios)} pairs "
        f"({faster} faster)"
    )


if __name__ == "__main__":
    main()
