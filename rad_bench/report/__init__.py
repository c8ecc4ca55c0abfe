"""metrics.csv -> leaderboard.csv / leaderboard.md / figures / report.md / report.html.

Reads CSVs and sample files only (no torch, no models), so ``rad-bench report`` redraws everything on
any machine. A run folder's combined CSVs (metrics.csv, state.csv, efficiency.csv) are first rebuilt from
its cells whose completion records verify (:func:`rad_bench.completion.combine`, checksums included).
The package: :mod:`~rad_bench.report.tables` (leaderboard numbers, intervals, pairing
and bootstrap), :mod:`~rad_bench.report.views` (markdown tables and their notes),
:mod:`~rad_bench.report.figures` (matplotlib), :mod:`~rad_bench.report.samples` (strip and GIF),
:mod:`~rad_bench.report.document` (markdown and self-contained HTML) and
:mod:`~rad_bench.report.runs` (one run folder as a report section); this module writes them.

Leaderboard cell = mean over seeds of each seed's mean over (clip, frame) rows with that tag,
± the half-width of its 95% t-interval over seeds (leaderboard.csv also keeps the standard error).
With a single seed the interval is taken over clips instead, and the table says so. Each block is
also paired with a baseline block (``leaderboard.baseline``, default ``none``) on the identical
evaluation episodes: the mean per-(seed, clip) difference and its two-level bootstrap interval.
Reference rows (``copy_last``, ``recall_oracle``: no training) are shown and marked as such.

A report covers one run folder (:func:`write`, into that folder) or several suites side by side
(:func:`write_combined`, into another folder). Each suite's rows are computed from its own
``metrics.csv`` alone, so rows of different suites are never averaged together. Optional inputs are
drawn when the run folder has them: ``efficiency.csv`` (cost per cell) and ``state.csv`` (state
bytes per rollout frame). ``report.html`` embeds every figure as base64, so it is one file to mail.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from filelock import FileLock

from rad_bench.completion import combine, combined_metrics
from rad_bench.kinds import stored_kind
from rad_bench.report.combined import combined_leaderboard, combined_notes, combined_table, section_keys
from rad_bench.report.document import Heading, Item, Para, Table, to_html, to_markdown, write_documents
from rad_bench.report.figures import gap_bins, reach_groups
from rad_bench.report.paths import resolve_run_dir, suite_name
from rad_bench.report.runs import (
    ReportError,
    RunReport,
    draw_figures,
    load_run,
    markdown,
    notes,
    run_items,
    run_table,
    terminal,
)
from rad_bench.report.samples import TAG_COLORS, sample_gif, sample_strip
from rad_bench.report.tables import (
    bootstrap_ci,
    clip_means,
    compare,
    leaderboard,
    pair_with_baseline,
    paired_differences,
    resolve_baseline,
    sort_table,
    with_comparison,
)
from rad_bench.report.tokens import write_tokens
from rad_bench.report.views import efficiency_table, leaderboard_table
from rad_bench.results import LEADERBOARD_CSV, LEADERBOARD_MD, METRICS_CSV, write_table
from rad_bench.utils import atomic_write_text, check_tree

__all__ = [  # the public names, so `from rad_bench import report; report.<name>` keeps working
    "TAG_COLORS",
    "Heading",
    "Item",
    "Para",
    "ReportError",
    "RunReport",
    "Table",
    "bootstrap_ci",
    "clip_means",
    "combined_leaderboard",
    "combined_table",
    "compare",
    "draw_figures",
    "efficiency_table",
    "gap_bins",
    "leaderboard",
    "leaderboard_table",
    "load_run",
    "markdown",
    "notes",
    "pair_with_baseline",
    "paired_differences",
    "reach_groups",
    "resolve_baseline",
    "resolve_run_dir",
    "run_items",
    "run_table",
    "sample_gif",
    "sample_strip",
    "sort_table",
    "suite_name",
    "terminal",
    "to_html",
    "to_markdown",
    "with_comparison",
    "write",
    "write_combined",
    "write_documents",
]


def _combine(run_dir: Path) -> None:
    """The combined CSVs rebuilt from the cells whose completion records verify (none: an error)."""
    if (run_dir / "cells").is_dir():
        (run_dir / "locks").mkdir(exist_ok=True)
        with FileLock(str(run_dir / "locks" / "combine.lock")):  # runs finishing together write them in turn
            if not combine(run_dir):
                raise ReportError(
                    f"{run_dir}: no cell verifies against its completion record; a folder written "
                    f"before records existed is taken in by `rad-bench adopt {run_dir}`"
                )


def write(run_dir: Path, sort_by: str | None = None, baseline: str | None = None) -> pd.DataFrame:
    """(Re)build the combined CSVs from the verified cells, then leaderboard.csv/.md, figures/, report.md and
    report.html inside ``run_dir`` (refused when a symlink under it points outside:
    :func:`rad_bench.utils.check_tree`)."""
    run_dir = Path(run_dir)
    check_tree(run_dir)
    _combine(run_dir)
    if stored_kind(run_dir) == "mqar":  # a token suite's run: its own table and figure, the same files
        return write_tokens(run_dir)
    run = load_run(run_dir, sort_by, baseline)
    write_table(run.run_dir / LEADERBOARD_CSV, run.table)
    atomic_write_text(run.run_dir / LEADERBOARD_MD, markdown(run))
    draw_figures(run, run.run_dir / "figures")
    write_documents(run.run_dir, f"rad-bench report: {run.suite} ({run.run_dir.name})", run_items(run, 1))
    return run.table


REPORT_FILES = ("leaderboard.csv", "leaderboard.md", "report.md", "report.html")  # what a report writes
REPORT_MARKS = ("leaderboard.md", "report.html")  # a folder holding both holds an earlier report


def _check_report_folder(out: Path) -> None:
    """``out`` must be new, empty, or an earlier report (it has its leaderboard.md and report.html):
    anything else may hold files of the user's that the report's would replace."""
    if out.exists() and not out.is_dir():
        raise ReportError(f"{out}: is a file; pass a folder to --out")
    if out.is_dir() and any(out.iterdir()) and not all((out / f).is_file() for f in REPORT_MARKS):
        raise ReportError(
            f"{out}: is not empty and holds no earlier report ({', '.join(REPORT_MARKS)}), so its files "
            f"({', '.join(REPORT_FILES)}) could be replaced; pass a new or empty folder to --out"
        )


def write_combined(run_dirs: list[Path], out: Path) -> pd.DataFrame:
    """leaderboard.csv/.md and report.md/.html for several runs (one section per suite) into ``out``;
    figures go to ``out/figures/<suite>/`` and the run folders are left untouched."""
    _check_report_folder(out)
    if out.is_dir():
        check_tree(out)
    for d in map(Path, run_dirs):  # the run folders are not written: each combined CSV must match its cells
        text = combined_metrics(d)[1] if (d / "cells").is_dir() else None
        if text is not None and text.encode() != (d / METRICS_CSV).read_bytes():
            raise ReportError(
                f"{d / METRICS_CSV}: differs from the finished cells' records (cut short or edited); "
                f"`rad-bench report {d}` rebuilds it from them"
            )
    if tokens := [str(d) for d in run_dirs if stored_kind(Path(d)) == "mqar"]:
        raise ReportError(
            f"{tokens[0]}: a token suite's run (kind: mqar) has no frames or tags to combine with "
            f"others; `rad-bench report {tokens[0]}` writes its own report"
        )
    runs = [load_run(Path(d)) for d in run_dirs]
    for run, key in zip(runs, section_keys(runs)):
        draw_figures(run, out / "figures" / key)
    table = combined_leaderboard(runs)
    view, foot = combined_table(table, runs), combined_notes(runs)
    write_table(out / LEADERBOARD_CSV, table)
    atomic_write_text(out / LEADERBOARD_MD, view.markdown() + "\n" + foot)
    intro = "Suites: " + ", ".join(f"`{r.suite}` from `{r.run_dir}`" for r in runs) + "."
    items: list[Item] = [Para(intro), Heading(2, "Leaderboards (one row per suite and block)"), view, Para(foot)]
    for run in runs:
        items += run_items(run, 2, title=f"Suite {run.suite} ({run.run_dir.name})")
    write_documents(out, "rad-bench combined report", items)
    return table
