"""``rad-bench`` command line: run / ls / validate / report / bench. Commands parse and delegate."""

from __future__ import annotations

import os
import sys
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

app = typer.Typer(
    name="rad-bench",
    help="Benchmark memory blocks in autoregressive video diffusion world models.",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    add_completion=False,
    epilog=(
        "Examples:\n\n"
        "  rad-bench run suites/smoke.yaml\n\n"
        "  rad-bench run suites/smoke.yaml --set train.steps=200 --set 'blocks=[none, full_attn]'\n\n"
        "  rad-bench report results/smoke/20261125-1530-abc1234\n\n"
        "  rad-bench bench --quick --device cpu --out results/bench-cpu\n\n"
        "  torchrun --standalone --nproc_per_node 2 -m rad_bench run suites/smoke.yaml   (DDP, batch split over ranks)"
    ),
)


def _expected_errors() -> tuple[type[Exception], ...]:
    """Failures of input or environment that end a run with a message and exit code 2, not a traceback."""
    from rad_bench.config import SuiteError
    from rad_bench.data import DataError
    from rad_bench.launch import LaunchError
    from rad_bench.ops import KernelUnavailableError
    from rad_bench.results import ReportError
    from rad_bench.train import CheckpointError, TrainingDiverged
    from rad_bench.utils import DeviceUnavailableError, OutsideError

    return (
        SuiteError,
        DataError,
        KernelUnavailableError,
        TrainingDiverged,
        CheckpointError,
        DeviceUnavailableError,
        LaunchError,
        ReportError,
        OutsideError,
    )


_debug = False  # --debug (or RAD_BENCH_DEBUG=1): print the traceback behind an error message


@app.callback()
def _options(
    debug: Annotated[bool, typer.Option("--debug", help="show the traceback behind an error message")] = False,
) -> None:
    """Options of every command (they go before it: ``rad-bench --debug run ...``)."""
    global _debug
    _debug = debug or os.environ.get("RAD_BENCH_DEBUG", "") not in ("", "0")


def _fail(msg: str) -> None:
    """One red ``error:`` line and exit code 2; with --debug first the traceback being handled."""
    if _debug and sys.exc_info()[0] is not None:
        traceback.print_exc()
    typer.secho(f"error: {msg}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _check_environment() -> None:
    """Environment variables that change what runs, checked before any work."""
    from rad_bench.ops import IMPLS

    impl = os.environ.get("RAD_BENCH_IMPL")
    if impl is not None and impl not in IMPLS:
        _fail(
            f"environment variable RAD_BENCH_IMPL={impl!r}: must be one of {', '.join(IMPLS)}; "
            "unset it to use the suite's `impl:`"
        )


@app.command()
def run(
    suite: Annotated[Path, typer.Argument(help="suite YAML, e.g. suites/smoke.yaml")],
    *,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. train.steps=200")] = None,
    limit_steps: Annotated[
        int | None, typer.Option(min=1, help="cap training steps for a quick check (results marked non-comparable)")
    ] = None,
    resume: Annotated[bool, typer.Option(help="continue the latest run of this exact suite")] = False,
    run_dir: Annotated[Path | None, typer.Option(help="write into (or resume) this run folder")] = None,
    results: Annotated[Path, typer.Option(help="root folder for run folders")] = Path("results"),
    progress: Annotated[bool, typer.Option(help="show progress bars")] = True,
    wide: Annotated[bool, typer.Option(help="print every leaderboard column, not the headline ones")] = False,
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for torch [default: one per core]")] = None,
    workers: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="processes sharing the run folder, cells in parallel [default: the suite's launcher.workers; auto: a "
            "one-thread process per CPU core for suites that train two or more models of 100+ steps]",
        ),
    ] = None,
    launcher: Annotated[Literal["none", "local", "slurm"], typer.Option(help="one submitit job per cell")] = "none",
    report: Annotated[bool, typer.Option(help="write the leaderboard at the end (--workers' helpers: no)")] = True,
    helper: Annotated[bool, typer.Option(hidden=True, help="a --workers helper: record no command line")] = False,
) -> None:
    """Train, roll out and score every block x seed of a suite, then write the leaderboard."""
    from rad_bench.distributed import close_distributed, is_main
    from rad_bench.kinds import load

    _check_environment()
    where = {"run_dir": run_dir, "resume": resume, "limit_steps": limit_steps, "results_root": results}
    with _boundary(suite):
        kind, s = load(suite, set_ or [])
        if kind.name == "mqar":  # a token suite: one process, no cluster jobs
            out = _start_tokens(
                s, where, progress=progress, report=report, workers=workers, launcher=launcher, threads=threads
            )
        else:
            workers, threads = _processes(s, workers, threads, launcher, limit_steps)
            out = _start(
                s,
                suite,
                set_ or [],
                where,
                progress=progress,
                report=report,
                workers=workers,
                launcher=launcher,
                threads=threads,
                record=not helper,
            )
        if is_main() and report:  # under torchrun one process reports
            from rad_bench import report as rep

            text = (out / "leaderboard.md").read_text() if kind.name == "mqar" else None
            typer.echo(text or rep.terminal(rep.load_run(out), wide=wide))
            typer.echo(f"results: {out}")
    close_distributed()


@contextmanager
def _boundary(suite: Path | None = None, errors: tuple[type[Exception], ...] | None = None) -> Iterator[None]:
    """The one error boundary of ``run`` (every suite kind) and ``report``: bad input or state, a
    full or read-only disk, a path the locale cannot write and Ctrl-C end with one line naming the file and
    the fix, exit code 2, no traceback. ``suite``: the file every message starts with (``run``); ``errors``:
    the expected ones (default :func:`_expected_errors`, which imports torch; ``report`` names its own)."""
    head, expected = f"{suite}: " if suite is not None else "", errors or _expected_errors()
    try:
        yield
    except expected as e:  # bad input or state: the file, the field and the fix
        msg = str(e)
        _fail(msg if not head or msg.startswith(str(suite)) else head + msg)
    except OSError as e:  # disk full, read-only or missing folders, permissions: the file and the fix
        where = f"{e.filename}: " if e.filename else ""
        _fail(f"{head}{where}{e.strerror or e}; check that the folder is writable and the disk has room")
    except UnicodeEncodeError as e:  # a non-ASCII path under an ASCII locale
        _fail(
            f"{head}a path holds non-ASCII characters, which this locale ({e.encoding}) cannot write; "
            "use an ASCII path or a UTF-8 locale (LANG=C.UTF-8)"
        )
    except KeyboardInterrupt:
        _fail(f"{head}interrupted; finished cells are kept, run the same command with --resume to continue")


def _processes(
    s: Any, workers: int | None, threads: int | None, launcher: str, limit_steps: int | None
) -> tuple[int, int | None]:
    """Processes and torch threads of a run: ``--workers``, else the suite's ``launcher.workers`` for a plain
    run on this machine (not cluster jobs, not torchrun ranks); threads are set here."""
    from rad_bench.launch import auto_workers, worker_threads
    from rad_bench.limits import check_workers
    from rad_bench.utils import resolve_device, set_threads

    plain = launcher == "none" and int(os.environ.get("WORLD_SIZE", "1")) == 1
    if workers is not None and plain:
        check_workers(workers, "--workers")
    elif plain and s.launcher.workers == "auto":
        workers = auto_workers(s, limit_steps, resolve_device(s.device))
    elif plain:  # the suite's default: at most the cores of the machine it runs on
        workers = min(s.launcher.workers, os.cpu_count() or 1)
    workers = workers or 1
    threads = worker_threads(workers, threads)
    set_threads(threads)
    return workers, threads


def _freeze_imports() -> None:
    """Move what the imports built (torch, and ``torch._dynamo``, which the first optimizer imports anyway) out of the
    garbage collector's reach for the rest of this process. Every full collection after it, e.g. the one before each
    rollout's memory measurement (``rad_bench.utils.peak_memory``), then walks only what the run itself allocates.
    No collection first: it would cost what one saves, for the little garbage that importing leaves."""
    import gc

    import torch._dynamo  # noqa: F401

    gc.freeze()


def _start(
    s: Any,
    path: Path,
    overrides: list[str],
    where: dict[str, Any],
    *,
    progress: bool,
    report: bool,
    workers: int,
    launcher: str,
    threads: int | None,
    record: bool = True,
) -> Path:
    """Run the suite here, with ``workers - 1`` helper processes, or as cluster jobs (rad_bench.launch)."""
    from rad_bench.launch import LaunchError, run_on_cluster, worker_command, worker_pool
    from rad_bench.runner import run_suite

    if launcher != "none" and workers > 1:
        raise LaunchError(f"--launcher {launcher} runs one job per cell; drop --workers (it is for one machine)")
    if launcher != "none":
        return run_on_cluster(s, launcher, **where, argv=sys.argv)
    _freeze_imports()  # this process trains; a cluster run's parent only submits jobs and waits
    helpers = worker_pool(worker_command(path, overrides, where["limit_steps"], threads), workers - 1)
    return run_suite(
        s,
        **where,
        argv=sys.argv,
        progress=progress,
        report=report,
        helpers=helpers if workers > 1 else None,
        record=record,
    )


def _start_tokens(
    s: Any,
    where: dict[str, Any],
    *,
    progress: bool,
    report: bool,
    workers: int | None,
    launcher: str,
    threads: int | None,
) -> Path:
    """Run a token suite (``kind: mqar``, :mod:`rad_bench.token_run`) here, in one process."""
    from rad_bench.launch import LaunchError, worker_threads
    from rad_bench.token_run import run_token_suite
    from rad_bench.utils import set_threads

    if launcher != "none" or (workers or 1) > 1 or int(os.environ.get("WORLD_SIZE", "1")) > 1:
        raise LaunchError(
            "a token suite (kind: mqar) runs in one process; drop --workers and --launcher, and run it without torchrun"
        )
    set_threads(worker_threads(1, threads))
    return run_token_suite(s, **where, argv=sys.argv, progress=progress, report=report)


@app.command()
def validate(
    suite: Annotated[Path, typer.Argument(help="suite YAML")],
    *,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override, e.g. train.steps=200")] = None,
) -> None:
    """Load and resolve a suite without running anything; print the resolved YAML."""
    import yaml

    from rad_bench.config import SuiteError
    from rad_bench.kinds import load

    try:
        kind, s = load(suite, set_ or [])
        resolved = kind.resolved(s)
    except SuiteError as e:
        _fail(str(e))
        return
    typer.echo(yaml.safe_dump(resolved, sort_keys=False))
    typer.secho(f"{suite}: ok", fg=typer.colors.GREEN, err=True)


def _summary(obj: type) -> str:
    """The first sentence of a class's own docstring (not an inherited one), else of its module's."""
    import inspect
    import re

    doc = inspect.cleandoc(obj.__dict__.get("__doc__") or "") or inspect.getdoc(inspect.getmodule(obj)) or ""
    para = " ".join(doc.split("\n\n")[0].split())
    return re.split(r"(?<=[.:;])\s(?=[A-Z*`(])", para, maxsplit=1)[0]


def _listing(rows: list[tuple[str, str]]) -> None:
    """``name  text`` rows, names padded to the longest, text wrapped (never cut) to the terminal."""
    import shutil
    import textwrap

    pad = max((len(n) for n, _ in rows), default=0) + 2
    width = max(60, shutil.get_terminal_size((100, 24)).columns)
    for name, text in rows:
        lines = textwrap.wrap(text, width - pad) or [""]
        typer.echo(f"{name:<{pad}}{lines[0]}")
        for line in lines[1:]:
            typer.echo(" " * pad + line)


@app.command()
def ls(
    what: Annotated[str, typer.Argument(help="blocks | metrics | datasets | suites | experiments")] = "blocks",
) -> None:
    """List registered blocks, metrics, datasets, the suites in ./suites, or the studies in ./experiments."""
    from rad_bench.registry import BLOCKS, DATASETS, METRICS, unknown_name_message

    if what == "blocks":
        _listing([(n, f"state={BLOCKS.get(n).state_growth:<8} {_summary(BLOCKS.get(n))}") for n in BLOCKS.names()])
    elif what == "metrics":
        _listing(
            [
                (n, f"{METRICS.get(n).arrow} {METRICS.get(n).scope:<9} {METRICS.get(n).description}")
                for n in METRICS.names()
            ]
        )
    elif what == "datasets":
        _listing([(n, _summary(DATASETS.get(n))) for n in DATASETS.names()])
    elif what in ("suites", "experiments"):
        for f in sorted(Path(what).rglob("*.yaml" if what == "suites" else "*")):
            if not f.name.startswith(("_", ".")) and f.suffix in (".yaml", ".py") and "outputs" not in f.parts:
                typer.echo(str(f))
    else:
        _fail(unknown_name_message("listing", what, ["blocks", "metrics", "datasets", "suites", "experiments"]))


@app.command()
def report(
    paths: Annotated[
        list[Path],
        typer.Argument(
            help="run folder(s) results/<suite>/<run>, suite results folder(s) results/<suite>/ "
            "(newest run), or suite YAML file(s)"
        ),
    ],
    *,
    out: Annotated[
        Path | None, typer.Option(help="folder for one combined report [default with several PATHs: RESULTS/combined]")
    ] = None,
    results: Annotated[Path, typer.Option(help="root folder of run folders (to find a suite YAML's runs)")] = Path(
        "results"
    ),
) -> None:
    """Rebuild leaderboards, figures, report.md and report.html from CSVs (no GPU, no torch).

    One PATH: written into its run folder. Several PATHs (or --out): one combined report with a
    section per suite; suites are never averaged together.
    """
    from rad_bench import report as rep
    from rad_bench.utils import OutsideError

    with _boundary(errors=(rep.ReportError, OutsideError)):
        run_dirs = list(dict.fromkeys(rep.resolve_run_dir(p, results) for p in paths))
        if len(run_dirs) == 1 and out is None:
            target = run_dirs[0]
            rep.write(target)
        else:
            target = out or results / "combined"
            rep.write_combined(run_dirs, target)
    typer.echo((target / "leaderboard.md").read_text())
    typer.echo(f"report: {target / 'report.html'}")


@app.command()
def adopt(run_dir: Annotated[Path, typer.Argument(help="a run folder results/<suite>/<run>")]) -> None:
    """Take in a run folder written before completion records: record each cell that has a whole metrics.csv
    and no done.json as its files are now (on trust), so that runs and reports count it as finished."""
    from rad_bench.completion import adopt as adopt_cells
    from rad_bench.utils import OutsideError, check_tree

    if not (run_dir / "suite.resolved.yaml").is_file() or not (run_dir / "cells").is_dir():
        _fail(f"{run_dir}: not a run folder (no suite.resolved.yaml and cells/); pass results/<suite>/<run>")
    with _boundary(errors=(OutsideError,)):
        check_tree(run_dir)
        cells = adopt_cells(run_dir)
    for cell in cells:
        typer.echo(f"recorded {cell}")
    typer.echo(f"{run_dir}: {len(cells)} cell(s) recorded; `rad-bench report {run_dir}` rebuilds its results")


@app.command()
def bench(
    *,
    quick: Annotated[bool, typer.Option("--quick", help="tiny sizes (~30 s on CPU), for tests")] = False,
    out: Annotated[Path, typer.Option(help="output folder")] = Path("results/bench"),
    device: Annotated[Literal["auto", "cpu", "cuda"], typer.Option(help="auto: cuda when available")] = "auto",
    threads: Annotated[int | None, typer.Option(min=1, help="CPU threads for torch [default: one per core]")] = None,
    section: Annotated[
        list[str] | None,
        typer.Option(
            help="run only this section, repeatable: rollout, scans, train, modes, metrics, steps, suites, gpu "
            "[default: all]"
        ),
    ] = None,
) -> None:
    """Measure efficiency on one device: rollout cost vs length, scans, training, metric throughput."""
    from rad_bench.bench import ALL_SECTIONS
    from rad_bench.bench import run as run_bench
    from rad_bench.utils import set_threads

    unknown = sorted(set(section or ()) - set(ALL_SECTIONS))
    if unknown:
        _fail(f"--section {', '.join(unknown)}: no such bench section; choose from {', '.join(ALL_SECTIONS)}")
        return
    set_threads(threads)
    run_bench(out, quick=quick, device=device, argv=sys.argv, sections=tuple(section or ALL_SECTIONS))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
