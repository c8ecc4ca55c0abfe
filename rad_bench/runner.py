"""``run_suite``, the engine: the plan's cells (:mod:`rad_bench.plan`) run in order, each under its lock, each
by the recipe of :mod:`rad_bench.cell` (train, roll out, score, write), then the combined results and the report.

The orchestration only: models and data come from :mod:`rad_bench.build`, the run folder, its locks
and resume markers from :mod:`rad_bench.rundir` (which documents the folder's layout), the CSV
schema from :mod:`rad_bench.results`, and the leaderboard and figures from :mod:`rad_bench.report`.

A finished cell is never recomputed: rerunning with ``--resume`` (or ``--run-dir``) skips cells
whose completion record verifies (a damaged one is set aside and run again), and a cell killed mid-
training continues from its last ``train.checkpoint_every`` checkpoint with identical results.
Several processes may share one run folder: each cell is computed by whichever takes its lock first.
Under ``torchrun`` rank 0 picks the folder, rolls out, scores and writes; every rank trains (DDP).
Every file is written atomically (temp file + rename).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from rad_bench.build import check_blocks, make_dataset
from rad_bench.cell import RunContext, eval_set_of, run_cell, run_reference_cell
from rad_bench.config import Suite, SuiteError
from rad_bench.data import Dataset
from rad_bench.distributed import barrier, init_distributed, is_main, world_size
from rad_bench.ops import check_kernels
from rad_bench.plan import Cell, data_key, expand_cells
from rad_bench.reuse import training_key
from rad_bench.rundir import (
    cell_done,
    on_main,
    run_locked,
    start_run_dir,
)
from rad_bench.sizes import check_memory
from rad_bench.utils import (
    git_sha,
    resolve_device,
)

# --------------------------------------------------------------------------------------------
#                                   Suite
# --------------------------------------------------------------------------------------------


def limit_train(suite: Suite, limit_steps: int | None) -> tuple[Suite, bool]:
    """The suite with training capped at ``limit_steps`` and whether that cap shortens it."""
    if limit_steps is None or limit_steps >= suite.train.steps:
        return suite, False
    return suite.model_copy(update={"train": suite.train.model_copy(update={"steps": limit_steps})}), True


def _run_cells(ctx: RunContext, todo: list[Cell]) -> None:
    """Every cell of ``todo`` under its lock, then the ones another process held, once it lets go. A cell
    whose training another process is running now (the same training key) waits with them: it then reuses
    that training instead of repeating it."""
    pending: list[tuple[str, Callable[[], None]]] = []  # cells another process held when we reached them
    datasets: dict[tuple[int, str], Dataset] = {}
    busy: set[str] = set()  # training keys of cells another process held
    for c in todo:
        trained = "" if c.reference else training_key(c.suite, c.spec, c.seed)
        if trained in busy:
            pending.append((c.name, lambda c=c: run_cell(ctx, c, make_dataset(c.suite, c.seed))))
            continue
        key = (c.seed, data_key(c.suite))
        if key not in datasets:  # one (seed, data point)'s training data in memory at a time
            datasets = {key: make_dataset(c.suite, c.seed)}
            eval_set_of(ctx, c, datasets[key])  # before any training: a data error fails the run now
            check_blocks(c.suite, datasets[key])  # and so does a kwargs value a block refuses
        run = run_reference_cell if c.reference else run_cell
        if not run_locked(ctx.run_dir, c.name, lambda c=c, run=run, d=datasets[key]: run(ctx, c, d), wait=False):
            pending.append((c.name, lambda c=c, run=run: run(ctx, c, make_dataset(c.suite, c.seed))))
            busy |= {trained} - {""}
    for cell, job in pending:  # wait for the other process; run the cell if it died meanwhile
        run_locked(ctx.run_dir, cell, job, wait=True)


def run_suite(
    suite: Suite,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    limit_steps: int | None = None,
    results_root: Path = Path("results"),
    progress: bool = True,
    argv: list[str] | None = None,
    only: set[str] | None = None,
    report: bool = True,
    helpers: Callable[[Path], AbstractContextManager[None]] | None = None,
    record: bool = True,
) -> Path:
    """Run every block x seed cell of ``suite`` not already done; return the run folder.

    ``only``: just these cells (by name, e.g. one cluster job's); ``report=False``: leave the combined
    CSVs and the leaderboard to another process; ``helpers``: entered with the run folder around this
    process's cells, e.g. :func:`rad_bench.launch.worker_pool` (the report waits for it); ``record=False``: a
    helper of a run that records its own command line (``argv.txt``) and environment."""
    suite, limited = limit_train(suite, limit_steps)
    device = init_distributed(resolve_device(suite.device))  # cuda:LOCAL_RANK under torchrun
    check_kernels(device, suite.impl)
    frame = getattr(suite.data, "frame_size", None)  # None: read from the files
    if device == "cpu" and isinstance(frame, int):  # training activations then live in host memory too
        check_memory(suite, frame, "suite", activations=True)
    if suite.train.batch_size % world_size():
        raise SuiteError(
            f"train.batch_size ({suite.train.batch_size}) must be a multiple of the {world_size()} "
            "torchrun processes: each draws the global batch and trains on its slice"
        )
    run_dir = on_main(lambda: start_run_dir(suite, run_dir, resume, limited, results_root, argv, device, record))
    ctx = RunContext(suite, run_dir, device, limited, progress and is_main(), git_sha())
    cells = expand_cells(suite)
    done = on_main(lambda: {c.name for c in cells if cell_done(run_dir, c.name)})
    todo = [c for c in cells if c.name not in done and (only is None or c.name in only)]  # rank 0's view
    if is_main():
        print(f"rad-bench: {run_dir} ({len(todo)} of {len(cells)} cells to run)", file=sys.stderr)
    with helpers(run_dir) if helpers else nullcontext():
        _run_cells(ctx, todo)
    if report and is_main():
        finish_run(run_dir, suite)
    barrier()
    return run_dir


def finish_run(run_dir: Path, suite: Suite) -> None:
    """The combined CSVs and the report of ``run_dir`` from the cells done so far (the report takes the
    ``combine`` lock: concurrent runs finishing together write the same files in turn). Imported here: a process
    that draws no report (a ``--workers`` helper, a cluster job) needs neither pandas nor matplotlib."""
    from rad_bench import report as report_

    report_.write(run_dir, sort_by=suite.leaderboard.sort_by)
