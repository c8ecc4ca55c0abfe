"""Run folders: which one a run writes into, the per-cell locks that let processes share it, and the
files that mark a cell done or resumable.

Layout of a run folder ``results/<suite>/<YYYYmmdd-HHMMSS>-<sha7>/``::

    suite.resolved.yaml  argv.txt  env.json
    cells/<block>-s<seed>/metrics.csv, stats.json, train_log.csv, done.json (its completion record)
    checkpoints/<block>-s<seed>.pt                                 (git-ignored)
    checkpoints/<block>-s<seed>.train.pt   (resumable training state; deleted once the cell is done)
    locks/<block>-s<seed>.lock             (held while a process computes the cell)
    samples/<block>-s<seed>.npz                                    (frames for strips)
    metrics.csv  efficiency.csv  leaderboard.csv  leaderboard.md  figures/
    damaged/<cell>-<time>/                 (a damaged cell's files, set aside before it runs again)

A cell is done once its completion record ``cells/<cell>/done.json`` (written last: the row count
and a checksum of each of the cell's files) verifies (:mod:`rad_bench.completion`); a damaged cell
is set aside under ``damaged/`` and computed again. A folder holds one suite configuration, of either
kind (:mod:`rad_bench.kinds`; a token suite's cells are ``<block>-s<seed>`` with metrics.csv and done.json and no
checkpoints or samples): ``suite.resolved.yaml`` must match to write into it. Every file is written atomically (temp
file + rename); a process killed mid-write leaves only temp files, removed under the cell's lock. No symlink
under a run folder may point outside it (:func:`rad_bench.utils.check_tree`, whenever a run starts or
resumes and before a report writes), so nothing is written elsewhere, whatever the subfolder.
"""

from __future__ import annotations

import glob
import shlex
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from filelock import FileLock, Timeout

from rad_bench.completion import check_cell, set_aside, write_record
from rad_bench.config import SuiteError
from rad_bench.distributed import barrier, broadcast_object, is_main
from rad_bench.kinds import AnySuite, resolved_yaml, same_suite
from rad_bench.utils import atomic_write_text, check_tree, env_info, git_sha, write_json

T = TypeVar("T")


def latest_matching(root: Path, text: str) -> Path | None:
    """The newest run folder under ``root`` whose suite.resolved.yaml names the suite ``text`` does."""
    for d in sorted(root.glob("*/"), reverse=True):
        f = d / "suite.resolved.yaml"
        if f.is_file() and same_suite(f.read_text(), text):
            return d
    return None


def _foreign_entries(run_dir: Path) -> list[Path]:
    """What a folder without suite.resolved.yaml holds besides the temp files of an atomic write: a
    second process starting on the same new run folder may see the first one's half-written
    ``.suite.resolved.yaml.*.tmp``, which does not make the folder foreign."""
    return [p for p in run_dir.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp"))]


def new_run_dir(results_root: Path, name: str) -> Path:
    """``<results_root>/<name>/<YYYYmmdd-HHMMSS>-<sha7>`` for a new run (not created here), refused when it
    would lie outside ``results_root`` or a file stands where a folder must be (video and token suites)."""
    run_dir = results_root / name / f"{time.strftime('%Y%m%d-%H%M%S')}-{git_sha(short=True)}"
    if not run_dir.resolve().is_relative_to(results_root.resolve()):
        raise SuiteError(f"name: '{name}' puts the run folder outside {results_root}; use a plain name")
    for folder in (results_root, results_root / name):
        if folder.exists() and not folder.is_dir():
            raise SuiteError(f"{folder}: is a file, not a folder; pass a folder for the results (--results)")
    return run_dir


def prepare_run_dir(suite: AnySuite, run_dir: Path | None, resume: bool, limited: bool, results_root: Path) -> Path:
    """Pick (or create) the run folder; refuse to mix results of a different suite into it."""
    text = resolved_yaml(suite, limited)
    suite_root = results_root / suite.name
    if run_dir is None and resume:
        run_dir = latest_matching(suite_root, text)
    if run_dir is None:
        run_dir = new_run_dir(results_root, suite.name)
    existing = run_dir / "suite.resolved.yaml"
    if run_dir.exists() and not run_dir.is_dir():
        raise SuiteError(f"{run_dir}: is a file, not a folder; pass a folder for the run (--run-dir or --results)")
    if run_dir.is_dir() and not existing.is_file() and _foreign_entries(run_dir):
        raise SuiteError(
            f"{run_dir}: is not empty and is not a run folder (no suite.resolved.yaml), so its files could be "
            "overwritten; pass a new or empty folder to --run-dir"
        )
    if existing.is_file() and not same_suite(existing.read_text(), text):
        raise SuiteError(
            f"{run_dir}: holds results of a different suite configuration (see {existing}); "
            "use a new --run-dir or restore the same suite and overrides"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    check_tree(run_dir)
    atomic_write_text(existing, text)
    return run_dir


def start_run_dir(
    suite: AnySuite,
    run_dir: Path | None,
    resume: bool,
    limited: bool,
    results_root: Path,
    argv: list[str] | None,
    device: str,
    record: bool = True,
) -> Path:
    """:func:`prepare_run_dir`, then record the command line (``argv.txt``: one line added per start, the
    first and every resume; quoted so it can be pasted) and the environment in it. ``record=False``: a
    helper of a run that records its own (``--workers`` helpers, cluster jobs) records nothing."""
    run_dir = prepare_run_dir(suite, run_dir, resume, limited, results_root)
    if record:
        f = run_dir / "argv.txt"
        before = f.read_text() if f.is_file() else ""
        atomic_write_text(f, before + shlex.join(argv if argv is not None else sys.argv) + "\n")
        write_json(run_dir / "env.json", env_info(device))
    return run_dir


def on_main(fn: Callable[[], T]) -> T:
    """``fn()`` computed on rank 0 and broadcast, so every rank agrees (e.g. on the timestamped run
    folder); a SuiteError raised there is raised on every rank."""
    out: Any = None
    if is_main():
        try:
            out = fn()
        except SuiteError as e:
            out = e
    out = broadcast_object(out)
    if isinstance(out, SuiteError):
        raise out
    return out


def cell_done(run_dir: Path, cell: str) -> bool:
    """Whether ``cell`` is finished and its files match its completion record."""
    return check_cell(run_dir, cell).state == "done"


def _verdict(run_dir: Path, cell: str) -> str:
    """``done`` or ``run``; a damaged cell's files are first moved to ``damaged/`` (under its lock)."""
    check = check_cell(run_dir, cell)
    if check.state == "damaged":
        dest = set_aside(run_dir, cell)
        print(
            f"rad-bench: cell {cell} is damaged ({check.why}); its files are kept in {dest} and the cell runs again",
            file=sys.stderr,
        )
    return "done" if check.state == "done" else "run"


def train_checkpoint(run_dir: Path, cell: str) -> Path:
    """The resumable mid-training state of ``cell``; deleted once the cell's completion record exists."""
    return run_dir / "checkpoints" / f"{cell}.train.pt"


def cell_lock(run_dir: Path, name: str) -> FileLock:
    """The lock file ``locks/<name>.lock`` of a run folder (a cell, or ``combine``)."""
    (run_dir / "locks").mkdir(parents=True, exist_ok=True)
    return FileLock(str(run_dir / "locks" / f"{name}.lock"))


def stale_temp_files(run_dir: Path, cell: str) -> list[Path]:
    """Temp files a process killed mid-write left for ``cell`` (safe to delete under its lock)."""
    pattern = f".{glob.escape(cell)}.*.tmp"  # names like "none[mode=chunk]-s0" hold glob brackets
    return [
        *(run_dir / "checkpoints").glob(pattern),
        *(run_dir / "samples").glob(pattern),
        *(run_dir / "cells" / cell).glob(".*.tmp"),
    ]


@contextmanager
def claimed(run_dir: Path, cell: str, wait: bool) -> Iterator[str]:
    """Hold ``locks/<cell>.lock`` while the cell runs, so processes sharing a run folder never
    compute a cell twice. Rank 0 takes the lock and every rank gets its verdict: ``run``, ``done``
    (finished by another process) or ``busy`` (held by another process and ``wait`` is False).
    The OS drops the lock of a killed process, so a waiting process then runs the cell itself."""
    lock, status = cell_lock(run_dir, cell), None
    if is_main():
        try:
            lock.acquire(timeout=-1 if wait else 0)
            status = _verdict(run_dir, cell)
        except Timeout:
            status = "busy"
    status = broadcast_object(status)
    try:
        if status == "run" and is_main():
            for tmp in stale_temp_files(run_dir, cell):
                tmp.unlink(missing_ok=True)
        yield status
    finally:
        if lock.is_locked:
            lock.release()


def run_locked(run_dir: Path, cell: str, job: Callable[[], None], *, wait: bool) -> bool:
    """Run ``job`` (one cell) under the cell's lock unless it is done; False if another process holds it."""
    with claimed(run_dir, cell, wait) as status:
        if status == "busy":
            return False
        if status == "run":
            if is_main():
                print(f"rad-bench: running cell {cell}", file=sys.stderr)
            job()
            if is_main():
                write_record(run_dir, cell)  # the cell is done from here on
                train_checkpoint(run_dir, cell).unlink(missing_ok=True)
            barrier()
    return True
