"""Completion records: what makes a cell finished, and how a damaged one is recognised and set aside.

A cell is finished when ``cells/<cell>/done.json`` verifies: written after every other file of the
cell, it records the number of metrics rows and, for each of the cell's files, its size and SHA-256::

    {"format": 1, "cell": "ttt-s0", "rows": 1234,
     "files": {"cells/ttt-s0/metrics.csv": {"bytes": 81234, "sha256": "..."}, ...}}

The files are the cell folder's (``metrics.csv``, ``stats.json``, ``train_log.csv``, ``state.csv``),
its sample frames ``samples/<cell>.npz`` and its weights ``checkpoints/<cell>.pt``. A result file that
is missing or differs from its record makes the cell *damaged*; a missing checkpoint does not (it is
git-ignored and may be deleted to save disk; the scores do not need it), a changed one does.

A cell with a ``metrics.csv`` and no record is not finished: it is damaged (deleting a record does not
make a cell count; a record may list only the cell's own files). Run folders written before records
existed are taken in explicitly, by ``rad-bench adopt RUN`` (:func:`adopt`): each such cell whose CSV parses
whole is recorded as it is then, on trust, and named.

A damaged cell is never glued into the combined CSV: :func:`set_aside` moves its files to
``damaged/<cell>-<time>/`` (nothing is deleted) and the runner computes the cell again. The run folder's
combined CSVs are rebuilt from the cells that verify (:func:`combine`), by the runner and by every report:
a combined ``metrics.csv`` that differs from them (cut short, edited) is kept aside and replaced, with a
warning.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from rad_bench.results import EFFICIENCY_CSV, METRICS_CSV, STATE_CSV, concat_csv, write_csv
from rad_bench.utils import atomic_write_text, write_json

RECORD = "done.json"
FORMAT = 1


@dataclass(frozen=True)
class CellCheck:
    state: Literal["done", "absent", "damaged"]
    why: str = ""  # for a damaged cell: what does not verify


def _own_file(rel: str, cell: str) -> bool:
    """Whether ``rel`` (a path a record lists) is one of ``cell``'s files: directly in its folder, or its
    samples or weights. Anything else, however it resolves, is never opened."""
    parts = rel.split("/")
    return (len(parts) == 3 and parts[:2] == ["cells", cell] and parts[2] not in ("", ".", "..")) or rel in (
        f"samples/{cell}.npz",
        f"checkpoints/{cell}.pt",
    )


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
        return CellCheck(
            "damaged",
            f"{record.relative_to(run_dir)} is missing (a run folder from before completion "
            "records is taken in by `rad-bench adopt RUN`)",
        )
    try:
        rec = json.loads(record.read_text())
        files = dict(rec["files"])
    except (ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        return CellCheck("damaged", f"{record.relative_to(run_dir)} is unreadable ({e.__class__.__name__})")
    if foreign := [rel for rel in files if not _own_file(str(rel), cell)]:
        return CellCheck("damaged", f"{record.relative_to(run_dir)} lists {foreign[0]!r}, not one of the cell's files")
    for rel, want in files.items():
        path = run_dir / rel
        if not path.is_file():
            if rel.startswith("checkpoints/"):
                continue  # weights deleted to save disk: the scores stand without them
            return CellCheck("damaged", f"{rel} is missing")
        if path.stat().st_size != want.get("bytes") or _digest(path) != want:
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


def adopt(run_dir: Path) -> list[str]:
    """Record every cell of ``run_dir`` that has a whole ``metrics.csv`` (a header, rows of the header's
    width, a final newline) and no completion record, as its files are now: the explicit way in for a run
    folder written before records existed. Returns the cells recorded; cells whose CSV is not whole are left
    as they are (damaged: a run with ``--resume`` sets them aside and computes them again)."""
    from filelock import FileLock

    adopted = []
    for folder in sorted(p for p in (run_dir / "cells").iterdir() if p.is_dir()):
        (run_dir / "locks").mkdir(exist_ok=True)
        with FileLock(str(run_dir / "locks" / f"{folder.name}.lock")):  # not a cell another process is writing
            if (folder / RECORD).is_file() or not (folder / METRICS_CSV).is_file():
                continue
            try:
                _csv_rows((folder / METRICS_CSV).read_text())
            except (ValueError, UnicodeDecodeError, csv.Error):
                continue
            write_record(run_dir, folder.name)
        adopted.append(folder.name)
    return adopted


def finished(run_dir: Path) -> list[Path]:
    """The cell folders of ``run_dir`` whose records verify; a damaged one is named on stderr."""
    done = []
    for d in sorted(p for p in (run_dir / "cells").iterdir() if p.is_dir()):
        check = check_cell(run_dir, d.name)
        if check.state == "damaged":
            print(f"rad-bench: cell {d.name} is left out of the combined results: {check.why}", file=sys.stderr)
        done += [d] if check.state == "done" else []
    return done


def combined_metrics(run_dir: Path) -> tuple[list[Path], str | None]:
    """The finished cells and what the run folder's metrics.csv must hold: their rows (None: no cell finished)."""
    done = finished(run_dir)
    return done, concat_csv([d / METRICS_CSV for d in done]) if done else None


def _rows(text: str) -> set[str]:
    return set(text.replace("\r\n", "\n").split("\n")[1:]) - {""}


def _cut_or_edited(old: str, text: str, done: list[Path]) -> bool:
    """Whether an earlier combined CSV ``old`` lost or changed rows against ``text`` (rebuilt from the ``done``
    cells): a row the cells do not hold, or part of a cell's rows. Whole cells added since are neither."""
    old_rows, new_rows = _rows(old), _rows(text)
    if not old_rows <= new_rows:
        return True
    for d in done:
        cell = _rows((d / METRICS_CSV).read_text())
        if cell <= new_rows and old_rows & cell and not cell <= old_rows:
            return True
    return False


def combine(run_dir: Path) -> list[str]:
    """The run folder's metrics.csv, state.csv and efficiency.csv rebuilt from the cells whose records verify;
    returns those cells (none: nothing is written). A damaged cell is left out and named; a combined
    metrics.csv that differs from what the cells hold (cut short, edited, a cell no longer verifying) is kept
    as ``metrics.csv.replaced-<time>`` and named in a warning (not when cells were only added since)."""
    done, text = combined_metrics(run_dir)
    if text is None:
        return []
    combined = run_dir / METRICS_CSV
    old = combined.read_text() if combined.is_file() else ""
    if old and _cut_or_edited(old, text, done):
        kept = run_dir / f"{METRICS_CSV}.replaced-{time.strftime('%Y%m%d-%H%M%S')}"
        shutil.copyfile(combined, kept)
        print(
            f"rad-bench: {combined} differed from its {len(done)} finished cells' records (cut short or edited); "
            f"rebuilt from them, the old one kept as {kept.name}",
            file=sys.stderr,
        )
    atomic_write_text(combined, text)
    states = [d / STATE_CSV for d in done if (d / STATE_CSV).is_file()]
    if states:  # state bytes after each generated frame, per cell (the efficiency figure)
        atomic_write_text(run_dir / STATE_CSV, concat_csv(states))
    stats = [json.loads((d / "stats.json").read_text()) for d in done if (d / "stats.json").is_file()]
    if stats:
        write_csv(run_dir / EFFICIENCY_CSV, stats)
    return [d.name for d in done]
