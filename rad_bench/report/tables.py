"""Leaderboard numbers from metrics.csv (pandas): per-block means with 95% t-intervals over seeds (or
clips), and each block paired against a baseline block on the identical evaluation episodes with a
two-level bootstrap interval of the difference.

Leaderboard cell = mean over seeds of each seed's mean over (clip, frame) rows with that tag, ± the
half-width of its 95% t-interval over seeds (the standard error is kept too). With a single seed the
interval is taken over clips instead. Pairing: :func:`pair_with_baseline`; the difference per
(seed, clip): :func:`paired_differences`; its interval: :func:`bootstrap_ci`.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from rad_bench.metrics import get_metric
from rad_bench.results import CARRY, GROUPS, TAGS, split_column
from rad_bench.stats import ci95


def _stderr(x: pd.Series) -> float:
    x = x.dropna()
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def flag(s: pd.Series) -> pd.Series:
    """A True/False column read from CSV (bools, or strings once NaN mixed in) as booleans."""
    return s.astype(str).str.lower().eq("true")


def unit_of(df: pd.DataFrame) -> str:
    """What intervals are taken over: ``seed`` when the run has several seeds, else ``clip``."""
    return "seed" if df["seed"].nunique() > 1 else "clip"


def _info(df: pd.DataFrame) -> pd.DataFrame:
    """Per-block descriptive columns; optional ones only when metrics.csv has them."""
    cols = [c for c in ("block_name", *CARRY, "reference", "params_total", "params_block", "impl") if c in df]
    cols += [c for c in df.columns if "." in c]  # a column per sweep axis (``data.slots``), as the cells wrote it
    info = df.groupby("block").agg(**{c: (c, "first") for c in cols}, seeds=("seed", "nunique"))
    if "reference" in info:
        info["reference"] = flag(info["reference"])
    return info


def _per_unit_stats(df: pd.DataFrame, unit: str) -> pd.DataFrame:
    """Long table (block, metric, group): mean, stderr and ci95 over units of each unit's mean."""
    parts = []
    for group in GROUPS:
        sub = df if group == "all" else df[df["tag"] == group]
        per_unit = sub.groupby(["block", "metric", unit])["value"].mean()
        agg = per_unit.groupby(["block", "metric"]).agg(["mean", _stderr, ci95])
        agg.columns = ["mean", "stderr", "ci95"]
        parts.append(agg.reset_index().assign(group=group))
    long = pd.concat(parts)
    return long.assign(col=long["metric"] + "_" + long["group"])


def leaderboard(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One row per block: ``<metric>_<tag>`` mean, ``..._ci95`` and ``..._stderr`` columns, plus params."""
    unit = unit_of(df)
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
    m = split_column(sort_by)[0]
    return table.sort_values(sort_by, ascending=not get_metric(m).higher_is_better)


def label_base(label: str) -> str:
    """``lstm_attn[window=2]`` -> ``lstm_attn``: the display label without its sweep values."""
    return re.sub(r"\[.*\]$", "", label)


def resolve_baseline(df: pd.DataFrame, configured: str | None) -> str | None:
    """The baseline block: ``leaderboard.baseline`` when set, else ``none`` when the run has it, else None."""
    if configured:
        return configured
    names = set(df["block_name"].astype(str)) if "block_name" in df else set()
    return "none" if "none" in names | {label_base(str(b)) for b in df["block"].unique()} else None


def _is_baseline(info: pd.DataFrame, baseline: str) -> pd.Series:
    """Per block: is it (a sweep point of) the baseline, by block name or display label."""
    labels = info.index.to_series().astype(str)
    hit = labels.map(label_base).eq(baseline) | labels.eq(baseline)
    return hit | info["block_name"].astype(str).eq(baseline) if "block_name" in info else hit


def pair_with_baseline(info: pd.DataFrame, baseline: str) -> dict[str, str]:
    """block label -> the baseline label it is paired with: the same ``variant`` when the baseline has
    it, else the baseline's unvaried row (or its only row). Baseline rows themselves are left out."""
    is_base = _is_baseline(info, baseline)
    variant = info["variant"].fillna("").astype(str) if "variant" in info else pd.Series("", index=info.index)
    by_variant: dict[str, str] = {}
    for label in sorted(info.index[is_base.to_numpy()], key=lambda b: label_base(str(b)) != baseline):
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
