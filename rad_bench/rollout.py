"""Autoregressive rollout far past the attention window, carrying every block's state.

The model is conditioned on ``context`` ground-truth frames (one parallel call, level 0), then
generates ``horizon`` frames one at a time with ground-truth actions. Each new frame is denoised
from pure noise with the DDIM sampler while reading the cached state; once clean, it is
*committed*: one more call at level 0 advances the temporal KV cache and the memory blocks.
So the state is always built from clean frames, as in training with clean context frames, and
the cost per frame is ``sampling_steps + 1`` single-frame calls, whatever the rollout length
(except for blocks whose state grows, e.g. ``full_attn``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import Tensor
from tqdm.auto import tqdm

from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import VideoDiT


@dataclass
class RolloutStats:
    seconds: float = 0.0
    frames: int = 0
    state_bytes: list[int] = field(default_factory=list)  # after each committed frame (KV + memory)

    @property
    def frames_per_s(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


@torch.no_grad()
def rollout(
    model: VideoDiT,
    diffusion: Diffusion,
    frames: Tensor,  # (b, >= context, c, H, W) ground truth; only the context is read
    actions: Tensor,  # (b, context + horizon, a)
    *,
    context: int,
    horizon: int,
    sampling_steps: int,
    g: torch.Generator,
    progress: bool = True,
    desc: str = "rollout",
) -> tuple[Tensor, RolloutStats]:
    """Generated frames ``(b, horizon, c, H, W)`` and timing/state statistics."""
    device = next(model.parameters()).device
    b, c, hw = frames.shape[0], frames.shape[2], frames.shape[3:]
    stats = RolloutStats()
    t_start = time.perf_counter()
    zeros = lambda t: torch.zeros(b, t, dtype=torch.long, device=device)  # noqa: E731
    ctx = frames[:, :context].to(device)
    _, state = model(ctx, zeros(context), actions[:, :context].to(device))
    out = []
    for i in tqdm(range(horizon), desc=desc, disable=not progress, leave=False, dynamic_ncols=True):
        a = actions[:, context + i : context + i + 1].to(device)
        noise = torch.randn(b, 1, c, *hw, generator=g).to(device)
        x0 = diffusion.sample(lambda x, k: model(x, k, a, state)[0], noise, sampling_steps)
        _, state = model(x0, zeros(1), a, state)  # commit the clean frame
        out.append(x0)
        stats.state_bytes.append(sum(state.nbytes()))
    stats.seconds = time.perf_counter() - t_start
    stats.frames = b * horizon
    return torch.cat(out, dim=1).cpu(), stats
