"""metrics.csv -> leaderboard.csv / leaderboard.md / figures / report.md / report.html.

Reads CSVs and sample files only (no torch, no models), so ``rad-bench report`` redraws everything on
any machine.

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

import base64
import html
import io
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402
from scipy.special import stdtrit  # noqa: E402  (not scipy.stats: it probes for torch)

from rad_bench.metrics import get_metric  # noqa: E402
from rad_bench.tags import TAGS, tag_frames  # noqa: E402
from rad_bench.utils import atomic_write_bytes, atomic_write_text  # noqa: E402

TAG_COLORS = {"in_window": (60, 170, 80), "revisit": (240, 140, 20), "novel": (140, 140, 140)}
GROUPS = (*TAGS, "all")
# cell settings carried into the leaderboard when metrics.csv has them (they differ between cells)
CARRY = ("variant", "train_mode", "attention", "window", "reach", "prefetch_grad", "clean_prefix", "memory_action")
SHOWN = ("train_mode", "window")  # of those, the ones leaderboard.md shows as columns


class ReportError(ValueError):
    """A report cannot be built; the message names the path and the fix."""


# --------------------------------------------------------------------------------------------
#                                   Leaderboard
# --------------------------------------------------------------------------------------------


def _stderr(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def _ci95(x: pd.Series) -> float:
    """Half-width of the 95% t-interval of the mean: t_{0.975, n-1} * sd / sqrt(n)."""
    x = x.dropna()
    if len(x) < 2:
        return float("nan")
    return float(stdtrit(len(x) - 1, 0.975) * x.std(ddof=1) / np.sqrt(len(x)))


def _flag(s: pd.Series) -> pd.Series:
    """A True/False column read from CSV (bools, or strings once NaN mixed in) as booleans."""
    return s.astype(str).str.lower().eq("true")


def _info(df: pd.DataFrame) -> pd.DataFrame:
    """Per-block descriptive columns; optional ones only when metrics.csv has them."""
    cols = [c for c in ("block_name", *CARRY, "reference", "params_total", "params_block", "impl") if c in df]
    info = df.groupby("block").agg(**{c: (c, "first") for c in cols}, seeds=("seed", "nunique"))
    if "reference" in info:
        info["reference"] = _flag(info["reference"])
    return info


def _per_unit_stats(df: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Long table (block, metric, group): mean, stderr and ci95 over units of each unit's mean."""
    parts = []
    for group in GROUPS:
        sub = df if group == "all" else df[df["tag"] == group]
        per_unit = sub.groupby(["block", "metric", unit])["value"].mean()
        agg = per_unit.groupby(["block", "metric"]).agg(["mean", _stderr, _ci95])
        agg.columns = ["mean", "stderr", "ci95"]
        parts.append(agg.reset_index().assign(group=group))
    long = pd.concat(parts)
    return long.assign(col=long["metric"] + "_" + long["group"])


def leaderboard(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One row per block: ``<metric>_<tag>`` mean, ``..._ci95`` and ``..._stderr`` columns, plus params."""
    unit = _unit(df)
    set_metrics = [m for m in df["metric"].unique() if get_metric(m).scope == "set"]
    # a set metric's leaderboard value is its whole-episode row (frame -1); buckets are for plots
    df = df[~df["metric"].isin(set_metrics) | (df["frame"] == -1)]
    long = _per_unit_stats(df, unit)
    wide = long.pivot(index="block", columns="col", values="mean")
    ci = long.pivot(index="block", columns="col", values="ci95").add_suffix("_ci95")
    err = long.pivot(index="block", columns="col", values="stderr").add_suffix("_stderr")
    frames = df.groupby(["block", "tag"])[["clip", "frame"]].apply(lambda g: len(g.drop_duplicates()))
    counts = frames.unstack(fill_value=0).add_prefix("frames_")
    table = _info(df).join(wide).join(ci).join(err).join(counts)
    return table.reset_index(), unit


def sort_table(table: pd.DataFrame, sort_by: str) -> pd.DataFrame:
    """Best first by ``sort_by`` (``<metric>_<tag>``); the metric's direction comes from the registry."""
    if sort_by not in table:
        return table
    m = sort_by.split("_")[0]
    return table.sort_values(sort_by, ascending=not get_metric(m).higher_is_better)


# --------------------------------------------------------------------------------------------
#                                   Paired comparison against a baseline block
# --------------------------------------------------------------------------------------------


def _label_base(label: str) -> str:
    """``lstm_attn[window=2]`` -> ``lstm_attn``: the display label without its sweep values."""
    return re.sub(r"\[.*\]$", "", label)


def resolve_baseline(df: pd.DataFrame, configured: str | None) -> str | None:
    """The baseline block: ``leaderboard.baseline`` when set, else ``none`` when the run has it, else None."""
    if configured:
        return configured
    names = set(df["block_name"].astype(str)) if "block_name" in df else set()
    return "none" if "none" in names | {_label_base(str(b)) for b in df["block"].unique()} else None


def _is_baseline(info: pd.DataFrame, baseline: str) -> pd.Series:
    """Per block: is it (a sweep point of) the baseline, by block name or display label."""
    labels = info.index.to_series().astype(str)
    hit = labels.map(_label_base).eq(baseline) | labels.eq(baseline)
    return hit | info["block_name"].astype(str).eq(baseline) if "block_name" in info else hit


def pair_with_baseline(info: pd.DataFrame, baseline: str) -> dict[str, str]:
    """block label -> the baseline label it is paired with: the same ``variant`` when the baseline has
    it, else the baseline's unvaried row (or its only row). Baseline rows themselves are left out."""
    is_base = _is_baseline(info, baseline)
    variant = info["variant"].fillna("").astype(str) if "variant" in info else pd.Series("", index=info.index)
    by_variant: dict[str, str] = {}
    for label in sorted(info.index[is_base.to_numpy()], key=lambda b: _label_base(str(b)) != baseline):
        by_variant.setdefault(variant[label], str(label))
    only = next(iter(by_variant.values())) if len(by_variant) == 1 else None
    fallback = by_variant.get("", only)
    pairs = {str(b): by_variant.get(variant[b], fallback) for b in info.index[~is_base.to_numpy()]}
    return {b: p for b, p in pairs.items() if p is not None}


def clip_means(df: pd.DataFrame) -> pd.DataFrame:
    """Per-frame metrics only: mean over each (block, seed, clip)'s frames of each tag and of all frames;
    index (block, seed, clip), one column per ``<metric>_<tag>``."""
    per_frame = [m for m in df["metric"].unique() if get_metric(m).scope == "per_frame"]
    sub = df[df["metric"].isin(per_frame) & (df["frame"] >= 0)]
    long = pd.concat([sub[sub["tag"].isin(TAGS)].assign(group=lambda d: d["tag"]), sub.assign(group="all")])
    wide = long.groupby(["block", "seed", "clip", "metric", "group"])["value"].mean().unstack(["metric", "group"])
    wide.columns = [f"{m}_{g}" for m, g in wide.columns]
    return wide


def _broadcast_seed(x: pd.DataFrame, other: pd.DataFrame) -> pd.DataFrame:
    """A one-seed side of a pair is repeated over the other side's seeds (same clips)."""
    seeds = x.index.get_level_values("seed").unique()
    others = other.index.get_level_values("seed").unique()
    if len(seeds) != 1 or set(others) == set(seeds):
        return x
    return pd.concat({s: x.droplevel("seed") for s in others}, names=["seed"])


def paired_differences(cm: pd.DataFrame, block: str, base: str) -> pd.DataFrame:
    """d[seed, clip] = block - baseline per column of :func:`clip_means`, on the identical episodes."""
    x, y = cm.loc[block], cm.loc[base]
    x = _broadcast_seed(x, y)
    y = _broadcast_seed(y, x)
    return x - y  # aligned on (seed, clip); a pair missing on either side is NaN


def _nested_mean(x: np.ndarray) -> np.ndarray:
    """Mean over the last axis (clips), then the one before (seeds), each ignoring NaN."""
    for _ in range(2):
        ok = np.isfinite(x)
        n = ok.sum(-1)
        x = np.where(n > 0, np.where(ok, x, 0.0).sum(-1) / np.maximum(n, 1), np.nan)
    return x


def bootstrap_ci(d: np.ndarray, n_boot: int = 2000, seed: int = 0) -> tuple[float, float, float]:
    """Mean of ``d`` (seeds x clips, NaN = missing) over clips then seeds, and the 95% percentile interval
    of a two-level bootstrap: seeds with replacement, then clips with replacement within each seed."""
    if not np.isfinite(d).any():
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)  # fixed: the same run always gives the same report
    s, c = d.shape
    seeds = rng.integers(0, s, (n_boot, s, 1))
    clips = rng.integers(0, c, (n_boot, s, c))
    boot = _nested_mean(d[seeds, clips])
    lo, hi = np.percentile(boot[np.isfinite(boot)], [2.5, 97.5])
    return float(_nested_mean(d)), float(lo), float(hi)


def _diff_columns(d: pd.DataFrame, n_boot: int) -> dict[str, object]:
    out: dict[str, object] = {}
    for col in d.columns:
        mean, lo, hi = bootstrap_ci(d[col].unstack("clip").to_numpy(dtype=float), n_boot)
        sig = bool(lo > 0 or hi < 0)  # False for NaN: no interval, no claim
        out |= {f"{col}_diff": mean, f"{col}_diff_lo": lo, f"{col}_diff_hi": hi, f"{col}_diff_sig": sig}
    return out


def compare(df: pd.DataFrame, info: pd.DataFrame, baseline: str, n_boot: int = 2000) -> pd.DataFrame:
    """Per block paired with the baseline (index: block): ``<col>_diff``, ``_diff_lo``, ``_diff_hi``,
    ``_diff_sig`` for every per-frame ``<metric>_<tag>`` column, and ``baseline`` (the paired label)."""
    cm = clip_means(df)
    rows = {
        block: {"baseline": base, **_diff_columns(paired_differences(cm, block, base), n_boot)}
        for block, base in pair_with_baseline(info, baseline).items()
        if block in cm.index and base in cm.index
    }
    return pd.DataFrame.from_dict(rows, orient="index")


def with_comparison(table: pd.DataFrame, df: pd.DataFrame, baseline: str | None) -> pd.DataFrame:
    """``table`` plus the :func:`compare` columns (baseline rows: empty, ``_sig`` False)."""
    if baseline is None:
        return table
    diffs = compare(df, table.set_index("block"), baseline)
    if diffs.empty:
        return table
    table = table.merge(diffs, left_on="block", right_index=True, how="left")
    for c in (c for c in diffs if c.endswith("_sig")):
        table[c] = table[c].eq(True)
    return table


# --------------------------------------------------------------------------------------------
#                                   Leaderboard views and notes
# --------------------------------------------------------------------------------------------


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]

    def markdown(self) -> str:
        """A GitHub-flavoured markdown table."""
        lines = ["| " + " | ".join(self.header) + " |", "|" + "---|" * len(self.header)]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in self.rows]) + "\n"


def _fmt(mean: float, err: float) -> str:
    if pd.isna(mean):
        return "—"
    return f"{mean:.3f}" if pd.isna(err) else f"{mean:.3f} ± {err:.3f}"


def _fmt_diff(row: pd.Series, col: str) -> str:
    """``+1.230 [0.400, 2.050] *``: paired difference, its bootstrap interval, ``*`` when it excludes 0."""
    d, lo, hi = (row.get(f"{col}_diff{s}", np.nan) for s in ("", "_lo", "_hi"))
    if pd.isna(d):
        return "—"
    star = " *" if str(row.get(f"{col}_diff_sig")) == "True" else ""
    return f"{d:+.3f} [{lo:.3f}, {hi:.3f}]{star}"


def _plain(v: object) -> str:
    """A descriptive cell: ints stay ints even after a concat turned them into floats."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _lead_cell(row: pd.Series, c: str) -> str:
    """A lead column; the block of a reference row is marked ``(ref)``."""
    ref = c == "block" and str(row.get("reference")) == "True"
    return _plain(row[c]) + (" (ref)" if ref else "")


def _metric_columns(metrics: list[str]) -> list[tuple[str, str]]:
    """(column, header) pairs: per-frame metrics by tag and overall, set metrics overall only."""
    out = []
    for m in metrics:
        groups = GROUPS if get_metric(m).scope == "per_frame" else ("all",)
        out += [(f"{m}_{g}", f"{m}_{g} {get_metric(m).arrow}") for g in groups]
    return out


def delta_column(table: pd.DataFrame, sort_by: str, baseline: str | None) -> tuple[str, str] | None:
    """(sort column, baseline) of the leaderboard's paired-difference column, when the table has one."""
    return (sort_by, baseline) if baseline and f"{sort_by}_diff" in table else None


def leaderboard_table(
    table: pd.DataFrame,
    metrics: list[str],
    lead: tuple[str, ...] = ("block",),
    delta: tuple[str, str] | None = None,
) -> Table:
    """The markdown/HTML view of a leaderboard: ``lead`` columns, cell settings, params, metrics
    (mean ± ci95) and, with ``delta = (column, baseline)``, that column's paired difference."""
    info = [*lead, *(c for c in SHOWN if c in table)]
    cols = _metric_columns(metrics)
    rows = []
    for _, row in table.iterrows():
        params = row.get("params_total", np.nan)
        cells = [_lead_cell(row, c) for c in info] + ["—" if pd.isna(params) else f"{int(params):,}"]
        cells += [_fmt(row.get(c, np.nan), row.get(f"{c}_ci95", np.nan)) for c, _ in cols]
        rows.append(cells + ([_fmt_diff(row, delta[0])] if delta else []))
    extra = [f"Δ {delta[0]} vs {delta[1]} (95% CI)"] if delta else []
    return Table([*info, "params", *(h for _, h in cols), *extra], rows)


TAG_NOTE = (
    "Tags come from the ground-truth context the model was given: `in_window` = the place is shown in a "
    "context frame still within attention reach, `revisit` = shown in the context only beyond the reach "
    "(only memory can restore it), `novel` = never shown in the context; generated frames never count as "
    "shown. Reach: depth x (window - 1) + 1 frames for sliding windows, the frame's own chunk for chunk "
    "attention."
)

REFERENCE_NOTE = (
    "Rows marked (ref) are references that involve no training, scored on the same episodes: "
    "`copy_last`: repeats the last context frame; a learned block below it has learned nothing useful. "
    "`recall_oracle`: the most recent context frame of the same place; the distance to it is what memory "
    "could still gain. Their intervals are over seeds like any block (zero width: they are deterministic "
    "given the episodes)."
)


def _unit_note(unit: str, n: int) -> str:
    if unit == "clip":
        return (
            f"Mean ± 95% t-interval over {n} clips "
            "(one seed: the interval is over evaluation clips, and over FVD batches, not seeds)."
        )
    return f"Mean ± 95% t-interval over {n} seeds (half-width t(0.975, n-1) x sd / sqrt(n) of the seed means)."


def _frames_note(table: pd.DataFrame) -> str:
    cols = [f"frames_{t}" for t in TAGS]
    counts = table.reindex(columns=cols).fillna(0).astype(int).drop_duplicates()
    if len(counts) > 1:
        return (
            "Scored frames per block and seed differ between blocks (their reach differs): "
            "see `frames_*` in leaderboard.csv."
        )
    n = dict(zip(TAGS, counts.iloc[0])) if len(counts) else dict.fromkeys(TAGS, 0)
    return f"Scored frames per block and seed: {n['in_window']} in_window, {n['revisit']} revisit, {n['novel']} novel."


def _compare_note(table: pd.DataFrame, sort_by: str, baseline: str | None) -> str:
    """How the Δ column was computed and which sign is better, or why there is none."""
    if baseline is None:
        return "No paired comparison: `leaderboard.baseline` is not set and the run has no `none` block."
    if not any(c.endswith("_diff") for c in table):
        return f"No paired comparison: the baseline `{baseline}` is not in this run."
    if f"{sort_by}_diff" not in table:
        return f"`{sort_by}` is a set metric: paired differences to `{baseline}` are in leaderboard.csv (`*_diff`)."
    spec = get_metric(sort_by.split("_")[0])
    better = "higher-is-better, so Δ > 0" if spec.higher_is_better else "lower-is-better, so Δ < 0"
    sweep = "; sweep points pair within their variant" if table.get("variant", pd.Series()).notna().any() else ""
    return (
        f"Δ = block − `{baseline}` on the identical evaluation episodes (per seed and clip{sweep}), mean and "
        "95% two-level bootstrap interval (seeds, then clips; 2000 resamples). `*` = the interval excludes "
        f"zero. {spec.name} is {better} means the block beats `{baseline}`."
    )


def _has_reference(table: pd.DataFrame) -> bool:
    return "reference" in table and bool(_flag(table["reference"]).any())


def notes(run: RunReport) -> str:
    """The text under a run's leaderboard: sort key, interval, tags, frame counts, Δ and references."""
    lines = [
        f"Sorted by `{run.sort_by}`. {_unit_note(run.unit, run.df[run.unit].nunique())} {TAG_NOTE}",
        _frames_note(run.table),
        _compare_note(run.table, run.sort_by, run.baseline),
    ]
    return "\n".join(lines + ([REFERENCE_NOTE] if _has_reference(run.table) else [])) + "\n"


def run_table(run: RunReport) -> Table:
    """A run's leaderboard view, with the Δ column of its sort metric when there is a baseline."""
    return leaderboard_table(run.table, run.metrics, delta=delta_column(run.table, run.sort_by, run.baseline))


def markdown(run: RunReport) -> str:
    """leaderboard.md of one run: the table and its notes."""
    return run_table(run).markdown() + "\n" + notes(run)


# --------------------------------------------------------------------------------------------
#                                   Figures
# --------------------------------------------------------------------------------------------


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


def _unit(df: pd.DataFrame) -> str:
    return "seed" if df["seed"].nunique() > 1 else "clip"


def _reference_blocks(df: pd.DataFrame) -> set[str]:
    """Labels of the reference rows (no training); empty for CSVs without the ``reference`` column."""
    return set(df.loc[_flag(df["reference"]), "block"].astype(str)) if "reference" in df else set()


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
    unit, colors = _unit(sub), _block_colors(df)
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
    unit, colors, groups, refs = _unit(sub), _block_colors(df), reach_groups(df), _reference_blocks(df)
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
    unit, colors, refs = _unit(sub), _block_colors(df), _reference_blocks(df)
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


def _byte_unit(n: float) -> tuple[float, str]:
    for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return float(scale), name
    return 1.0, "B"


def _fmt_bytes(n: float) -> str:
    if pd.isna(n):
        return "—"
    scale, name = _byte_unit(n)
    return f"{int(n)} B" if name == "B" else f"{n / scale:.2f} {name}"


def plot_state_bytes(state: pd.DataFrame, out: Path) -> Path | None:
    """State bytes vs rollout frame per block (mean over seeds): constant vs linearly growing memory."""
    if state.empty:
        return None
    per = state.groupby(["block", "frame"])["state_bytes"].mean()
    scale, name = _byte_unit(float(per.max()))
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for block, g in per.groupby(level="block"):
        ax.plot(g.index.get_level_values("frame"), g.values / scale, label=block)
    ax.set_xlabel("rollout frame")
    ax.set_ylabel(f"memory state ({name})")
    ax.set_ylim(bottom=0)  # from zero, so constant and growing states compare at a glance
    ax.set_title("state size vs rollout frame")
    ax.legend(fontsize=7)
    return _save(fig, out)


EFFICIENCY = {
    "rollout_frames_per_s": "rollout frames/s",
    "train_step_s": "train step (s)",
    "state_bytes_first": "state, first frame",
    "state_bytes_final": "state, final frame",
    "peak_memory_bytes": "peak memory",
    "params_total": "params",
}


def efficiency_table(eff: pd.DataFrame) -> Table:
    """Per block, mean over seeds of each cost column of efficiency.csv that exists."""
    cols = [c for c in EFFICIENCY if c in eff]
    lead = [c for c in ("train_mode", "state_growth") if c in eff]
    mean = eff.groupby("block")[cols].mean()
    info = eff.groupby("block")[lead].first()
    seeds = eff.groupby("block")["seed"].nunique() if "seed" in eff else pd.Series(1, index=mean.index)
    rows = []
    for block, row in mean.iterrows():
        cells = [str(block), *(_plain(info.loc[block, c]) for c in lead), str(seeds[block])]
        for c in cols:
            v = row[c]
            if c.endswith("_bytes") or c.startswith("state_bytes"):
                cells.append(_fmt_bytes(v))
            elif c == "params_total":
                cells.append("—" if pd.isna(v) else f"{int(v):,}")
            else:
                cells.append("—" if pd.isna(v) else f"{v:.4g}")
        rows.append(cells)
    return Table(["block", *lead, "seeds", *(EFFICIENCY[c] for c in cols)], rows)


# --------------------------------------------------------------------------------------------
#                                   Samples: strip and GIF
# --------------------------------------------------------------------------------------------


def _first_seed_samples(run_dir: Path) -> dict[str, Path]:
    """block -> its lowest-seed samples file (``samples/<block>-s<seed>.npz``)."""
    found: dict[str, tuple[int, Path]] = {}
    for f in (run_dir / "samples").glob("*-s*.npz"):
        block, seed = f.stem.rsplit("-s", 1)
        if seed.isdigit() and (block not in found or int(seed) < found[block][0]):
            found[block] = (int(seed), f)
    return {b: found[b][1] for b in sorted(found)}


def _image(frame: np.ndarray) -> Image.Image:
    return Image.fromarray(frame[..., 0] if frame.shape[-1] == 1 else frame)


def _sample_tags(ref: np.lib.npyio.NpzFile, clip: int, context: int, reach: int) -> list[str]:
    """Each generated frame's tag: the samples file's ``tags`` when it has them (written by the runner
    with the exact reach of the cell), else recomputed from ``places`` with a sliding ``reach``."""
    if "tags" in ref.files:
        try:
            return [str(t) for t in ref["tags"][clip]]
        except ValueError:  # an object array would need pickle, which a report never loads
            pass
    return tag_frames(ref["places"][clip].tolist(), context, reach)


def sample_strip(run_dir: Path, out: Path, reach: int, clip: int = 0, max_frames: int = 16) -> Path | None:
    """PNG: ground truth (top, border coloured by tag) and each block's seed-0 rollout below it."""
    first_seed = _first_seed_samples(run_dir)
    if not first_seed:
        return None
    ref = np.load(next(iter(first_seed.values())))
    context = int(ref["context"])
    gen_len = ref["generated"].shape[1]
    idx = np.linspace(0, gen_len - 1, min(max_frames, gen_len)).round().astype(int)
    tags = _sample_tags(ref, clip, context, reach)
    s = ref["truth"].shape[2]
    rows = [("ground truth", ref["truth"][clip, context:][idx])] + [
        (b, np.load(f)["generated"][clip][idx]) for b, f in first_seed.items()
    ]
    pad, label_w = 2, max(90, 6 * max(len(name) for name, _ in rows) + 8)  # the default font is ~6 px a character
    img = Image.new("RGB", (label_w + len(idx) * (s + 2 * pad), len(rows) * (s + 2 * pad) + 14), "white")
    draw = ImageDraw.Draw(img)
    for r, (name, frames) in enumerate(rows):
        y = 14 + r * (s + 2 * pad)
        draw.text((2, y + s // 2 - 5), name, fill="black")
        for c, (fi, frame) in enumerate(zip(idx, frames)):
            x = label_w + c * (s + 2 * pad)
            if r == 0:
                draw.rectangle([x, y, x + s + 2 * pad - 1, y + s + 2 * pad - 1], fill=TAG_COLORS[tags[fi]])
                draw.text((x + 1, 1), str(fi), fill="black")
            img.paste(_image(frame), (x + pad, y + pad))
    img = img.resize((img.width * 2, img.height * 2), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())
    return out


def _gif_frame(columns: list[tuple[str, np.ndarray]], t: int, tag: str, scale: int) -> Image.Image:
    """One GIF frame: a labelled tile per column, the ground-truth tile framed in its tag colour."""
    h, w = columns[0][1].shape[1] * scale, columns[0][1].shape[2] * scale
    pad, gap, top, bottom = 3, 6, 14, 14
    col = max(w + 2 * pad, 6 * max(len(name) for name, _ in columns) + 2)  # room for the full label
    img = Image.new("RGB", (len(columns) * (col + gap), top + h + 2 * pad + bottom), "white")
    draw = ImageDraw.Draw(img)
    for i, (name, frames) in enumerate(columns):
        x = i * (col + gap)
        draw.text((x + 1, 1), name, fill="black")
        if i == 0:
            draw.rectangle([x, top, x + w + 2 * pad - 1, top + h + 2 * pad - 1], fill=TAG_COLORS[tag])
        img.paste(_image(frames[t]).resize((w, h), Image.NEAREST), (x + pad, top + pad))
    draw.text((1, top + h + 2 * pad + 1), f"frame {t}: {tag}", fill="black")
    return img


def sample_gif(run_dir: Path, out: Path, reach: int, clip: int = 0, frame_ms: int = 250) -> Path | None:
    """Animated GIF of one clip: ground truth next to each block's lowest-seed rollout, frame by frame."""
    files = _first_seed_samples(run_dir)
    if not files:
        return None
    data = {b: np.load(f) for b, f in files.items()}
    ref = next(iter(data.values()))
    context = int(ref["context"])
    truth = ref["truth"][clip, context:]
    columns = [("ground truth", truth)] + [(b, d["generated"][clip]) for b, d in data.items()]
    n = min(len(frames) for _, frames in columns)
    tags = _sample_tags(ref, clip, context, reach)
    scale = max(1, round(96 / max(truth.shape[1:3])))
    images = [_gif_frame(columns, t, tags[t], scale) for t in range(n)]
    buf = io.BytesIO()
    images[0].save(buf, format="GIF", save_all=True, append_images=images[1:], duration=frame_ms, loop=0)
    atomic_write_bytes(out, buf.getvalue())
    return out


# --------------------------------------------------------------------------------------------
#                                   Report documents (markdown and self-contained HTML)
# --------------------------------------------------------------------------------------------


@dataclass
class Heading:
    level: int
    text: str


@dataclass
class Para:
    text: str


@dataclass
class Figure:
    path: Path
    caption: str


Item = Heading | Para | Table | Figure


def to_markdown(items: list[Item], base: Path) -> str:
    """Markdown next to its figures: images are linked relative to ``base`` (the report's folder)."""
    out = []
    for it in items:
        if isinstance(it, Heading):
            out.append("#" * it.level + " " + it.text)
        elif isinstance(it, Para):
            out.append(it.text.strip())
        elif isinstance(it, Table):
            out.append(it.markdown().strip())
        else:
            out.append(f"![{it.caption}]({Path(os.path.relpath(it.path, base)).as_posix()})\n\n*{it.caption}*")
    return "\n\n".join(out) + "\n"


def _inline(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text.strip()))


def _data_uri(path: Path) -> str:
    mime = {".png": "image/png", ".gif": "image/gif"}[path.suffix]
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def _html_item(it: Item) -> str:
    if isinstance(it, Heading):
        return f"<h{it.level}>{html.escape(it.text)}</h{it.level}>"
    if isinstance(it, Para):
        return "".join(f"<p>{_inline(line)}</p>" for line in it.text.strip().splitlines())
    if isinstance(it, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in it.header)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in it.rows)
        return f'<div class="wide"><table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>'
    cap = html.escape(it.caption)
    return f'<figure><img src="{_data_uri(it.path)}" alt="{cap}"><figcaption>{cap}</figcaption></figure>'


CSS = (
    "body{font-family:sans-serif;max-width:1400px;margin:2em auto;padding:0 1em;color:#222}"
    "table{border-collapse:collapse;font-size:13px}th,td{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}th{background:#f3f3f3}.wide{overflow-x:auto}"
    "img{max-width:100%;image-rendering:pixelated}figure{margin:1em 0}figcaption{font-size:13px;color:#555}"
    "code{background:#f3f3f3;padding:0 3px}"
)


def to_html(items: list[Item], title: str) -> str:
    """One self-contained page: inline CSS, images as data URIs, no scripts, no external links."""
    body = "\n".join(_html_item(it) for it in items)
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n<h1>{html.escape(title)}</h1>\n{body}\n</body></html>\n"
    )


def write_documents(out: Path, title: str, items: list[Item]) -> None:
    """report.md and report.html of ``items`` into ``out``."""
    atomic_write_text(out / "report.md", f"# {title}\n\n" + to_markdown(items, out))
    atomic_write_text(out / "report.html", to_html(items, title))


# --------------------------------------------------------------------------------------------
#                                   One run: tables, figures, report section
# --------------------------------------------------------------------------------------------


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


def _leaderboard_cfg(run_dir: Path) -> dict[str, Any]:
    """The ``leaderboard:`` mapping of the run's suite.resolved.yaml (empty when there is none)."""
    import yaml

    f = run_dir / "suite.resolved.yaml"
    if not f.is_file():
        return {}
    return (yaml.safe_load(f.read_text()) or {}).get("leaderboard") or {}


def _suite_of(run_dir: Path, df: pd.DataFrame) -> str:
    if "suite" not in df:
        return run_dir.parent.name
    suites = sorted(map(str, df["suite"].unique()))
    if len(suites) > 1:
        raise ReportError(
            f"{run_dir / 'metrics.csv'}: mixes suites {suites}; a run folder holds one suite, "
            "so rebuild it (or report each suite's run folder separately)"
        )
    return suites[0]


def load_run(run_dir: Path, sort_by: str | None = None, baseline: str | None = None) -> RunReport:
    """Read one run folder's metrics.csv and compute its (sorted) leaderboard with the paired comparison.
    ``sort_by`` and ``baseline`` default to the run's ``leaderboard:`` settings in suite.resolved.yaml."""
    f = run_dir / "metrics.csv"
    if not f.is_file():
        raise ReportError(f"{run_dir}: no metrics.csv (is this a run folder? runs live under results/<suite>/)")
    df = pd.read_csv(f)
    cfg = _leaderboard_cfg(run_dir)
    sort_by = sort_by or str(cfg.get("sort_by") or "psnr_revisit")
    base = resolve_baseline(df, baseline or cfg.get("baseline"))
    table, unit = leaderboard(df)
    table = sort_table(with_comparison(table, df, base), sort_by)
    metrics = list(dict.fromkeys(df["metric"]))
    return RunReport(run_dir, _suite_of(run_dir, df), df, table, unit, metrics, sort_by, base)


def _read_state(path: Path) -> pd.DataFrame:
    state = pd.read_csv(path)
    missing = {"block", "frame", "state_bytes"} - set(state.columns)
    if missing:
        raise ReportError(f"{path}: missing columns {sorted(missing)}; expected block, seed, frame, state_bytes")
    return state


def draw_figures(run: RunReport, fig_dir: Path) -> None:
    """Every figure of one run into ``fig_dir``; ``run.figures`` records the ones that were drawn."""
    df, figs = run.df, {}  # type: dict[str, Path | None]
    for m in run.metrics:
        figs[f"{m}_vs_frame"] = plot_metric_vs_frame(df, m, fig_dir / f"{m}_vs_frame")
        if get_metric(m).scope == "per_frame":
            figs[f"{m}_vs_gap"] = plot_metric_vs_gap(df, m, fig_dir / f"{m}_vs_gap")
            figs[f"{m}_vs_frame_by_tag"] = plot_metric_vs_frame_by_tag(df, m, fig_dir / f"{m}_vs_frame_by_tag")
            figs[f"{m}_by_tag"] = plot_revisit_bars(run.table, m, fig_dir / f"{m}_by_tag")
    if (run.run_dir / "state.csv").is_file():
        figs["state_bytes"] = plot_state_bytes(_read_state(run.run_dir / "state.csv"), fig_dir / "state_bytes_vs_frame")
    reach = int(df["reach"].iloc[0]) if "reach" in df else 1
    figs["samples_png"] = sample_strip(run.run_dir, fig_dir / "samples.png", reach)
    figs["samples_gif"] = sample_gif(run.run_dir, fig_dir / "samples.gif", reach)
    run.figures = {k: v for k, v in figs.items() if v is not None}


def _run_meta(run: RunReport) -> str:
    df = run.df
    parts = [f"Run folder `{run.run_dir}`", f"suite `{run.suite}`"]
    if "suite_version" in df:
        parts.append(f"version {_plain(df['suite_version'].iloc[0])}")
    if "git_sha" in df:
        parts.append(f"git `{str(df['git_sha'].iloc[0])[:7]}`")
    parts.append(f"seeds {sorted(map(int, df['seed'].unique()))}")
    reach = ", ".join(f"{r} ({', '.join(b)})" for r, b in reach_groups(df).items())
    text = "; ".join(parts) + (f"; attention reach {reach}." if reach else ".")
    if "limited" in df and df["limited"].astype(str).eq("True").any():
        text += "\nLimited run (training steps capped): not comparable with full runs."
    return text


def _curve_items(run: RunReport) -> list[Item]:
    items: list[Item] = []
    for m in run.metrics:
        key = f"{m}_vs_frame_by_tag" if f"{m}_vs_frame_by_tag" in run.figures else f"{m}_vs_frame"
        if key in run.figures:
            what = "one panel per tag" if key.endswith("by_tag") else "FVD buckets"
            items.append(
                Figure(
                    run.figures[key],
                    f"{m} vs frames since rollout start ({what}); vertical line = attention reach; "
                    f"band = ± stderr over {_unit(run.df)}s.",
                )
            )
    return items


def _gap_items(run: RunReport) -> list[Item]:
    """Retrieval curves, the sort metric's first."""
    first = run.sort_by.split("_")[0]
    caption = (
        "{m} vs gap = frames since the generated frame's place was last shown in the ground-truth context "
        "(novel frames have none); vertical line = sliding attention reach (from it on only memory can "
        "restore the place); dashed = references; band = ± stderr over {unit}s."
    )
    return [
        Figure(run.figures[f"{m}_vs_gap"], caption.format(m=m, unit=_unit(run.df)))
        for m in sorted(run.metrics, key=lambda m: m != first)
        if f"{m}_vs_gap" in run.figures
    ]


def _efficiency_items(run: RunReport) -> list[Item]:
    items: list[Item] = []
    eff = run.run_dir / "efficiency.csv"
    if eff.is_file():
        items.append(efficiency_table(pd.read_csv(eff)))
    if "state_bytes" in run.figures:
        items.append(Figure(run.figures["state_bytes"], "Memory state bytes vs rollout frame (mean over seeds)."))
    return items


def _sample_items(run: RunReport) -> list[Item]:
    caps = {
        "samples_png": "Clip 0: ground truth (top; border = tag) and each block's lowest-seed rollout.",
        "samples_gif": "Clip 0 animated: ground truth (border = tag) next to each block's lowest-seed rollout.",
    }
    return [Figure(run.figures[k], c) for k, c in caps.items() if k in run.figures]


def run_items(run: RunReport, level: int, title: str | None = None) -> list[Item]:
    """One run's report section: leaderboard, retrieval vs gap, curves by tag, bars, efficiency, samples. Subsections
    are at ``level + 1`` (under the document title when there is no section ``title``)."""
    items: list[Item] = [Heading(level, title)] if title else []
    items += [Para(_run_meta(run)), Heading(level + 1, "Leaderboard")]
    items += [run_table(run), Para(notes(run))]
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


# --------------------------------------------------------------------------------------------
#                                   Finding runs
# --------------------------------------------------------------------------------------------


def suite_name(path: Path, _seen: tuple[Path, ...] = ()) -> str:
    """A suite file's ``name:``, following ``include:``. Plain YAML on purpose: validating the suite
    would import the block registry and with it torch, which the report never needs."""
    import yaml

    path = path.resolve()
    if path in _seen:
        raise ReportError(f"{path}: include cycle: {' -> '.join(str(p) for p in (*_seen, path))}")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ReportError(f"{path}: cannot read the suite ({e})") from e
    if not isinstance(raw, dict):
        raise ReportError(f"{path}: a suite must be a mapping of keys")
    if "name" in raw:
        return str(raw["name"])
    if isinstance(raw.get("include"), str):
        return suite_name(path.parent / raw["include"], (*_seen, path))
    raise ReportError(f"{path}: no `name:` here or in an included file; add `name: <suite>`")


def resolve_run_dir(path: Path, results_root: Path = Path("results")) -> Path:
    """A run folder from a run folder, a suite results folder (its newest run by name that has a
    metrics.csv) or a suite YAML (its results folder under ``results_root``)."""
    if path.is_file() and path.suffix in (".yaml", ".yml"):
        name = suite_name(path)
        if not (results_root / name).is_dir():
            raise ReportError(f"{path}: suite '{name}' has no results in {results_root / name}; run it first")
        path = results_root / name
    if (path / "metrics.csv").is_file():
        return path
    runs = sorted(d for d in path.iterdir() if (d / "metrics.csv").is_file()) if path.is_dir() else []
    if not runs:
        raise ReportError(
            f"{path}: no metrics.csv and no run folder under it holding one; pass a run folder "
            "(results/<suite>/<run>), a suite's results folder (results/<suite>/) or a suite YAML"
        )
    return runs[-1]


# --------------------------------------------------------------------------------------------
#                                   Entry points
# --------------------------------------------------------------------------------------------


def write(run_dir: Path, sort_by: str | None = None, baseline: str | None = None) -> pd.DataFrame:
    """(Re)build leaderboard.csv/.md, figures/, report.md and report.html inside ``run_dir``."""
    run = load_run(Path(run_dir), sort_by, baseline)
    atomic_write_text(run.run_dir / "leaderboard.csv", run.table.to_csv(index=False))
    atomic_write_text(run.run_dir / "leaderboard.md", markdown(run))
    draw_figures(run, run.run_dir / "figures")
    write_documents(run.run_dir, f"rad-bench report: {run.suite} ({run.run_dir.name})", run_items(run, 1))
    return run.table


def combined_leaderboard(runs: list[RunReport]) -> pd.DataFrame:
    """One row per (suite, block): each suite's own leaderboard, stacked, never averaged across suites."""
    parts = [r.table.assign(suite=r.suite, run=r.run_dir.name) for r in runs]
    table = pd.concat(parts, ignore_index=True)
    lead = ["suite", "run", "block"]
    return table[lead + [c for c in table if c not in lead]]


def _section_keys(runs: list[RunReport]) -> list[str]:
    """Figure folder per section: the suite name, plus the run name when a suite appears twice."""
    names = [r.suite for r in runs]
    keys = [n if names.count(n) == 1 else f"{n}-{r.run_dir.name}" for n, r in zip(names, runs)]
    return [re.sub(r"[^\w.-]", "_", k) for k in keys]


def _combined_notes(runs: list[RunReport]) -> str:
    per_suite = [
        f"`{r.suite}` (run `{r.run_dir.name}`): sorted by `{r.sort_by}`. {_unit_note(r.unit, r.df[r.unit].nunique())} "
        + _compare_note(r.table, r.sort_by, r.baseline)
        for r in runs
    ]
    refs = [REFERENCE_NOTE] if any(_has_reference(r.table) for r in runs) else []
    return "\n".join([*per_suite, TAG_NOTE, *refs]) + "\n"


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


def write_combined(run_dirs: list[Path], out: Path) -> pd.DataFrame:
    """leaderboard.csv/.md and report.md/.html for several runs (one section per suite) into ``out``;
    figures go to ``out/figures/<suite>/`` and the run folders are left untouched."""
    runs = [load_run(Path(d)) for d in run_dirs]
    for run, key in zip(runs, _section_keys(runs)):
        draw_figures(run, out / "figures" / key)
    table = combined_leaderboard(runs)
    view, foot = combined_table(table, runs), _combined_notes(runs)
    atomic_write_text(out / "leaderboard.csv", table.to_csv(index=False))
    atomic_write_text(out / "leaderboard.md", view.markdown() + "\n" + foot)
    intro = "Suites: " + ", ".join(f"`{r.suite}` from `{r.run_dir}`" for r in runs) + "."
    items: list[Item] = [Para(intro), Heading(2, "Leaderboards (one row per suite and block)"), view, Para(foot)]
    for run in runs:
        items += run_items(run, 2, title=f"Suite {run.suite} ({run.run_dir.name})")
    write_documents(out, "rad-bench combined report", items)
    return table
