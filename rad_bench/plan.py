"""The plan of a run: a suite expanded into cells (block x sweep point x seed, then the reference rows), each the
unit that is trained, scored and resumed, and the data point a cell belongs to. What each cell then does is
:mod:`rad_bench.cell`; the order and the locks are :mod:`rad_bench.runner`'s.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rad_bench.config import BlockSpec, Suite, data_sweep, data_variants, resolved_dict, variants
from rad_bench.reference import REFERENCES


@dataclass(frozen=True)
class Cell:
    """One block at one sweep point and one seed: the unit that is trained, scored and resumed."""

    suite: Suite  # the suite with this cell's sweep values applied
    spec: BlockSpec
    seed: int
    variant: str  # e.g. "mode=chunk"; "" without a sweep
    reference: bool = False  # a reference row (rad_bench.reference): scored, never trained
    point: tuple[tuple[str, Any], ...] = ()  # the sweep values by dotted key, as the suite holds them (typed)

    @property
    def label(self) -> str:
        """The leaderboard's ``block`` column: the block's display name plus its sweep values."""
        return f"{self.spec.display}[{self.variant}]" if self.variant else self.spec.display

    @property
    def name(self) -> str:
        return f"{self.label}-s{self.seed}"


def expand_cells(suite: Suite) -> list[Cell]:
    """Seeds x data points x (sweep points x blocks, then the reference rows): seed-major, then one
    data point after the other, so each (seed, data point)'s data is loaded once. Reference rows
    depend on the data alone: once per seed and data point (labelled by the data part of the sweep,
    e.g. ``copy_last[slots=4]``), at the suite's other settings; without a data sweep once per seed."""
    refs = [BlockSpec(name=name) for name in REFERENCES]
    points = variants(suite)
    return [
        cell
        for seed in suite.seeds
        for label, ds in data_variants(suite)
        for cell in (
            *(
                Cell(vs, spec, seed, v, point=sweep_point(vs, suite.sweep))
                for v, vs in points
                if vs.data == ds.data
                for spec in suite.blocks
            ),
            *(Cell(ds, spec, seed, label, reference=True, point=sweep_point(ds, data_sweep(suite))) for spec in refs),
        )
    ]


def sweep_point(suite: Suite, keys: Any) -> tuple[tuple[str, Any], ...]:
    """``(dotted key, value)`` of each sweep axis in ``keys``, read from ``suite`` (one sweep point, validated):
    the values a cell's rows carry in a column per axis, so the report reads them as written."""
    values = []
    for key in keys:
        node: Any = resolved_dict(suite)
        for part in key.split("."):
            node = node[part]
        values.append((key, node))
    return tuple(values)


def data_key(suite: Suite) -> str:
    """Which data point a (swept) suite is at: its ``data:`` section as canonical JSON."""
    return json.dumps(suite.data.model_dump(mode="json"), sort_keys=True)
