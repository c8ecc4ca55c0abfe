"""Training modes: how one clip becomes one loss (DESIGN.md section 3, RAD's ablation axis).

- ``frame`` (RAD): frame-wise autoregression with memory overlap. The window slides one frame at a
  time and the memory only ever sees clean frames, in training as in a rollout. Training stays
  parallel through a *state prefetch*: one pass over the clean clip gives every layer's window
  keys and the memory state entering each frame, then all frames are denoised in one batch
  (:meth:`VideoDiT.forward` with ``clean=``). :func:`frame_loss_naive` is the definition it must
  equal: frame after frame, with the state handed on by the rollout's own :func:`commit`.
- ``chunk``: non-overlapping chunks of ``window`` frames, attention causal inside a chunk and
  blind to earlier ones, memory state carried across chunk boundaries; all frames noisy at
  independent levels (Diffusion Forcing), so the memory is trained on noisy frames but reads
  clean ones at rollout time: the training-inference gap RAD names.
- ``df``: Diffusion Forcing over the whole clip with the sliding window; like ``chunk``, the
  memory sees noisy frames in training.

Clean prefix (Po et al. 2025): with probability ``train.clean_prefix`` a clip keeps its first
``P > clip_len / 2`` frames clean; they are context only (level 0 frames carry no loss).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rad_bench.config import TrainCfg
from rad_bench.model.diffusion import Diffusion
from rad_bench.rollout import commit, denoiser


def attention_for(mode: str) -> str:
    """The temporal attention a training mode implies (the model's ``DiTConfig.attention``)."""
    return "chunk" if mode == "chunk" else "sliding"


def sample_train_levels(diffusion: Diffusion, shape: tuple[int, int], cfg: TrainCfg, g: torch.Generator) -> Tensor:
    """Per-frame levels for one batch. ``frame`` mode denoises every frame from clean context, so
    ``clean_prob`` (clean frames *inside* a noisy clip) applies to ``chunk`` and ``df`` only."""
    k = diffusion.sample_levels(shape, 0.0 if cfg.mode == "frame" else cfg.clean_prob, g)
    if cfg.clean_prefix > 0:
        b, t = shape
        use = torch.rand(b, generator=g) < cfg.clean_prefix
        length = torch.randint(t // 2 + 1, max(t, t // 2 + 2), (b,), generator=g).clamp(max=t - 1)
        prefix = torch.arange(t)[None] < torch.where(use, length, 0)[:, None]
        k = k.masked_fill(prefix, 0)
    return k


def training_loss(
    model: nn.Module,
    diffusion: Diffusion,
    frames: Tensor,
    actions: Tensor,
    k: Tensor,
    eps: Tensor,
    cfg: TrainCfg,
    targets: Tensor | None = None,
) -> Tensor:
    """The loss of one batch in ``cfg.mode``, over the ``targets`` frames (``(b, t)`` bool) when given.
    ``model`` may be wrapped (DDP): only its forward is called."""
    if cfg.mode == "frame":
        predict = lambda x, lv: model(x, lv, actions, clean=frames, prefetch_grad=cfg.prefetch_grad)[0]
    else:  # chunk / df: one Diffusion Forcing call; the model's attention mask makes the difference
        predict = lambda x, lv: model(x, lv, actions)[0]
    return diffusion.loss(predict, frames, k, eps, targets)


def frame_loss_naive(
    model: nn.Module, diffusion: Diffusion, frames: Tensor, actions: Tensor, k: Tensor, eps: Tensor
) -> Tensor:
    """``frame`` mode by definition: one window after the other, the state handed on by committing
    each clean frame, through the very functions a rollout uses. The oracle for :func:`training_loss`
    and the slow baseline of ``make bench``."""

    def predict(xk: Tensor, levels: Tensor) -> Tensor:
        state, out = None, []
        for t in range(xk.shape[1]):
            a = actions[:, t : t + 1]
            out.append(denoiser(model, a, state)(xk[:, t : t + 1], levels[:, t : t + 1]))
            state = commit(model, frames[:, t : t + 1], a, state)
        return torch.cat(out, dim=1)

    return diffusion.loss(predict, frames, k, eps)
