"""The results schema: what a run folder's CSV files hold and how they are written and joined.

The one place the runner (which writes the files) and the report (which reads them) agree on file
names, column names, tag names, the reference rows and the CSV format. Torch-free, so the report
and ``rad-bench validate`` can read it on any machine.

Per run folder: ``metrics.csv`` (one row per block x seed x clip x frame x metric: the cell's
:data:`CELL_COLUMNS` followed by the scoring :data:`ROW_COLUMNS`), ``state.csv``
(:data:`STATE_COLUMNS`: state bytes after each generated frame) and ``efficiency.csv`` (one row per
cell: its cell columns and its training/rollout costs).
"""

from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

from rad_bench.tags import TAGS
from rad_bench.utils import atomic_write_text

METRICS_CSV, STATE_CSV, EFFICIENCY_CSV = "metrics.csv", "state.csv", "efficiency.csv"
CURVE_CSV = "curve.csv"  # a trained cell's learning curve (train.eval_every): block, seed, variant, step, metric, value
LEADERBOARD_CSV, LEADERBOARD_MD = "leaderboard.csv", "leaderboard.md"


class ReportError(ValueError):
    """A report cannot be built from a run folder's results; the message names the path and the fix. Defined here,
    not in :mod:`rad_bench.report`, so that a run's error boundary names it without importing pandas and
    matplotlib into a process that draws no report (a ``--workers`` helper, a cluster job)."""


GROUPS = (*TAGS, "all")  # the leaderboard's column groups: one per tag, and every frame

# Reference rows (rad_bench.reference): scored like every block, never trained. A block's leaderboard
# label may not take one of these names, or its rows would be mixed with the reference's.
REFERENCE_NAMES = ("copy_last", "recall_oracle")

# the columns every metrics row of a cell carries, in this order (learned and reference cells alike)
CELL_COLUMNS = (
    "suite",
    "suite_version",
    "run",
    "block",
    "block_name",
    "variant",
    "seed",
    "reference",
    "train_mode",
    "lr",
    "shift",
    "loss_frames",
    "prefetch_grad",
    "clean_prefix",
    "memory_action",
    "window",
    "attention",
    "reach",
    "split",
    "impl",
    "params_block",
    "params_total",
    "limited",
    "git_sha",
)
# what scoring adds per row (rad_bench.score): frame -1 = a set metric over the whole episode
ROW_COLUMNS = ("clip", "frame", "tag", "gap", "metric", "value", "protocol", "error")
STATE_COLUMNS = ("block", "seed", "frame", "state_bytes")

# cell settings carried into the leaderboard when metrics.csv has them (they differ between cells)
CARRY = (
    "variant",
    "train_mode",
    "attention",
    "window",
    "reach",
    "prefetch_grad",
    "clean_prefix",
    "memory_action",
    "limited",
    "split",
    "lr",
    "shift",
    "loss_frames",
)
SHOWN = ("train_mode", "window")  # of those, the ones leaderboard.md shows as columns


def split_column(column: str) -> tuple[str, str]:
    """``"<metric>_<group>"`` -> ``(metric, group)`` for a group of :data:`GROUPS` (a metric name may hold
    underscores, as ``recall_acc`` does); ``(column, "")`` when it ends in no group."""
    for group in sorted(GROUPS, key=len, reverse=True):
        if column.endswith(f"_{group}"):
            return column[: -len(group) - 1], group
    return column, ""


def _number(text: str) -> int | float | str:
    """``"4"`` -> 4, ``"0.5"`` -> 0.5; anything else (``"chunk"``, ``"True"``) stays a string."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_variant(variant: object) -> dict[str, int | float | str]:
    """A ``variant`` column value (``"slots=4,mode=chunk"``, the sweep label) as ``{"slots": 4, "mode":
    "chunk"}``, values as int or float when they parse; ``{}`` for an empty or missing (NaN) variant.
    Pairs are split at commas that start a new ``key=``, so a value may hold commas (``x=[1, 2]``)."""
    if variant is None or (isinstance(variant, float) and math.isnan(variant)) or not str(variant):
        return {}
    pairs = re.split(r",(?=[A-Za-z_][A-Za-z0-9_]*=)", str(variant))
    return {k: _number(v) for k, _, v in (pair.partition("=") for pair in pairs)}


def sweep_point(row: Mapping[str, Any], sweep: Sequence[str] = ()) -> dict[str, int | float | str]:
    """A metrics or leaderboard row's sweep values by each axis's last key (``{"slots": 4}``): from the row's own
    column per axis, named by the dotted key (``data.slots``, written since cells carry their typed sweep point),
    else, for a run written before, read back from its ``variant`` label (:func:`parse_variant`)."""
    own = {k.split(".")[-1]: row[k] for k in sweep if k in row and not _missing(row[k])}
    legacy = parse_variant(row.get("variant")) if len(own) < len(sweep) or not sweep else {}
    return {**legacy, **{k: _value(v) for k, v in own.items()}}


def _missing(v: object) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def _value(v: Any) -> int | float | str:
    """A sweep value as read from a CSV: a number as int when whole (pandas reads a column with gaps as float:
    4096.0 -> 4096), anything else as :func:`_number` reads its text."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v
    return _number(str(v))


def capacity_key(resolved: dict[str, Any]) -> str | None:
    """The first ``data.*`` sweep axis whose values are all numbers, by its last key (``slots`` for
    ``sweep: {data.slots: [2, 4, 8]}``, as in the ``variant`` column); None without one."""
    for key, values in (resolved.get("sweep") or {}).items():
        numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values or [None])
        if key.startswith("data.") and numeric:
            return key.split(".")[-1]
    return None


class _Table(Protocol):
    def to_csv(self, *, index: bool) -> str: ...


def cell_columns(**values: Any) -> dict[str, Any]:
    """The :data:`CELL_COLUMNS` of one cell, in their order; a missing or unknown column raises."""
    if set(values) != set(CELL_COLUMNS):
        raise KeyError(f"cell columns differ from the schema: {sorted(set(values) ^ set(CELL_COLUMNS))}")
    return {c: values[c] for c in CELL_COLUMNS}


def csv_text(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV of ``rows`` under one header: every key of every row, in order of first appearance."""
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]]) -> None:
    """``rows`` as CSV at ``path``, written atomically."""
    atomic_write_text(path, csv_text(rows))


def write_table(path: Path, table: _Table) -> None:
    """A pandas table as CSV at ``path`` (no index), written atomically."""
    atomic_write_text(path, table.to_csv(index=False))


def concat_csv(files: Sequence[Path]) -> str:
    """The CSV files one after the other under one header; files whose headers differ (a column only
    some cells have) are joined by column name, the missing values left empty."""
    texts = [f.read_text() for f in files]
    heads = [t.split("\n", 1)[0] for t in texts]
    if len(set(heads)) <= 1:
        return "".join(t if i == 0 else t.split("\n", 1)[1] for i, t in enumerate(texts))
    return csv_text([row for t in texts for row in csv.DictReader(io.StringIO(t))])
