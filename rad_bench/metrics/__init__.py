"""Metric registry: name, direction, scope and protocol of every metric, importable without torch.

Each metric is declared by one torch-free file in ``rad_bench/metrics/specs/``, all imported at the
end of this module (as blocks and datasets are discovered), whose :class:`MetricSpec` references the
implementation lazily as ``"module:function"`` (lm-eval style), so the report
(:mod:`rad_bench.report`) can sort columns and draw arrows from this table without importing torch.
``per_frame`` metrics map ``(pred, target): (N, c, H, W)`` in [-1, 1] to ``(N,)``; ``set`` metrics
map two sets of videos ``(N, t, c, H, W)`` to one number. A spec's ``protocol_fn`` (also lazy) says
what a number means (weights hash, sizes, counts): :meth:`MetricSpec.protocol` stamps it on every row.
A metric with settings of its own declares their model (``settings``, e.g. :class:`SetSettings`), which a
suite fills under ``metric_settings.<name>``; its ``check_fn`` sees the rollout and those settings.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import Field

from rad_bench.registry import METRICS, import_submodules, register_metric
from rad_bench.schema import Strict


class SetSettings(Strict):
    """How a ``set`` metric is computed over a rollout's clips (TECO's FVD recipe): one value per batch of
    ``clips / batches`` videos (the leaderboard shows mean ± stderr over batches), and with ``bucket`` also
    one value per bucket of that many generated frames."""

    bucket: int | None = Field(None, ge=1, description="also one value per bucket of this many generated frames")
    batches: int = Field(1, ge=1, description="one value per batch of rollout.clips / batches videos")


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
    check_fn: str = ""  # "module:function" (rollout, settings) raising ValueError when a suite cannot serve it
    settings: type[Strict] | None = None  # the metric's own settings (``metric_settings.<name>``); None: none

    def __post_init__(self) -> None:
        if self.scope not in ("per_frame", "set"):
            raise ValueError(f"metric scope must be 'per_frame' or 'set', got {self.scope!r}")

    def load(self) -> Callable[..., Any]:
        return _resolve(self.fn)

    def check(self, rollout: Any, settings: Strict | None = None) -> None:
        """Refuse (ValueError naming the field and the fix) a rollout and settings this metric cannot be computed
        on; checked when a suite is validated. Torch-free: ``check_fn`` lives in the metric's spec file."""
        if self.check_fn:
            _resolve(self.check_fn)(rollout, self.configure(settings))

    def configure(self, settings: Any = None) -> Strict | None:
        """``settings`` (a mapping, or None for the defaults) validated by the metric's settings model; ValueError
        for settings given to a metric that takes none. pydantic's ValidationError names the field."""
        if self.settings is None:
            if settings:
                raise ValueError(f"metric '{self.name}' takes no settings; drop metric_settings.{self.name}")
            return None
        return settings if isinstance(settings, self.settings) else self.settings.model_validate(settings or {})

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
    name: str,
    higher_is_better: bool,
    scope: str,
    fn: str,
    description: str,
    protocol_fn: str = "",
    *,
    bounds: tuple[float | None, float | None] = (None, None),
    unit: str = "",
    check_fn: str = "",
    settings: type[Strict] | None = None,
) -> MetricSpec:
    """Register a :class:`MetricSpec` under ``name`` (one call per file in ``rad_bench/metrics/specs/``)."""
    spec = MetricSpec(name, higher_is_better, scope, fn, description, protocol_fn, bounds, unit, check_fn, settings)
    return register_metric(name)(spec)


def get_metric(name: str) -> MetricSpec:
    return METRICS.get(name)


import_submodules("rad_bench.metrics.specs")  # every metric's declaration: importing this module registers them
