"""Memory Maze diagnostic (issue 12): where the window looks at the first retrace frame.

Generated frame 0 shows context frame c-2 again (c = context), inside the temporal window. For a
trained cell, on the validation episodes: the place ids of frames c-3..c+1, and per layer the
temporal attention weight (mean over clips, tokens and heads) on frames c-2 (the copy source), c-1
and the frame itself, when denoising from levels 1000 (pure noise), 500 and 100.

    python experiments/memory_maze_probes/attention.py RUN_DIR CELL   # e.g. results/memory_maze/<run> full_attn-s0

Version 2 (results/memory_maze/20261127-234347-65a0522 full_attn-s0): layer 0 put 0.71 on c-1 and 0.08
on c-2 at level 1000; the place ids of c-3..c+1 of clip 0 are all equal.
"""

import sys
from pathlib import Path

import torch
from einops import rearrange
from torch import Tensor

from rad_bench.model.layers import Attention
from rad_bench.reuse import load_cell
from rad_bench.rollout import commit, denoiser


def record_weights(att: Attention, layer: int, store: list[tuple[int, Tensor]]) -> None:
    """Make ``att`` compute its attention explicitly and append ``(layer, weights)``, the weights
    averaged over tokens and heads: ``(Lq, Lk)``."""

    def attend(q: Tensor, k: Tensor, v: Tensor, mask: Tensor | None = None) -> Tensor:
        s = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
        p = (s if mask is None else s.masked_fill(~mask, float("-inf"))).softmax(-1)
        store.append((layer, p.mean(dim=(0, 1))))
        return att.to_out(rearrange(p @ v, "s h l e -> s l (h e)"))

    att.attend = attend  # type: ignore[method-assign]


@torch.no_grad()
def main(run: Path, cell: str) -> None:
    done = load_cell(run, cell)
    suite, model, diffusion, ev = done.suite, done.model, done.diffusion, done.eval_set
    c = suite.rollout.context
    print("place ids c-3..c+1 (clip 0):", ev.places[0, c - 3 : c + 2].tolist())
    print("motion code at c-2 and c (clip 0):", ev.actions[0, c - 2, :6].tolist(), ev.actions[0, c, :6].tolist())
    store: list[tuple[int, Tensor]] = []
    for i, layer in enumerate(model.layers):
        record_weights(layer.temporal, i, store)
    state = commit(model, ev.frames[:, :c], ev.actions[:, :c], None)
    truth, predict = ev.frames[:, c : c + 1], denoiser(model, ev.actions[:, c : c + 1], state)
    noise = torch.randn(truth.shape, generator=torch.Generator().manual_seed(0))
    for level in (diffusion.T, 500, 100):
        store.clear()
        k = torch.full(truth.shape[:2], level)
        predict(diffusion.q_sample(truth, k, noise), k)
        for i, p in store:
            print(f"level {level} layer {i}: attention on [c-2, c-1, self] = {[round(float(v), 3) for v in p[-1]]}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
