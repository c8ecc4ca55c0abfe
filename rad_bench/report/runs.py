"""One run folder as a report: its metrics.csv read into a :class:`RunReport` (sorted leaderboard with the
paired comparison), its figures drawn, and its report section (leaderboard, capacity, retrieval vs
gap, curves, bars, efficiency, samples) as document items. Also finds run folders from a suite's results
folder or its YAML."""

from __future__ import annotations

import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import pandas as pd

from rad_bench.metrics import get_metric
from rad_bench.report import header
from rad_bench.report.document import Caveat, Figure, Heading, Item, Para, Table
from rad_bench.report.figures import (
    chance_levels,
    plot_capacity_vs_state,
    plot_capacity_vs_value,
    plot_metric_vs_frame,
    plot_metric_vs_frame_by_tag,
    plot_metric_vs_gap,
    plot_revisit_bars,
    plot_state_bytes,
    reach_groups,
)
from rad_bench.report.learning import plot_learning_curves, reach_table, read_curves
from rad_bench.report.samples import sample_gif, sample_strip
from rad_bench.report.tables import leaderboard, resolve_baseline, sort_table, unit_of, with_comparison
from rad_bench.report.views import (
    TAG_NOTE,
    compact_table,
    compare_note,
    delta_column,
    efficiency_table,
    frames_note,
    has_reference,
    leaderboard_table,
    plain,
    reading_notes,
    reference_note,
    unit_note,
)
from rad_bench.results import (
    EFFICIENCY_CSV,
    METRICS_CSV,
    STATE_CSV,
    ReportError,
    capacity_key,
    split_column,
    sweep_point,
)

T = TypeVar("T")
METRICS_REQUIRED = ("block", "seed", "clip", "frame", "tag", "metric", "value")
REBUILD = "rebuild it with `rad-bench run SUITE --run-dir RUN` (finished cells are kept, not recomputed)"


def read_csv_checked(
    path: Path, required: Sequence[str], numeric: Sequence[str] = (), fix: str = REBUILD
) -> pd.DataFrame:
    """``path`` as a table with at least one row, the ``required`` columns, and numbers (or blanks) in the
    ``numeric`` ones; anything else is a :class:`ReportError` naming the file, what is wrong and ``fix``."""
    try:
        df = pd.read_csv(path, low_memory=False)  # one dtype per column, not per chunk
    except pd.errors.EmptyDataError:
        raise ReportError(f"{path}: is empty; {fix}") from None
    except (ValueError, UnicodeDecodeError) as e:  # pandas' ParserError is a ValueError
        raise ReportError(f"{path}: is not a readable CSV ({str(e).strip().splitlines()[0]}); {fix}") from None
    if not path.read_bytes().endswith(b"\n"):
        raise ReportError(f"{path}: is cut short (its last line has no end); {fix}")
    missing = [c for c in required if c not in df.columns]
    if missing:
        raise ReportError(f"{path}: missing columns {missing} (it has {list(df.columns)[:8]}); {fix}")
    if df.empty:
        raise ReportError(f"{path}: has a header but no rows; {fix}")
    for col in numeric:
        values = pd.to_numeric(df[col], errors="coerce")
        bad = values.isna() & df[col].notna()
        if bad.any():
            i = int(bad.to_numpy().nonzero()[0][0])
            raise ReportError(f"{path}: line {i + 2}, column '{col}' holds {df[col].iloc[i]!r}, not a number; {fix}")
        df[col] = values
    return df


def optional(what: str, make: Callable[[], T]) -> T | None:
    """``make()``, or None with a one-line warning when an optional input (a sample file, state.csv,
    efficiency.csv) is damaged: the rest of the report is still drawn."""
    try:
        return make()
    except (ReportError, OSError, ValueError, KeyError, IndexError, EOFError, zipfile.BadZipFile) as e:
        print(f"rad-bench report: {what} left out: {e}", file=sys.stderr)
        return None


@dataclass
class RunReport:
    run_dir: Path
    suite: str
    df: pd.DataFrame
    table: pd.DataFrame
    unit: str
    metrics: list[str]
    sort_by: str
    baseline: str | None = None  # the block every other block is paired against; None: no comparison
    figures: dict[str, Path] = field(default_factory=dict)
    capacity: str | None = None  # the numeric data sweep's key (``slots``): the Capacity figures; None: none
    sweep: tuple[str, ...] = ()  # the suite's sweep axes by dotted key (``data.slots``): each a column of the rows
    record: header.Record | None = None  # how it was run (argv.txt, env.json, the suite file): the report's header


def _suite_of(run_dir: Path, df: pd.DataFrame) -> str:
    if "suite" not in df:
        return run_dir.parent.name
    suites = sorted(map(str, df["suite"].unique()))
    if len(suites) > 1:
        raise ReportError(
            f"{run_dir / METRICS_CSV}: mixes suites {suites}; a run folder holds one suite, "
            "so rebuild it (or report each suite's run folder separately)"
        )
    return suites[0]


def load_run(run_dir: Path, sort_by: str | None = None, baseline: str | None = None) -> RunReport:
    """Read one run folder's metrics.csv and compute its (sorted) leaderboard with the paired comparison.
    ``sort_by`` and ``baseline`` default to the run's ``leaderboard:`` settings in suite.resolved.yaml."""
    f = run_dir / METRICS_CSV
    if not f.is_file():
        raise ReportError(f"{run_dir}: no metrics.csv (is this a run folder? runs live under results/<suite>/)")
    df = read_csv_checked(f, METRICS_REQUIRED, numeric=("seed", "clip", "frame", "value"))
    _check_metric_names(f, df)
    if "scored" in df.columns:  # frames the dataset leaves out of the score (recall: repeated asks)
        df = df[df["scored"].fillna(1) != 0]
    record = header.read_record(run_dir)
    resolved = record.resolved
    cfg = resolved.get("leaderboard") or {}
    sort_by = sort_by or str(cfg.get("sort_by") or "psnr_revisit")
    base = resolve_baseline(df, baseline or cfg.get("baseline"))
    table, unit = leaderboard(df)
    table = sort_table(with_comparison(table, df, base), sort_by)
    metrics = list(dict.fromkeys(df["metric"]))
    suite = _suite_of(run_dir, df)
    return RunReport(
        run_dir,
        suite,
        df,
        table,
        unit,
        metrics,
        sort_by,
        base,
        capacity=capacity_key(resolved),
        sweep=tuple(resolved.get("sweep") or ()),
        record=record,
    )


def _check_metric_names(path: Path, df: pd.DataFrame) -> None:
    """Every row names a registered metric (the report draws each with its own spec)."""
    for name in df["metric"].unique():
        line = int((df["metric"].isna() if pd.isna(name) else df["metric"] == name).to_numpy().argmax()) + 2
        if pd.isna(name):
            raise ReportError(f"{path}: line {line} names no metric; {REBUILD}")
        try:
            get_metric(str(name))
        except KeyError as e:
            raise ReportError(f"{path}: line {line}: {e.args[0]}; {REBUILD}") from None


def _read_state(path: Path) -> pd.DataFrame:
    return read_csv_checked(path, ("block", "frame", "state_bytes"), numeric=("frame", "state_bytes"))


def _read_efficiency(run: RunReport) -> pd.DataFrame | None:
    """The run's efficiency.csv, None when it has none or it is damaged (with a warning)."""
    eff = run.run_dir / EFFICIENCY_CSV
    return optional(str(eff), lambda: read_csv_checked(eff, ("block",))) if eff.is_file() else None


def draw_figures(run: RunReport, fig_dir: Path) -> None:
    """Every figure of one run into ``fig_dir``; ``run.figures`` records the ones that were drawn."""
    df, table, figs = *_at_sample_point(run), {}  # type: pd.DataFrame, pd.DataFrame, dict[str, Path | None]
    for m in run.metrics:
        figs[f"{m}_vs_frame"] = plot_metric_vs_frame(df, m, fig_dir / f"{m}_vs_frame")
        if get_metric(m).scope == "per_frame":
            figs[f"{m}_vs_gap"] = plot_metric_vs_gap(df, m, fig_dir / f"{m}_vs_gap")
            figs[f"{m}_vs_frame_by_tag"] = plot_metric_vs_frame_by_tag(df, m, fig_dir / f"{m}_vs_frame_by_tag")
            figs[f"{m}_by_tag"] = plot_revisit_bars(table, m, fig_dir / f"{m}_by_tag")
    state = run.run_dir / STATE_CSV
    if state.is_file():
        shown = set(map(str, table["block"]))  # a data sweep: at its sample point, like the other per-frame figures

        def state_figure() -> Path | None:
            rows = _read_state(state)
            return plot_state_bytes(rows[rows["block"].astype(str).isin(shown)], fig_dir / "state_bytes_vs_frame")

        figs["state_bytes"] = optional(f"state figure ({state})", state_figure)
    figs |= _capacity_figures(run, fig_dir) if run.capacity else {}
    curves = optional("learning curves (cells/*/curve.csv)", lambda: read_curves(run.run_dir))
    if curves is not None:
        chance = chance_levels(df, split_column(str(curves["metric"].iloc[0]))[0])
        figs["learning"] = optional(
            "learning-curve figure",
            lambda: plot_learning_curves(curves, fig_dir / "learning_curves", chance[0] if len(chance) == 1 else None),
        )
    reach, shown = int(df["reach"].iloc[0]) if "reach" in df else 1, _sample_point(run)[0]
    samples = run.run_dir / "samples"
    figs["samples_png"] = optional(
        f"sample strip (a file in {samples})",
        lambda: sample_strip(run.run_dir, fig_dir / "samples.png", reach, blocks=shown),
    )
    figs["samples_gif"] = optional(
        f"sample GIF (a file in {samples})",
        lambda: sample_gif(run.run_dir, fig_dir / "samples.gif", reach, blocks=shown),
    )
    run.figures = {k: v for k, v in figs.items() if v is not None}


def _at_sample_point(run: RunReport) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The rows (metrics, leaderboard) the per-frame figures draw: in a numeric data sweep those at its largest
    value (the capacity figures summarise the sweep; one line per block and point would hide every line)."""
    shown = _sample_point(run)[0]
    if shown is None:
        return run.df, run.table
    return run.df[run.df["block"].astype(str).isin(shown)], run.table[run.table["block"].astype(str).isin(shown)]


def _sample_point(run: RunReport) -> tuple[set[str] | None, str]:
    """The blocks the sample strip shows and a note: in a numeric data sweep those at its largest value
    (each value has its own ground truth), else every block (``None``, "")."""
    if not run.capacity or "variant" not in run.table:
        return None, ""
    values = run.table.apply(lambda r: sweep_point(r, run.sweep).get(str(run.capacity)), axis=1)
    top = max((v for v in values if isinstance(v, (int, float))), default=None)
    if top is None:
        return None, ""
    return set(run.table.loc[values == top, "block"].astype(str)), f" (at {run.capacity}={top:g})"


def _capacity_figures(run: RunReport, fig_dir: Path) -> dict[str, Path | None]:
    """The sort metric vs the swept data value, and vs measured state bytes (needs efficiency.csv)."""
    key, eff = str(run.capacity), _read_efficiency(run)
    capacity = plot_capacity_vs_value(run.table, run.df, key, run.sort_by, fig_dir / f"capacity_vs_{key}", run.sweep)
    figs = {"capacity": capacity}
    if eff is not None:
        figs["capacity_state"] = optional(
            "capacity vs state figure",
            lambda: plot_capacity_vs_state(
                run.table, run.df, eff, key, run.sort_by, fig_dir / "capacity_vs_state", run.sweep
            ),
        )
    return figs


def notes(run: RunReport, reading: bool = True) -> str:
    """The text under a run's leaderboard: sort key, interval, tags, frame counts, Δ, references and (with
    ``reading``) what each metric means."""
    ci = unit_note(run.unit, run.df[run.unit].nunique(), fvd="fvd" in run.metrics)
    lines = [f"Sorted by `{run.sort_by}`. {ci} {TAG_NOTE}", frames_note(run.table)]
    lines += [compare_note(run.table, run.sort_by, run.baseline)]
    lines += [reference_note(run.unit)] if has_reference(run.table) else []
    return "\n".join(lines + (reading_notes(run.metrics) if reading else [])) + "\n"


def run_table(run: RunReport) -> Table:
    """A run's leaderboard view, with the Δ column of its sort metric when there is a baseline."""
    return leaderboard_table(run.table, run.metrics, delta=delta_column(run.table, run.sort_by, run.baseline))


def run_caveats(run: RunReport) -> list[str]:
    """The run's caveats (:func:`rad_bench.report.header.run_caveats`)."""
    return header.run_caveats(run.record or header.read_record(run.run_dir), run.df, run.table)


def _caveat_head(run: RunReport) -> str:
    return "".join(f"> ⚠ {note}\n\n" for note in run_caveats(run))


def markdown(run: RunReport) -> str:
    """leaderboard.md of one run: the table and its notes (a limited run says so first)."""
    return _caveat_head(run) + run_table(run).markdown() + "\n" + notes(run)


def terminal(run: RunReport, wide: bool = False) -> str:
    """What ``rad-bench run`` prints: the compact leaderboard (every column with ``wide``)."""
    if wide:
        return markdown(run)
    delta = delta_column(run.table, run.sort_by, run.baseline)
    table = compact_table(run.table, run.metrics, run.sort_by, delta)
    ci = f"± 95% interval over {run.df[run.unit].nunique()} {run.unit}s"
    star = "; * = paired interval excludes 0" if delta else ""
    return _caveat_head(run) + table.markdown() + f"\n{ci}{star}. Every column: leaderboard.md or --wide.\n"


def _what_was_run(run: RunReport) -> list[Item]:
    """The run header: what was run (a table of facts), then each caveat as a box."""
    facts = header.what_was_run(run.record or header.read_record(run.run_dir), run.df)
    groups = reach_groups(run.df)
    reach = ", ".join(f"{r} frames" + (f" ({', '.join(b)})" if len(groups) > 1 else "") for r, b in groups.items())
    facts += [("attention reach", reach)] if reach else []
    version = f", version {plain(run.df['suite_version'].iloc[0])}" if "suite_version" in run.df else ""
    rows = [["suite", f"`{run.suite}`{version}"], *([k, v] for k, v in facts)]
    return [Table(["", ""], rows, css="facts"), *(Caveat(c) for c in run_caveats(run))]


def _curve_items(run: RunReport) -> list[Item]:
    """Per metric: the overall curve (all frames; FVD per bucket), then one panel per tag."""
    band = f"vertical line = attention reach; band = ± stderr over {unit_of(run.df)}s"
    what = {"_vs_frame": "all frames (FVD: per bucket)", "_vs_frame_by_tag": "one panel per tag"}
    return [
        Figure(run.figures[f"{m}{k}"], f"{m} vs frames since rollout start, {w}; {band}.")
        for m in run.metrics
        for k, w in what.items()
        if f"{m}{k}" in run.figures
    ]


def _gap_items(run: RunReport) -> list[Item]:
    """Retrieval curves, the sort metric's first."""
    first = split_column(run.sort_by)[0]
    caption = (
        "{m} vs gap = frames since the generated frame's place was last shown in the ground-truth context "
        "(novel frames have none); vertical line = sliding attention reach (from it on only memory can "
        "restore the place); dashed = references; band = ± stderr over {unit}s."
    )
    return [
        Figure(run.figures[f"{m}_vs_gap"], caption.format(m=m, unit=unit_of(run.df)))
        for m in sorted(run.metrics, key=lambda m: m != first)
        if f"{m}_vs_gap" in run.figures
    ]


def _capacity_items(run: RunReport) -> list[Item]:
    """The Capacity figures' items (none without a numeric data sweep)."""
    key, unit, metric = run.capacity, unit_of(run.df), split_column(run.sort_by)[0]
    chance = ", ".join(f"{c:.3g}" for c in chance_levels(run.df, metric)) or "not stated"
    caps = {
        "capacity": f"{run.sort_by} vs {key} (swept: data.{key}) per block: mean ± 95% interval over {unit}s; "
        f"dashed = references; dotted line = chance ({chance}, from the rows' protocol); the axis spans the values the "
        "metric can take, so an interval reaching past them is cut at its edge.",
        "capacity_state": f"{run.sort_by} vs measured memory state bytes (state_bytes_final, efficiency.csv; "
        f"log scale): the capacity trade-off, one marker per block and {key}, ± 95% interval over {unit}s; "
        "references have no state and are left out.",
    }
    return [Figure(run.figures[k], c) for k, c in caps.items() if k in run.figures]


def _learning_items(run: RunReport) -> list[Item]:
    """The learning curves (train.eval_every) and how many steps each block took to reach a common level."""
    curves = optional("learning curves (cells/*/curve.csv)", lambda: read_curves(run.run_dir))
    if curves is None or "learning" not in run.figures:
        return []
    steps = curves.loc[curves["step"] > 0, "step"]
    if steps.empty:  # train.steps: 0, the untrained score only
        return []
    metric, every = str(curves["metric"].iloc[0]), int(steps.min())
    caption = (
        f"{metric} on the validation episodes (never the reported test episodes) during training, every "
        f"{every} steps, scored on the frames the leaderboard scores; mean over seeds, band ± stderr. "
        "A sweep sharing one training per block and seed draws it once, at its first data point."
    )
    note = (
        "Steps to reach: the first scored step at which a seed reached the dashed level (halfway from the "
        "untrained score to the best block's final score, one level for every block), mean over the seeds "
        "that reached it."
    )
    return [Figure(run.figures["learning"], caption), reach_table(curves), Para(note)]


def _efficiency_items(run: RunReport) -> list[Item]:
    items: list[Item] = []
    eff = _read_efficiency(run)
    if eff is not None:
        items.append(efficiency_table(eff))
    if "state_bytes" in run.figures:
        items.append(Figure(run.figures["state_bytes"], "Memory state bytes vs rollout frame (mean over seeds)."))
    return items


def _sample_items(run: RunReport) -> list[Item]:
    at = _sample_point(run)[1]
    caps = {
        "samples_png": f"Clip 0{at}: ground truth (top; border = tag) and each block's lowest-seed rollout.",
        "samples_gif": f"Clip 0{at} animated: ground truth (border = tag) next to each block's lowest-seed rollout.",
    }
    return [Figure(run.figures[k], c, frames=True) for k, c in caps.items() if k in run.figures]


def run_items(run: RunReport, level: int, title: str | None = None) -> list[Item]:
    """One run's report section: leaderboard, capacity (a numeric data sweep only), retrieval vs gap, curves
    by tag, bars, efficiency, samples. Subsections are at ``level + 1`` (under the document title when there
    is no section ``title``)."""
    items: list[Item] = [Heading(level, title)] if title else []
    items += [Heading(level + 1, "What was run"), *_what_was_run(run), Heading(level + 1, "Leaderboard")]
    items += [run_table(run), Para(notes(run, reading=False))]
    items += [Heading(level + 1, "How to read the metrics"), Para("\n".join(reading_notes(run.metrics)))]
    capacity = _capacity_items(run)
    items += [Heading(level + 1, "Capacity"), *capacity] if capacity else []
    learning = _learning_items(run)
    items += [Heading(level + 1, "Learning curves"), *learning] if learning else []
    gaps = _gap_items(run)
    items += [Heading(level + 1, "Retrieval vs gap"), *gaps] if gaps else []
    items += [Heading(level + 1, "Metric vs horizon"), *_curve_items(run)]
    bars = [
        Figure(run.figures[f"{m}_by_tag"], f"{m} by tag, ± stderr") for m in run.metrics if f"{m}_by_tag" in run.figures
    ]
    items += [Heading(level + 1, "Scores by tag (revisit = memory)"), *bars] if bars else []
    eff = _efficiency_items(run)
    items += [Heading(level + 1, "Efficiency"), *eff] if eff else []
    samples = _sample_items(run)
    items += [Heading(level + 1, "Samples"), *samples] if samples else []
    return items
