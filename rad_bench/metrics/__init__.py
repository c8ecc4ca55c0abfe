"""Metric registry: name, direction, scope and protocol of every metric, importable without torch.

Each metric is declared by one torch-free file in ``rad_bench/metrics/specs/``, all imported at the
end of this module (as blocks and datasets are discovered), whose :class:`MetricSpec` references the
implementation lazily as ``"module:function"`` (lm-eval style), so the report
(:mod:`rad_bench.report`) can sort columns and draw arrows from this table without importing torch.
``per_frame`` metrics map ``(pred, target): (N, c, H, W)`` in [-1, 1] to ``(N,)``; ``set`` metrics
map two sets of videos ``(N, t, c, H, W)`` to one number. A spec's ``protocol_fn`` (also lazy) says
what a number means (weights hash, sizes, counts): :meth:`MetricSpec.protocol` stamps it on every row.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from rad_bench.registry import METRICS, import_submodules, register_metric


def _resolve(ref: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` reference names (imported on first use)."""
    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class MetricSpec:
    name: str
    higher_is_better: bool
    scope: str  # "per_frame" | "set"
    fn: str  # "module:function"
    description: str
    protocol_fn: str = ""  # "module:function" (**counts) -> the protocol string; "" for none
    bounds: tuple[float | None, float | None] = (None, None)  # the values it can take (None: unbounded)
    unit: str = ""  # for axis labels: "dB"
    check_fn: str = ""  # "module:function" (rollout) raising ValueError when a suite's rollout cannot serve it

    def __post_init__(self) -> None:
        if self.scope not in ("per_frame", "set"):
            raise ValueError(f"metric scope must be 'per_frame' or 'set', got {self.scope!r}")

    def load(self) -> Callable[..., Any]:
        return _resolve(self.fn)

    def check(self, rollout: Any) -> None:
        """Refuse (ValueError naming the ``rollout.`` field and the fix) a rollout this metric cannot be computed
        on; checked when a suite is validated. Torch-free: ``check_fn`` lives in the metric's spec file."""
        if self.check_fn:
            _resolve(self.check_fn)(rollout)

    def protocol(self, **counts: Any) -> str:
        """What a number of this metric means (weights hash, sizes, ``counts``): stamped on every row."""
        return _resolve(self.protocol_fn)(**counts) if self.protocol_fn else ""

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"

    def label(self) -> str:
        """Axis label: name, unit, direction (``psnr (dB) ↑``)."""
        return f"{self.name}{f' ({self.unit})' if self.unit else ''} {self.arrow}"

    def outside(self, lo: float, hi: float) -> bool:
        """Does the interval ``[lo, hi]`` reach past the values the metric can take?"""
        low, high = self.bounds
        return (low is not None and lo < low) or (high is not None and hi > high)


def declare(
    name: str, higher_is_better: bool, scope: str, fn: str, description: str, protocol_fn: str = "", *,
    bounds: tuple[float | None, float | None] = (None, None), unit: str = "", check_fn: str = "",
) -> MetricSpec:  # fmt: skip
    """Register a :class:`MetricSpec` under ``name`` (one call per file in ``rad_bench/metrics/specs/``)."""
    spec = MetricSpec(name, higher_is_better, scope, fn, description, protocol_fn, bounds, unit, check_fn)
    return register_metric(name)(spec)


def get_metric(name: str) -> MetricSpec:
    return METRICS.get(name)


import_submodules("rad_bench.metrics.specs")  # every metric's declaration: importing this module registers them
