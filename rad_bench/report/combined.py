"""Several runs in one report: their leaderboards stacked (one row per suite and block, never averaged
across suites), the combined view and its notes, and a figure folder per section."""

from __future__ import annotations

import re

import pandas as pd

from rad_bench.report.document import Table
from rad_bench.report.runs import RunReport
from rad_bench.report.views import (
    REFERENCE_NOTE,
    TAG_NOTE,
    caveats,
    compare_note,
    delta_column,
    has_reference,
    leaderboard_table,
    unit_note,
)


def combined_leaderboard(runs: list[RunReport]) -> pd.DataFrame:
    """One row per (suite, block): each suite's own leaderboard, stacked, never averaged across suites."""
    parts = [r.table.assign(suite=r.suite, run=r.run_dir.name) for r in runs]
    table = pd.concat(parts, ignore_index=True)
    lead = ["suite", "run", "block"]
    return table[lead + [c for c in table if c not in lead]]


def section_keys(runs: list[RunReport]) -> list[str]:
    """Figure folder per section: the suite name, plus the run name when a suite appears twice."""
    names = [r.suite for r in runs]
    keys = [n if names.count(n) == 1 else f"{n}-{r.run_dir.name}" for n, r in zip(names, runs)]
    return [re.sub(r"[^\w.-]", "_", k) for k in keys]


def combined_notes(runs: list[RunReport]) -> str:
    """The text under a combined leaderboard: each suite's sort key, interval and Δ, then tags and references."""
    per_suite = [
        f"`{r.suite}` (run `{r.run_dir.name}`): sorted by `{r.sort_by}`. {unit_note(r.unit, r.df[r.unit].nunique())} "
        + compare_note(r.table, r.sort_by, r.baseline)
        for r in runs
    ]
    refs = [REFERENCE_NOTE] if any(has_reference(r.table) for r in runs) else []
    limited = list(dict.fromkeys(note for r in runs for note in caveats(r.table)))
    return "\n".join([*limited, *per_suite, TAG_NOTE, *refs]) + "\n"


def _common_delta(table: pd.DataFrame, runs: list[RunReport]) -> tuple[str, str] | None:
    """The Δ column of a combined table: only when every suite sorts by the same column and pairs with
    the same baseline (otherwise each suite's section shows its own)."""
    keys = {(r.sort_by, r.baseline) for r in runs}
    if len(keys) != 1:
        return None
    sort_by, baseline = keys.pop()
    return delta_column(table, sort_by, baseline)


def combined_table(table: pd.DataFrame, runs: list[RunReport]) -> Table:
    """The combined leaderboard view: suite and block first, Δ when all suites share sort key and baseline."""
    metrics = list(dict.fromkeys(m for r in runs for m in r.metrics))
    return leaderboard_table(table, metrics, lead=("suite", "block"), delta=_common_delta(table, runs))
