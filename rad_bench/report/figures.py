"""Figures of one run (matplotlib, PNG + PDF): metric vs frame (all tags and one panel per tag), metric
vs gap (retrieval: memory decay), bars by tag and state bytes vs rollout frame. Each marks the
attention reach, bands are ± stderr over seeds (or clips), reference rows are dashed. With a numeric
data sweep (``sweep: {data.slots: [2, 4, 8]}``), the capacity figures: the sort metric vs the swept
value and vs measured state bytes, ± 95% interval, chance marked."""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import EngFormatter, LogLocator, MaxNLocator, NullFormatter  # noqa: E402

from rad_bench.metrics import get_metric  # noqa: E402
from rad_bench.report.samples import TAG_COLORS  # noqa: E402
from rad_bench.report.style import block_color, chance_line, legend_outside, line_styles  # noqa: E402
from rad_bench.report.tables import flag, label_base, unit_of  # noqa: E402
from rad_bench.report.views import byte_unit  # noqa: E402
from rad_bench.results import TAGS, split_column, sweep_point  # noqa: E402
from rad_bench.utils import atomic_write_bytes  # noqa: E402

DPI = 120


def _save(fig: plt.Figure, stem: Path) -> Path:
    """PNG and PDF of ``fig``, cropped to what it draws. The crop is measured once: ``bbox_inches="tight"`` would
    lay the figure out again for each format before rendering it (the PNG is the same pixels)."""
    fig.set_dpi(DPI)
    fig.draw_without_rendering()
    crop = fig.get_tightbbox(fig.canvas.get_renderer()).padded(plt.rcParams["savefig.pad_inches"])
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=DPI, bbox_inches=crop)
        atomic_write_bytes(stem.with_suffix(f".{ext}"), buf.getvalue())
    plt.close(fig)
    return stem.with_suffix(".png")


def reach_groups(df: pd.DataFrame) -> dict[int, list[str]]:
    """Distinct attention reaches of a run and the blocks that have each (reach may differ per cell)."""
    if "reach" not in df:
        return {}
    return {int(r): sorted(map(str, b)) for r, b in df.groupby("reach")["block"].unique().items()}


def _mark_reach(ax: plt.Axes, groups: dict[int, list[str]]) -> None:
    """From frame ``reach`` on, no context frame is reachable by attention any more."""
    styles = ["--", ":", "-.", (0, (6, 2, 1, 2))]
    for i, (reach, blocks) in enumerate(sorted(groups.items())):
        label = f"reach {reach}: context out of attention reach"
        if len(groups) > 1:
            label = f"reach {reach} ({', '.join(blocks)})"
        ax.axvline(reach - 0.5, color="k", ls=styles[i % len(styles)], lw=1, label=label)


def _curve(sub: pd.DataFrame, unit: str, x: str = "frame") -> tuple[pd.Series, pd.Series]:
    """Mean over units of each unit's mean per ``x`` (frame or gap bin), and its standard error."""
    per = sub.groupby([x, unit])["value"].mean().unstack()
    n = per.count(axis=1)
    return per.mean(axis=1), per.std(axis=1, ddof=1) / np.sqrt(n)


def _styles(df: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Every block's line style in this run (:func:`rad_bench.report.style.line_styles`)."""
    return line_styles(list(df["block"].unique()), _reference_blocks(df))


def _reference_blocks(df: pd.DataFrame) -> set[str]:
    """Labels of the reference rows (no training); empty for CSVs without the ``reference`` column."""
    return set(df.loc[flag(df["reference"]), "block"].astype(str)) if "reference" in df else set()


def _draw_curve(ax: plt.Axes, g: pd.DataFrame, unit: str, x: str, style: dict[str, Any], **line: Any) -> None:
    """One block's mean line and ± stderr band in its style (references dashed, labelled (ref), underneath)."""
    mean, err = _curve(g, unit, x)
    kw = {**style, **line} if style.get("marker") is None else {**line, **style, "ms": 4}
    ax.plot(mean.index, mean.values, **kw)
    ax.fill_between(mean.index, (mean - err).values, (mean + err).values, alpha=0.15, color=style["color"], lw=0)


def plot_metric_vs_frame(df: pd.DataFrame, metric: str, out: Path) -> Path | None:
    """Metric vs frames since rollout start, all tags; band = ± stderr over seeds (or clips)."""
    sub = df[(df["metric"] == metric) & (df["frame"] >= 0)]
    if sub.empty:
        return None
    unit, styles = unit_of(sub), _styles(df)
    fig, ax = plt.subplots(figsize=(7.4, 3.8))
    for block, g in sub.groupby("block"):
        _draw_curve(ax, g, unit, "frame", styles[str(block)])
    _mark_reach(ax, reach_groups(df))
    chance_line(ax, chance_levels(df, metric))
    ax.set_xlabel("frames since rollout start")
    ax.set_ylabel(get_metric(metric).label())
    ax.set_title(f"{metric} vs frame (band: ± stderr over {unit}s)")
    legend_outside(ax)
    return _save(fig, out)


def plot_metric_vs_frame_by_tag(df: pd.DataFrame, metric: str, out: Path) -> Path | None:
    """One panel per tag, so revisit frames are not averaged with frames attention can still see."""
    sub = df[(df["metric"] == metric) & (df["frame"] >= 0) & df["tag"].isin(TAGS)]
    if sub.empty:
        return None
    unit, styles, groups, chances = unit_of(sub), _styles(df), reach_groups(df), chance_levels(df, metric)
    tags = [t for t in TAGS if (sub["tag"] == t).any()]  # a tag no frame has gets no empty panel
    fig, axes = plt.subplots(
        1, len(tags), figsize=(1.5 + 4.2 * len(tags), 3.8), sharex=True, sharey=True, squeeze=False
    )
    axes = axes[0]
    for ax, tag in zip(axes, tags):
        for block, g in sub[sub["tag"] == tag].groupby("block"):
            _draw_curve(ax, g, unit, "frame", styles[str(block)], marker=".", ms=3)
        _mark_reach(ax, groups)
        chance_line(ax, chances)
        ax.set_title(tag)
        ax.set_xlabel("frames since rollout start")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel(get_metric(metric).label())
    _shared_legend(fig, axes)
    fig.suptitle(f"{metric} vs frame by tag (band: ± stderr over {unit}s)")
    return _save(fig, out)


def _shared_legend(fig: plt.Figure, axes: Any) -> None:
    """One legend for panels that share their lines (every block, from whichever panel drew it)."""
    seen: dict[str, Any] = {}
    for ax in axes:
        for h, label in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(label, h)
    if seen:
        axes[-1].legend(
            list(seen.values()), list(seen), fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False
        )


def gap_bins(gap: pd.Series, max_distinct: int = 16, n_bins: int = 10) -> pd.Series:
    """Bin centre per row: the gap itself when there are <= ``max_distinct`` distinct gaps, else the
    centre of ~``n_bins`` quantile bins (equal-width bins when tied gaps collapse the quantiles)."""
    if gap.nunique() <= max_distinct:
        return gap.astype(float)
    codes, edges = pd.qcut(gap, n_bins, labels=False, retbins=True, duplicates="drop")
    if len(edges) - 1 < n_bins // 2:
        codes, edges = pd.cut(gap, n_bins, labels=False, retbins=True)
    centres = (edges[:-1] + edges[1:]) / 2
    return pd.Series(centres[np.asarray(codes, dtype=int)], index=gap.index)


def _sliding(df: pd.DataFrame) -> pd.DataFrame:
    """Rows of sliding-window cells: only their reach is a gap (chunk reach depends on the position)."""
    return df[df["attention"].astype(str) == "sliding"] if "attention" in df else df


def plot_metric_vs_gap(df: pd.DataFrame, metric: str, out: Path) -> Path | None:
    """Retrieval (memory decay): metric per gap bin (frames since the place was last shown in the context)
    per block; band = ± stderr over seeds (or clips), references dashed, line at the sliding reach."""
    if "gap" not in df:
        return None
    sub = df[(df["metric"] == metric) & (df["frame"] >= 0) & df["gap"].notna()]
    if sub.empty:
        return None
    sub = sub.assign(gap_bin=gap_bins(sub["gap"].astype(float)))
    unit, styles = unit_of(sub), _styles(df)
    fig, ax = plt.subplots(figsize=(7.4, 3.8))
    for block, g in sub.groupby("block"):
        _draw_curve(ax, g, unit, "gap_bin", styles[str(block)], marker=".")
    centres = sorted(sub["gap_bin"].unique())
    span = max(centres[-1] - centres[0], 1.0)
    left = centres[0] - 0.05 * span
    groups = reach_groups(_sliding(df))
    _mark_reach(ax, {r: b for r, b in groups.items() if r - 0.5 >= left})
    for r in (r for r in groups if r - 0.5 < left):  # the axis starts at the data: say where the reach is
        ax.plot([], [], " ", label=f"reach {r}: every gap shown is beyond it")
    chance_line(ax, chance_levels(df, metric))
    ax.set_xlim(left, centres[-1] + 0.05 * span)
    ax.set_xticks(
        centres,
        [f"{c:.3g}" for c in centres],
        fontsize=7 if len(centres) > 10 else None,
        rotation=45 if len(centres) > 8 else 0,
    )
    binned = " (bin centre)" if not sub["gap_bin"].equals(sub["gap"].astype(float)) else ""
    ax.set_xlabel(f"gap: frames since the place was last shown in the context{binned}")
    ax.set_ylabel(get_metric(metric).label())
    ax.set_title(f"{metric} vs frames since the place was last shown (gap)")
    legend_outside(ax)
    return _save(fig, out)


def plot_revisit_bars(table: pd.DataFrame, metric: str, out: Path) -> Path:
    """One bar per block and tag (leaderboard means), error bars ± stderr."""
    tags = [t for t in TAGS if f"{metric}_{t}" in table and table[f"{metric}_{t}"].notna().any()]
    width = 0.8 / max(1, len(tags))
    fig, ax = plt.subplots(figsize=(max(6.4, 0.4 * len(table) * max(1, len(tags)) + 2), 3.4))
    x = np.arange(len(table))
    for i, tag in enumerate(tags):
        col = f"{metric}_{tag}"
        if col in table:
            ax.bar(
                x + (i - (len(tags) - 1) / 2) * width,
                table[col],
                width,
                yerr=table[f"{col}_stderr"].fillna(0),
                label=tag,
                color=np.array(TAG_COLORS[tag]) / 255,
            )
    refs = flag(table["reference"]) if "reference" in table else pd.Series(False, index=table.index)
    names = [f"{b} (ref)" if r else str(b) for b, r in zip(table["block"], refs)]
    ax.set_xticks(x, names, rotation=30 if len(table) > 4 else 0, ha="right" if len(table) > 4 else "center")
    ax.set_ylabel(get_metric(metric).label())
    ax.set_title(f"{metric} by tag (error bars: ± stderr)")
    legend_outside(ax)
    return _save(fig, out)


def plot_state_bytes(state: pd.DataFrame, out: Path) -> Path | None:
    """State bytes vs rollout frame per block (mean over seeds): constant vs linearly growing memory."""
    if state.empty:
        return None
    per = state.groupby(["block", "frame"])["state_bytes"].mean()
    scale, name = byte_unit(float(per.max()))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for block, g in per.groupby(level="block"):
        ax.plot(g.index.get_level_values("frame"), g.values / scale, label=block, color=block_color(str(block)))
    ax.set_xlabel("rollout frame")
    ax.set_ylabel(f"memory state ({name})")
    ax.set_ylim(bottom=0)  # from zero, so constant and growing states compare at a glance
    ax.set_title("state size vs rollout frame")
    legend_outside(ax)
    return _save(fig, out)


# --------------------------------------------------------------------------------------------
#                                   Capacity (a numeric data sweep)
# --------------------------------------------------------------------------------------------

CHANCE = re.compile(r"chance=([0-9.]+(?:[eE][-+]?[0-9]+)?)")


def chance_levels(df: pd.DataFrame, metric: str) -> list[float]:
    """The chance levels that ``metric``'s rows state in their protocol (``chance=<number>``)."""
    if "protocol" not in df:
        return []
    texts = df.loc[df["metric"] == metric, "protocol"].dropna().astype(str).unique()
    return sorted({float(m.group(1)) for t in texts if (m := CHANCE.search(t))})


def capacity_points(table: pd.DataFrame, key: str, sort_by: str, sweep: Sequence[str] = ()) -> pd.DataFrame:
    """One row per leaderboard row with a number for ``key`` in its ``variant``: ``block``, ``series``
    (the label without the sweep values, plus the other swept values), ``x`` (its ``key`` value),
    ``y`` (``sort_by``), ``err`` (its 95% half-width) and ``reference``."""
    cols = ["block", "series", "x", "y", "err", "reference"]
    if "variant" not in table or sort_by not in table:
        return pd.DataFrame(columns=cols)
    rows = []
    for _, r in table.iterrows():
        point = sweep_point(r, sweep)
        x = point.pop(key, None)
        if isinstance(x, (int, float)):
            rest = ",".join(f"{k}={v}" for k, v in point.items())
            series = label_base(str(r["block"])) + (f"[{rest}]" if rest else "")
            ref = bool(r.get("reference", False))
            rows.append([r["block"], series, float(x), r[sort_by], r.get(f"{sort_by}_ci95", np.nan), ref])
    return pd.DataFrame(rows, columns=cols)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # one per swept value in the state figure


def _series_colors(points: pd.DataFrame) -> dict[str, str]:
    """A colour per series: its block's, as in every other figure."""
    return {s: block_color(s) for s in points["series"].unique()}


def _draw_series(ax: plt.Axes, points: pd.DataFrame, x: str, colors: dict[str, str], key: str | None = None) -> None:
    """One line with ± 95% error bars per series, points in ``x`` order; references dashed. With ``key``
    each point's marker says its swept value (``x`` is then another quantity, e.g. state bytes)."""
    values = sorted(points["x"].unique())
    for series, g in points.groupby("series", sort=True):
        g, color = g.sort_values(x), colors[str(series)]
        ref = bool(g["reference"].any())
        label, ls = (f"{series} (ref)", "--") if ref else (series, "-")
        ax.errorbar(
            g[x],
            g["y"],
            yerr=g["err"].fillna(0).to_numpy(),
            ls=ls,
            marker=None if key else "o",
            ms=4,
            capsize=3,
            color=color,
            label=label,
            zorder=1 if ref else 3,
        )
        if key:
            for px, py, v in zip(g[x], g["y"], g["x"]):
                ax.plot(px, py, MARKERS[values.index(v) % len(MARKERS)], color=color, ms=5)
    if key:  # legend entries for the markers
        for j, v in enumerate(values):
            ax.plot([], [], MARKERS[j % len(MARKERS)], color="grey", ms=5, label=f"{key}={v:g}")


def _finish_capacity(ax: plt.Axes, sort_by: str, chances: list[float], title: str) -> None:
    chance_line(ax, chances)
    spec = get_metric(split_column(sort_by)[0])
    lo, hi = spec.bounds
    if lo is not None and hi is not None:  # the values it can take: error bars past them are cut at the axis
        pad = 0.04 * (hi - lo)
        ax.set_ylim(lo - pad, hi + pad)
    ax.set_ylabel(f"{sort_by} {spec.arrow}")
    ax.set_title(title)
    legend_outside(ax)


def plot_capacity_vs_value(
    table: pd.DataFrame, df: pd.DataFrame, key: str, sort_by: str, out: Path, sweep: Sequence[str] = ()
) -> Path | None:
    """``sort_by`` vs the swept data value ``key`` (e.g. slots K) per block; ± 95% interval, chance line."""
    points = capacity_points(table, key, sort_by, sweep)
    if points["x"].nunique() < 2:  # one swept value: the leaderboard holds it, a curve of one point says nothing
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    _draw_series(ax, points, "x", _series_colors(points))
    values = sorted(points["x"].unique())
    if values[0] > 0 and values[-1] >= 4 * values[0]:  # doubling sweeps (2, 4, 8, 16) spread evenly
        ax.set_xscale("log", base=2)
    ax.set_xticks(values, [f"{v:g}" for v in values])
    ax.set_xlabel(f"{key} (swept: data.{key})")
    _finish_capacity(ax, sort_by, chance_levels(df, split_column(sort_by)[0]), f"{sort_by} vs {key}")
    return _save(fig, out)


def plot_capacity_vs_state(
    table: pd.DataFrame,
    df: pd.DataFrame,
    eff: pd.DataFrame,
    key: str,
    sort_by: str,
    out: Path,
    sweep: Sequence[str] = (),
) -> Path | None:
    """``sort_by`` vs measured state bytes (``state_bytes_final`` of efficiency.csv, mean over a block's
    seeds) per block, one marker per block and ``key`` value, log x; references (no state) are skipped."""
    if "state_bytes_final" not in eff:
        return None
    state = eff.groupby("block")["state_bytes_final"].mean().rename("state")
    points = capacity_points(table, key, sort_by, sweep).join(state, on="block")
    colors = _series_colors(points)
    points = points[~points["reference"].astype(bool) & points["state"].notna()]
    if points.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    _draw_series(ax, points, "state", colors, key=key)
    ax.set_xscale("log" if (points["state"] > 0).all() else "symlog")
    ax.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))  # a decade or two: 1-2-5 ticks
    ax.xaxis.set_major_formatter(EngFormatter(unit="B", sep=" "))
    ax.xaxis.set_minor_formatter(NullFormatter())
    ax.set_xlabel("memory state after the last generated frame (log scale)")
    title = f"{sort_by} vs state bytes (capacity trade-off)"
    _finish_capacity(ax, sort_by, chance_levels(df, split_column(sort_by)[0]), title)
    return _save(fig, out)
