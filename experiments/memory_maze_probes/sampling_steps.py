"""Memory Maze probe (issue 12): one trained cell rolled out with several DDIM step counts on the
validation episodes; PSNR of generated frames 0-1 (the retrace's in-window frames) and 2+ (revisits).

    python experiments/memory_maze_probes/sampling_steps.py RUN_DIR CELL [STEPS ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from cells import psnr

from rad_bench.reuse import load_cell
from rad_bench.rollout import EVAL_NOISE_SEED, rollout


@torch.no_grad()
def main(run: Path, cell: str, steps: list[int]) -> None:
    done = load_cell(run, cell)
    suite, model, diffusion, ev = done.suite, done.model, done.diffusion, done.eval_set
    r = suite.rollout
    truth = ev.frames[:, r.context :]
    for n in steps:
        g = torch.Generator().manual_seed(EVAL_NOISE_SEED)
        out, _ = rollout(model, diffusion, ev.frames, ev.actions, context=r.context, horizon=r.horizon,
                         sampling_steps=n, g=g, progress=False)  # fmt: skip
        print(f"{cell} {n:3d} DDIM steps: frames 0-1 {psnr(out[:, :2], truth[:, :2]):.2f} dB, "
              f"frames 2+ {psnr(out[:, 2:], truth[:, 2:]):.2f} dB")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], [int(s) for s in sys.argv[3:]] or [10, 25, 50])
