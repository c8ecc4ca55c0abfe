"""Figures of one run (matplotlib, PNG + PDF): metric vs frame (all tags and one panel per tag), metric
vs gap (retrieval: memory decay), bars by tag and state bytes vs rollout frame. Each marks the
attention reach, bands are ± stderr over seeds (or clips), reference rows are dashed. With a numeric
data sweep (``sweep: {data.slots: [2, 4, 8]}``), the capacity figures: the sort metric vs the swept
value and vs measured state bytes, ± 95% interval, chance marked."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from rad_bench.metrics import get_metric  # noqa: E402
from rad_bench.report.samples import TAG_COLORS  # noqa: E402
from rad_bench.report.tables import flag, label_base, unit_of  # noqa: E402
from rad_bench.report.views import byte_unit  # noqa: E402
from rad_bench.results import TAGS, parse_variant, split_column  # noqa: E402
from rad_bench.utils import atomic_write_bytes  # noqa: E402


def _save(fig: plt.Figure, stem: Path) -> Path:
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight")
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


def _block_colors(df: pd.DataFrame) -> dict[str, str]:
    return {b: f"C{i % 10}" for i, b in enumerate(sorted(df["block"].unique()))}


def _reference_blocks(df: pd.DataFrame) -> set[str]:
    """Labels of the reference rows (no training); empty for CSVs without the ``reference`` column."""
    return set(df.loc[flag(df["reference"]), "block"].astype(str)) if "reference" in df else set()


def _draw_curve(
    ax: plt.Axes, g: pd.DataFrame, unit: str, x: str, block: str, color: str, ref: bool, **line: Any
) -> None:
    """One block's mean line and ± stderr band; reference blocks are dashed and labelled (ref)."""
    mean, err = _curve(g, unit, x)
    ls, label = ("--", f"{block} (ref)") if ref else ("-", block)
    ax.plot(mean.index, mean.values, ls=ls, label=label, color=color, **line)
    ax.fill_between(mean.index, (mean - err).values, (mean + err).values, alpha=0.2, color=color)


def plot_metric_vs_frame(df: pd.DataFrame, metric: str, out: Path) -> Path | None:
    """Metric vs frames since rollout start, all tags; band = ± stderr over seeds (or clips)."""
    sub = df[(df["metric"] == metric) & (df["frame"] >= 0)]
    if sub.empty:
        return None
    unit, colors = unit_of(sub), _block_colors(df)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    refs = _reference_blocks(df)
    for block, g in sub.groupby("block"):
        _draw_curve(ax, g, unit, "frame", block, colors[block], block in refs)
    _mark_reach(ax, reach_groups(df))
    ax.set_xlabel("frames since rollout start")
    ax.set_ylabel(f"{metric} {get_metric(metric).arrow}")
    ax.set_title(f"{metric} vs frame (band: ± stderr over {unit}s)")
    ax.legend(fontsize=7)
    return _save(fig, out)


def plot_metric_vs_frame_by_tag(df: pd.DataFrame, metric: str, out: Path) -> Path | None:
    """One panel per tag, so revisit frames are not averaged with frames attention can still see."""
    sub = df[(df["metric"] == metric) & (df["frame"] >= 0) & df["tag"].isin(TAGS)]
    if sub.empty:
        return None
    unit, colors, groups, refs = unit_of(sub), _block_colors(df), reach_groups(df), _reference_blocks(df)
    fig, axes = plt.subplots(1, len(TAGS), figsize=(13, 3.8), sharex=True, sharey=True)
    for ax, tag in zip(axes, TAGS):
        for block, g in sub[sub["tag"] == tag].groupby("block"):
            _draw_curve(ax, g, unit, "frame", block, colors[block], block in refs, marker=".", ms=3)
        _mark_reach(ax, groups)
        ax.set_title(tag)
        ax.set_xlabel("frames since rollout start")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes[0].set_ylabel(f"{metric} {get_metric(metric).arrow}")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"{metric} vs frame by tag (band: ± stderr over {unit}s)")
    return _save(fig, out)


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
    unit, colors, refs = unit_of(sub), _block_colors(df), _reference_blocks(df)
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for block, g in sub.groupby("block"):
        _draw_curve(ax, g, unit, "gap_bin", block, colors[block], block in refs, marker=".")
    _mark_reach(ax, reach_groups(_sliding(df)))
    centres = sorted(sub["gap_bin"].unique())
    ax.set_xticks(centres, [f"{c:.3g}" for c in centres], fontsize=7 if len(centres) > 10 else None)
    binned = " (bin centre)" if not sub["gap_bin"].equals(sub["gap"].astype(float)) else ""
    ax.set_xlabel(f"gap: frames since the place was last shown in the context{binned}")
    ax.set_ylabel(f"{metric} {get_metric(metric).arrow}")
    ax.set_title(f"{metric} vs frames since the place was last shown (gap)")
    ax.legend(fontsize=7)
    return _save(fig, out)


def plot_revisit_bars(table: pd.DataFrame, metric: str, out: Path) -> Path:
    """One bar per block and tag (leaderboard means), error bars ± stderr."""
    fig, ax = plt.subplots(figsize=(max(6.4, 1.2 * len(table)), 3.4))
    x = np.arange(len(table))
    for i, tag in enumerate(TAGS):
        col = f"{metric}_{tag}"
        if col in table:
            ax.bar(
                x + (i - 1) * 0.27,
                table[col],
                0.27,
                yerr=table[f"{col}_stderr"].fillna(0),
                label=tag,
                color=np.array(TAG_COLORS[tag]) / 255,
            )
    ax.set_xticks(x, table["block"], rotation=15 if len(table) > 4 else 0)
    ax.set_ylabel(f"{metric} {get_metric(metric).arrow}")
    ax.set_title(f"{metric} by tag")
    ax.legend(fontsize=8)
    return _save(fig, out)


def plot_state_bytes(state: pd.DataFrame, out: Path) -> Path | None:
    """State bytes vs rollout frame per block (mean over seeds): constant vs linearly growing memory."""
    if state.empty:
        return None
    per = state.groupby(["block", "frame"])["state_bytes"].mean()
    scale, name = byte_unit(float(per.max()))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for block, g in per.groupby(level="block"):
        ax.plot(g.index.get_level_values("frame"), g.values / scale, label=block)
    ax.set_xlabel("rollout frame")
    ax.set_ylabel(f"memory state ({name})")
    ax.set_ylim(bottom=0)  # from zero, so constant and growing states compare at a glance
    ax.set_title("state size vs rollout frame")
    ax.legend(fontsize=7)
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


def capacity_points(table: pd.DataFrame, key: str, sort_by: str) -> pd.DataFrame:
    """One row per leaderboard row with a number for ``key`` in its ``variant``: ``block``, ``series``
    (the label without the sweep values, plus the other swept values), ``x`` (its ``key`` value),
    ``y`` (``sort_by``), ``err`` (its 95% half-width) and ``reference``."""
    cols = ["block", "series", "x", "y", "err", "reference"]
    if "variant" not in table or sort_by not in table:
        return pd.DataFrame(columns=cols)
    rows = []
    for _, r in table.iterrows():
        point = parse_variant(r["variant"])
        x = point.pop(key, None)
        if isinstance(x, (int, float)):
            rest = ",".join(f"{k}={v}" for k, v in point.items())
            series = label_base(str(r["block"])) + (f"[{rest}]" if rest else "")
            ref = bool(r.get("reference", False))
            rows.append([r["block"], series, float(x), r[sort_by], r.get(f"{sort_by}_ci95", np.nan), ref])
    return pd.DataFrame(rows, columns=cols)


MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # one per swept value in the state figure


def _series_colors(points: pd.DataFrame) -> dict[str, str]:
    """A colour per series, fixed before any is left out, so both capacity figures colour a block alike."""
    return {s: f"C{i % 10}" for i, s in enumerate(sorted(points["series"].unique()))}


def _draw_series(ax: plt.Axes, points: pd.DataFrame, x: str, colors: dict[str, str], key: str | None = None) -> None:
    """One line with ± 95% error bars per series, points in ``x`` order; references dashed. With ``key``
    each point's marker says its swept value (``x`` is then another quantity, e.g. state bytes)."""
    values = sorted(points["x"].unique())
    for series, g in points.groupby("series", sort=True):
        g, color = g.sort_values(x), colors[str(series)]
        ref = bool(g["reference"].any())
        label, ls = (f"{series} (ref)", "--") if ref else (series, "-")
        ax.errorbar(g[x], g["y"], yerr=g["err"].fillna(0).to_numpy(), ls=ls, marker=None if key else "o", ms=4,
                    capsize=3, color=color, label=label)  # fmt: skip
        if key:
            for px, py, v in zip(g[x], g["y"], g["x"]):
                ax.plot(px, py, MARKERS[values.index(v) % len(MARKERS)], color=color, ms=5)
    if key:  # legend entries for the markers
        for j, v in enumerate(values):
            ax.plot([], [], MARKERS[j % len(MARKERS)], color="grey", ms=5, label=f"{key}={v:g}")


def _finish_capacity(ax: plt.Axes, sort_by: str, chances: list[float], title: str) -> None:
    for c in chances:  # what a model that remembers nothing scores
        ax.axhline(c, color="k", ls=":", lw=1, label=f"chance {c:.3g}")
    ax.set_ylabel(f"{sort_by} {get_metric(split_column(sort_by)[0]).arrow}")
    ax.set_title(title)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))  # outside: the curves fill the axes


def plot_capacity_vs_value(table: pd.DataFrame, df: pd.DataFrame, key: str, sort_by: str, out: Path) -> Path | None:
    """``sort_by`` vs the swept data value ``key`` (e.g. slots K) per block; ± 95% interval, chance line."""
    points = capacity_points(table, key, sort_by)
    if points.empty:
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
    table: pd.DataFrame, df: pd.DataFrame, eff: pd.DataFrame, key: str, sort_by: str, out: Path
) -> Path | None:
    """``sort_by`` vs measured state bytes (``state_bytes_final`` of efficiency.csv, mean over a block's
    seeds) per block, one marker per block and ``key`` value, log x; references (no state) are skipped."""
    if "state_bytes_final" not in eff:
        return None
    state = eff.groupby("block")["state_bytes_final"].mean().rename("state")
    points = capacity_points(table, key, sort_by).join(state, on="block")
    colors = _series_colors(points)
    points = points[~points["reference"].astype(bool) & points["state"].notna()]
    if points.empty:
        return None
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    _draw_series(ax, points, "state", colors, key=key)
    ax.set_xscale("log" if (points["state"] > 0).all() else "symlog")
    ax.set_xlabel("memory state after the last generated frame (bytes, log)")
    title = f"{sort_by} vs state bytes (capacity trade-off)"
    _finish_capacity(ax, sort_by, chance_levels(df, split_column(sort_by)[0]), title)
    return _save(fig, out)
