"""Completion records: what makes a cell finished, and how a damaged one is recognised and set aside.

A cell is finished when ``cells/<cell>/done.json`` verifies: written after every other file of the
cell, it records the number of metrics rows and, for each of the cell's files, its size and SHA-256::

    {"format": 1, "cell": "ttt-s0", "rows": 1234,
     "files": {"cells/ttt-s0/metrics.csv": {"bytes": 81234, "sha256": "..."}, ...}}

The files are the cell folder's (``metrics.csv``, ``stats.json``, ``train_log.csv``, ``state.csv``),
its sample frames ``samples/<cell>.npz`` and its weights ``checkpoints/<cell>.pt``. A result file that
is missing or differs from its record makes the cell *damaged*; a missing checkpoint does not (it is
git-ignored and may be deleted to save disk; the scores do not need it), a changed one does.

Run folders written before records existed hold ``metrics.csv`` alone: such a cell counts as finished
when that CSV parses whole (a header, at least one row, every row complete, a final newline).

A damaged cell is never glued into the combined CSV: :func:`set_aside` moves its files to
``damaged/<cell>-<time>/`` (nothing is deleted) and the runner computes the cell again.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rad_bench.results import METRICS_CSV
from rad_bench.utils import write_json

RECORD = "done.json"
FORMAT = 1


@dataclass(frozen=True)
class CellCheck:
    state: Literal["done", "absent", "damaged"]
    why: str = ""  # for a damaged cell: what does not verify


def cell_files(run_dir: Path, cell: str) -> list[Path]:
    """The cell's files that exist now (its record excluded)."""
    folder = run_dir / "cells" / cell
    own = sorted(p for p in folder.iterdir() if p.is_file() and p.name != RECORD and not p.name.startswith("."))
    extra = [run_dir / "samples" / f"{cell}.npz", run_dir / "checkpoints" / f"{cell}.pt"]
    return own + [p for p in extra if p.is_file()]


def _digest(path: Path) -> dict[str, int | str]:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return {"bytes": path.stat().st_size, "sha256": h.hexdigest()}


def _csv_rows(text: str) -> int:
    """Data rows of a whole CSV; ValueError when it is empty, header-only, ragged or cut short."""
    if not text.endswith("\n"):
        raise ValueError("does not end with a newline (cut short)")
    rows = list(csv.reader(io.StringIO(text)))
    if len(rows) < 2:
        raise ValueError("has no data rows")
    width = len(rows[0])
    bad = next((i for i, r in enumerate(rows[1:], start=2) if len(r) != width), None)
    if bad is not None:
        raise ValueError(f"line {bad} has {len(rows[bad - 1])} fields, the header {width}")
    return len(rows) - 1


def write_record(run_dir: Path, cell: str) -> None:
    """Record the cell's files as they are now: called once the cell's metrics.csv is written."""
    rows = _csv_rows((run_dir / "cells" / cell / METRICS_CSV).read_text())
    files = {p.relative_to(run_dir).as_posix(): _digest(p) for p in cell_files(run_dir, cell)}
    write_json(run_dir / "cells" / cell / RECORD, {"format": FORMAT, "cell": cell, "rows": rows, "files": files})


def check_cell(run_dir: Path, cell: str) -> CellCheck:
    """Whether ``cell`` is finished and intact (``done``), not finished (``absent``) or ``damaged``."""
    folder = run_dir / "cells" / cell
    record, metrics = folder / RECORD, folder / METRICS_CSV
    if not record.is_file():
        if not metrics.is_file():
            return CellCheck("absent")
        try:  # a run folder from before completion records: the CSV must at least be whole
            _csv_rows(metrics.read_text())
        except (ValueError, UnicodeDecodeError, csv.Error) as e:
            return CellCheck("damaged", f"{metrics.relative_to(run_dir)} {e}")
        return CellCheck("done")
    try:
        rec = json.loads(record.read_text())
        files = dict(rec["files"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        return CellCheck("damaged", f"{record.relative_to(run_dir)} is unreadable ({e.__class__.__name__})")
    for rel, want in files.items():
        path = run_dir / rel
        if not path.is_file():
            if rel.startswith("checkpoints/"):
                continue  # weights deleted to save disk: the scores stand without them
            return CellCheck("damaged", f"{rel} is missing")
        if _digest(path) != want:
            return CellCheck("damaged", f"{rel} differs from its completion record (size or checksum)")
    if f"cells/{cell}/{METRICS_CSV}" not in files:
        return CellCheck("damaged", f"{record.relative_to(run_dir)} lists no metrics.csv")
    return CellCheck("done")


def set_aside(run_dir: Path, cell: str) -> Path:
    """Move a damaged cell's files to ``damaged/<cell>-<time>/`` (same relative paths); return it."""
    dest = run_dir / "damaged" / f"{cell}-{time.strftime('%Y%m%d-%H%M%S')}"
    moved = [run_dir / "cells" / cell, run_dir / "samples" / f"{cell}.npz", run_dir / "checkpoints" / f"{cell}.pt"]
    for src in moved:
        if src.exists():
            target = dest / src.relative_to(run_dir)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(src), str(target))
    return dest
