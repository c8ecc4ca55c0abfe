"""How well a trained Memory Maze cell predicts the first generated frame (issue 12 diagnostic).

For generated frame 0 (an in-window frame: the retrace shows context frame ``context - 2`` again,
inside the attention window), on the validation episodes: PSNR of the model's x0 prediction from
the ground truth noised to level k, for several k (k = T is pure noise, i.e. the one-step
prediction), and PSNR of full DDIM samples with several step counts. Scores frame 0 only.

    python experiments/memory_maze_probes/denoise.py RUN_DIR CELL   # e.g. results/memory_maze/<run> full_attn-s0
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from cells import psnr

from rad_bench.reuse import load_cell
from rad_bench.rollout import commit, denoiser


@torch.no_grad()
def main(run: Path, cell: str) -> None:
    done = load_cell(run, cell)
    suite, model, diffusion, ev = done.suite, done.model, done.diffusion, done.eval_set
    r = suite.rollout
    c = r.context
    state = commit(model, ev.frames[:, :c], ev.actions[:, :c], None)
    truth, predict = ev.frames[:, c : c + 1], denoiser(model, ev.actions[:, c : c + 1], state)
    print(f"{cell}, validation episodes, generated frame 0; copy_last {psnr(ev.frames[:, c - 1 : c], truth):.2f} dB")
    g = torch.Generator().manual_seed(0)
    for k in (50, 200, 500, 800, diffusion.T):
        levels = torch.full(truth.shape[:2], k, dtype=torch.long)
        xk = diffusion.q_sample(truth, levels, torch.randn(truth.shape, generator=g))
        x0, _ = diffusion.to_x0_eps(xk, levels, predict(xk, levels))
        print(f"x0 prediction from level {k:4d}: {psnr(x0, truth):.2f} dB")
    for steps in (1, 3, 10):
        sample = diffusion.sample(predict, torch.randn(truth.shape, generator=g), steps)
        print(f"DDIM sample, {steps:2d} steps: {psnr(sample, truth):.2f} dB")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
