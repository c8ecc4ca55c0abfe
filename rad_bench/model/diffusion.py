"""Diffusion Forcing: per-frame noise levels, the training loss and a DDIM-style sampler.

Levels are integers ``k`` in ``[0, T]`` with ``k = 0`` exactly clean (alpha_bar = 1), so a
clean context frame and a noisy frame are the same kind of input to the model (Chen et al. 2024,
Diffusion Forcing). The schedule is the cosine schedule of Nichol & Dhariwal (2021), optionally
shifted towards noise by ``shift`` (the resolution shift of Hoogeboom et al. 2023, "simple diffusion",
also used by SD3): ``alpha_bar' = alpha_bar / (alpha_bar + shift^2 (1 - alpha_bar))``, i.e. the
signal-to-noise ratio divided by ``shift^2`` at every level. Small or highly separable frames stay
recognisable under much noise, so without a shift most training levels and sampling steps fall where
the noisy frame already shows its content and nothing else (a memory, say) can lower the loss. One
schedule serves training and sampling; ``shift = 1`` is the cosine schedule bit for bit.

The sampler's levels (``sampler_levels``): ``even`` spaces the level indices evenly, so under a shift the
steps follow the shifted schedule and the last one jumps from a still noisy level (alpha_bar 0.35 at shift 8)
straight to clean; ``snr`` takes the levels whose shifted alpha_bar matches the unshifted cosine schedule's at
the evenly spaced indices: the noise levels an unshifted sampler visits, so the last steps refine at low
noise. They are the same at ``shift = 1``. (On recall validation episodes, shift 8, 10 steps: query PSNR of a
TTT model 16.6 dB with ``even``, 20.2 dB with ``snr``; experiments/recall_recipe/sampler.py.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor


class Diffusion:
    def __init__(
        self, levels: int = 1000, prediction: str = "v", shift: float = 1.0, sampler_levels: str = "even"
    ) -> None:
        if prediction not in ("eps", "v", "x0"):
            raise ValueError(f"prediction must be 'eps', 'v' or 'x0', got {prediction!r}")
        if not shift > 0:
            raise ValueError(f"shift must be > 0, got {shift!r}")
        if sampler_levels not in ("even", "snr"):
            raise ValueError(f"sampler_levels must be 'even' or 'snr', got {sampler_levels!r}")
        self.T, self.prediction, self.shift, self.sampler_levels = levels, prediction, shift, sampler_levels
        s = 0.008  # cosine offset so that the first levels are not too small
        k = torch.arange(levels + 1, dtype=torch.float64) / levels
        ab = torch.cos((k + s) / (1 + s) * math.pi / 2) ** 2
        ab = ab / ab[0]
        if shift != 1.0:  # SNR / shift^2; level 0 stays exactly clean (alpha_bar = 1)
            ab = ab / (ab + shift**2 * (1 - ab))
        self.alpha_bar = ab.clamp(min=1e-5).float()  # alpha_bar(T) > 0 keeps v/eps conversions finite
        self._cosine = self.alpha_bar if shift == 1.0 else Diffusion(levels, prediction).alpha_bar

    @classmethod
    def of(cls, cfg: Any) -> Diffusion:
        """The diffusion a suite's ``diffusion:`` section (:class:`rad_bench.config.DiffusionCfg`) describes."""
        return cls(cfg.levels, cfg.prediction, cfg.shift, cfg.sampler_levels)

    def _ab(self, k: Tensor, like: Tensor) -> Tensor:
        ab = self.alpha_bar.to(like.device)[k]  # (b, t)
        return ab.view(*ab.shape, *([1] * (like.dim() - ab.dim())))

    def q_sample(self, x0: Tensor, k: Tensor, eps: Tensor) -> Tensor:
        ab = self._ab(k, x0)
        return ab.sqrt() * x0 + (1 - ab).sqrt() * eps

    def target(self, x0: Tensor, k: Tensor, eps: Tensor) -> Tensor:
        if self.prediction == "eps":
            return eps
        if self.prediction == "x0":
            return x0
        ab = self._ab(k, x0)
        return ab.sqrt() * eps - (1 - ab).sqrt() * x0

    def to_x0_eps(self, xk: Tensor, k: Tensor, out: Tensor) -> tuple[Tensor, Tensor]:
        """Model output -> (x0, eps) estimates; x0 is clipped to the data range [-1, 1]."""
        ab = self._ab(k, xk)
        a, s = ab.sqrt(), (1 - ab).sqrt()
        if self.prediction == "eps":
            x0 = (xk - s * out) / a
        elif self.prediction == "x0":
            # small models whose tokens are narrower than their patches cannot carry per-pixel
            # noise through, so eps/v targets leave residual noise; predicting x0 avoids that
            x0 = out
        else:  # v = a * eps - s * x0  =>  x0 = a * xk - s * v
            x0 = a * xk - s * out
        x0 = x0.clamp(-1, 1)
        eps = (xk - a * x0) / s.clamp(min=1e-4)
        return x0, eps

    def sample_levels(self, shape: tuple[int, int], clean_prob: float, g: torch.Generator) -> Tensor:
        """Independent level per frame; with ``clean_prob`` a frame is clean (level 0), else uniform
        in [1, T]. Clean frames teach the model to read clean context, as at rollout time."""
        k = torch.randint(1, self.T + 1, shape, generator=g)
        clean = torch.rand(shape, generator=g) < clean_prob
        return k.masked_fill(clean, 0)

    def loss(
        self,
        predict: Callable[[Tensor, Tensor], Tensor],
        x0: Tensor,
        k: Tensor,
        eps: Tensor,
        frames: Tensor | None = None,
    ) -> Tensor:
        """Mean squared error over noisy frames (level 0 frames are context, not targets); with ``frames``
        (``(b, t)`` bool) over the noisy frames it marks only."""
        out = predict(self.q_sample(x0, k, eps), k)
        err = (out - self.target(x0, k, eps)).pow(2).mean(dim=tuple(range(2, x0.dim())))  # (b, t)
        w = (k > 0).float() if frames is None else ((k > 0) & frames).float()
        return (err * w).sum() / w.sum().clamp(min=1)

    def schedule(self, steps: int) -> list[int]:
        """Descending levels ``T = k_0 > ... > k_steps = 0`` for a ``steps``-step sampler (``sampler_levels``)."""
        ks = torch.linspace(self.T, 0, steps + 1).round().long()
        if self.sampler_levels == "snr" and self.shift != 1.0:  # the shifted level nearest each cosine alpha_bar
            want = self._cosine[ks].double()
            ks = (self.alpha_bar.double()[None, :] - want[:, None]).abs().argmin(dim=1)
            ks[0], ks[-1] = self.T, 0
            for i in range(1, steps):  # nearest levels may coincide at large shifts: keep every step distinct
                ks[i] = min(max(int(ks[i]), steps - i), int(ks[i - 1]) - 1)
        return sorted(set(ks.tolist()), reverse=True)

    @torch.no_grad()
    def sample(self, predict: Callable[[Tensor, Tensor], Tensor], noise: Tensor, steps: int) -> Tensor:
        """Deterministic DDIM (eta = 0) from pure noise at level T to a clean sample.

        ``predict(x, k)`` gets ``x`` shaped like ``noise`` and levels ``k: (b, t)``."""
        b, t = noise.shape[:2]
        x = noise
        levels = self.schedule(steps)
        for k_cur, k_next in zip(levels[:-1], levels[1:]):
            k = torch.full((b, t), k_cur, dtype=torch.long, device=noise.device)
            x0, eps = self.to_x0_eps(x, k, predict(x, k))
            ab_next = self.alpha_bar[k_next].to(x.device)
            x = ab_next.sqrt() * x0 + (1 - ab_next).sqrt() * eps
        return x
