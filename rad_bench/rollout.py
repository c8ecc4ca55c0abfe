"""Autoregressive rollout far past the attention window, carrying every block's state.

The model is conditioned on ``context`` ground-truth frames (one parallel call, level 0), then
generates ``horizon`` frames one at a time with ground-truth actions. Each new frame is denoised
from pure noise with the DDIM sampler while reading the cached state; once clean, it is
*committed*: one more call at level 0 advances the temporal KV cache and the memory blocks.
So the state is always built from clean frames, as in training with clean context frames, and
the cost per frame is ``sampling_steps + 1`` single-frame calls, whatever the rollout length
(except for blocks whose state grows, e.g. ``full_attn``). Frame-wise training
(:func:`rad_bench.modes.frame_loss_naive`) goes through the same :func:`denoiser` and :func:`commit`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn
from tqdm.auto import tqdm

from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import DiTState, VideoDiT

if TYPE_CHECKING:
    from rad_bench.sections import RolloutCfg

EVAL_NOISE_SEED = 1234  # evaluation rollout noise: identical for every block and seed (plus the clip index)


@dataclass
class RolloutStats:
    seconds: float = 0.0
    frames: int = 0
    state_bytes: list[int] = field(default_factory=list)  # after each committed frame (KV + memory)

    @property
    def frames_per_s(self) -> float:
        return self.frames / max(self.seconds, 1e-9)


def denoiser(
    model: nn.Module, action: Tensor, state: DiTState | None, bf16: bool = False
) -> Callable[[Tensor, Tensor], Tensor]:
    """``predict(x, levels)`` for new frames read from ``state``, which it leaves unchanged; with ``bf16``
    the model runs under bf16 autocast and the prediction comes back in float32 (the sampler's dtype)."""

    def predict(x: Tensor, k: Tensor) -> Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            return model(x, k, action, state)[0].float()

    return predict


def commit(model: nn.Module, x0: Tensor, action: Tensor, state: DiTState | None) -> DiTState:
    """Advance the window cache and every memory block with clean frames ``x0`` (level 0)."""
    levels = torch.zeros(x0.shape[:2], dtype=torch.long, device=x0.device)
    return model(x0, levels, action, state)[1]


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
    step_model: nn.Module | None = None,
    bf16: bool = False,
    after_context: Callable[[DiTState, int], DiTState] | None = None,
) -> tuple[Tensor, RolloutStats]:
    """Generated frames ``(b, horizon, c, H, W)`` and timing/state statistics.

    A model with chunked attention (``train.mode: chunk``) generates a chunk of frames jointly, up to
    the next multiple of ``window``, then commits it; otherwise one frame at a time. ``step_model``
    (e.g. ``torch.compile(model)``) runs the denoiser calls, ``sampling_steps`` of every frame's
    ``sampling_steps + 1``, with ``bf16`` under bf16 autocast; commits run ``model`` in float32.
    ``after_context(state, batch)`` replaces the state once the context is committed (a probe that
    withholds what a memory stored of the context: ``experiments/memory_maze_probes/reset.py``)."""
    device = next(model.parameters()).device
    b, c, hw = frames.shape[0], frames.shape[2], frames.shape[3:]
    chunk = model.cfg.window if model.cfg.attention == "chunk" else 1
    stats = RolloutStats()
    t_start = time.perf_counter()
    state = commit(model, frames[:, :context].to(device), actions[:, :context].to(device), None)
    if after_context is not None:
        state = after_context(state, b)
    out: list[Tensor] = []
    bar = tqdm(total=horizon, desc=desc, disable=not progress, leave=False, dynamic_ncols=True)
    done = 0
    while done < horizon:
        t = min(chunk - (context + done) % chunk, horizon - done)
        a = actions[:, context + done : context + done + t].to(device)
        noise = torch.randn(b, t, c, *hw, generator=g).to(device)
        predict = denoiser(model if step_model is None else step_model, a, state, bf16)
        x0 = diffusion.sample(predict, noise, sampling_steps)
        state = commit(model, x0, a, state)
        out.append(x0)
        done += t
        stats.state_bytes += [sum(state.nbytes())] * t
        bar.update(t)
    bar.close()
    stats.seconds = time.perf_counter() - t_start
    stats.frames = b * horizon
    return torch.cat(out, dim=1).cpu(), stats


def rollout_batch(
    model: VideoDiT,
    diffusion: Diffusion,
    frames: Tensor,
    actions: Tensor,
    r: RolloutCfg,
    start: int,
    noise_seed: int,
    **kwargs: Any,
) -> tuple[Tensor, RolloutStats]:
    """:func:`rollout` of clips ``start`` to ``start + r.batch_size`` of ``frames`` and ``actions`` at the suite's
    rollout settings (context, horizon, sampling steps), the sampler's noise seeded by ``noise_seed + start``
    (the same for every block and seed); ``kwargs`` as :func:`rollout`'s."""
    end = start + r.batch_size
    g = torch.Generator().manual_seed(noise_seed + start)
    return rollout(
        model,
        diffusion,
        frames[start:end],
        actions[start:end],
        context=r.context,
        horizon=r.horizon,
        sampling_steps=r.sampling_steps,
        g=g,
        **kwargs,
    )
