"""Leaderboard views: the markdown/HTML tables (mean ± 95% interval, the paired Δ column, reference rows
marked ``(ref)``), the notes that say how each number was computed, and the efficiency table."""

from __future__ import annotations

import numpy as np
import pandas as pd

from rad_bench.metrics import get_metric
from rad_bench.report.document import Table
from rad_bench.report.tables import flag
from rad_bench.results import GROUPS, SHOWN, TAGS, split_column


def _fmt(mean: float, err: float, metric: str | None = None) -> str:
    """``mean ± err``; ``†`` when the interval reaches past the values ``metric`` can take (e.g. below 0 for an
    accuracy: a t-interval over few seeds, see :data:`OUTSIDE_NOTE`)."""
    if pd.isna(mean):
        return "—"
    if pd.isna(err):
        return f"{mean:.3f}"
    mark = " †" if metric and get_metric(metric).outside(mean - err, mean + err) else ""
    return f"{mean:.3f} ± {err:.3f}{mark}"


OUTSIDE_NOTE = (
    "† the 95% t-interval reaches past the values the metric can take (e.g. below 0 for an accuracy): the "
    "t-interval over few seeds assumes a spread the scores cannot have; read the paired Δ's bootstrap interval."
)


def _fmt_diff(row: pd.Series, col: str) -> str:
    """``+1.230 [0.400, 2.050] *``: paired difference, its bootstrap interval, ``*`` when it excludes 0."""
    d, lo, hi = (row.get(f"{col}_diff{s}", np.nan) for s in ("", "_lo", "_hi"))
    if pd.isna(d):
        return "—"
    star = " *" if str(row.get(f"{col}_diff_sig")) == "True" else ""
    return f"{d:+.3f} [{lo:.3f}, {hi:.3f}]{star}"


def plain(v: object) -> str:
    """A descriptive cell: ints stay ints even after a concat turned them into floats."""
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return "—"
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _lead_cell(row: pd.Series, c: str) -> str:
    """A lead column; the block of a reference row is marked ``(ref)``."""
    ref = c == "block" and str(row.get("reference")) == "True"
    return plain(row[c]) + (" (ref)" if ref else "")


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
    (mean ± ci95) and, with ``delta = (column, baseline)``, that column's paired difference right after it.
    Columns that say nothing (no number in any row; a setting equal in every row) go to the table's note."""
    info = [*lead, *(c for c in SHOWN if c in table)]
    cols = _metric_columns(metrics)
    header = [*info, "params", *(h for _, h in cols)]
    rows = []
    for _, row in table.iterrows():
        params = row.get("params_total", np.nan)
        cells = [_lead_cell(row, c) for c in info] + ["—" if pd.isna(params) else f"{int(params):,}"]
        cells += [_fmt(row.get(c, np.nan), row.get(f"{c}_ci95", np.nan), split_column(c)[0]) for c, _ in cols]
        rows.append(cells)
    at = [c for c, _ in cols].index(delta[0]) + len(info) + 1 if delta and delta[0] in dict(cols) else None
    if delta and at is not None:
        header.insert(at + 1, f"Δ {delta[0]} vs {delta[1]} (95% CI)")
        for cells, (_, row) in zip(rows, table.iterrows()):
            cells.insert(at + 1, _fmt_diff(row, delta[0]))
    return slim(Table(header, rows), fixed=len(lead), settings=len(info) - len(lead) + 1)


def slim(t: Table, fixed: int, settings: int) -> Table:
    """``t`` without the columns that say nothing, named in its note instead: after the ``fixed`` lead columns,
    any column with no number in any row, and among the next ``settings`` columns (cell settings, params) any
    with one value in every row."""
    empty = [i for i in range(fixed, len(t.header)) if all(r[i] == "—" for r in t.rows)]
    same = [
        i
        for i in range(fixed, fixed + settings)
        if i not in empty and len(t.rows) > 1 and len({r[i] for r in t.rows}) == 1
    ]
    drop = set(empty) | set(same)
    notes = []
    if same:
        notes.append("Every row: " + ", ".join(f"{t.header[i]} = {t.rows[0][i]}" for i in same) + ".")
    if empty:
        notes.append(
            "Left out, no frame of theirs scored in any row: "
            + ", ".join(t.header[i].rstrip(" ↑↓") for i in empty)
            + "."
        )
    if any("†" in c for r in t.rows for c in r):
        notes.append(OUTSIDE_NOTE)
    keep = [i for i in range(len(t.header)) if i not in drop]
    return Table([t.header[i] for i in keep], [[r[i] for i in keep] for r in t.rows], note=" ".join(notes))


LIMITED_NOTE = (
    "**Limited run** (`--limit-steps`: training steps capped): a quick check, not comparable with full "
    "runs; do not report these numbers."
)


def is_limited(table: pd.DataFrame) -> bool:
    """Does any row of this leaderboard come from a run with capped training steps?"""
    return "limited" in table and bool(flag(table["limited"]).any())


VALIDATION_NOTE = (
    "**Validation split** (`rollout.split: validation`): scored on held-out episodes, for choosing settings "
    "such as the learning rate; the test episodes were not looked at. Do not report these numbers."
)


def is_validation(table: pd.DataFrame) -> bool:
    """Does any row of this leaderboard score the validation episodes?"""
    return "split" in table and bool(table["split"].astype(str).eq("validation").any())


def caveats(table: pd.DataFrame) -> list[str]:
    """The warnings a leaderboard opens with: a capped run, validation episodes."""
    return [note for note, on in ((LIMITED_NOTE, is_limited(table)), (VALIDATION_NOTE, is_validation(table))) if on]


def _compact_columns(table: pd.DataFrame, metrics: list[str], sort_by: str) -> list[tuple[str, str]]:
    """The headline columns: the sort metric per tag, then LPIPS and FVD overall when present."""
    m = split_column(sort_by)[0]
    groups = [g for g in (*TAGS, "all") if f"{m}_{g}" in table and table[f"{m}_{g}"].notna().any()]
    cols = [(f"{m}_{g}", f"{m} {g} {get_metric(m).arrow}") for g in groups] if m in metrics else []
    for extra in ("lpips_revisit", "fvd_all"):
        name = split_column(extra)[0]
        if name in metrics and name != m and extra in table:
            cols.append((extra, f"{extra} {get_metric(name).arrow}"))
    return cols


def compact_table(table: pd.DataFrame, metrics: list[str], sort_by: str, delta: tuple[str, str] | None) -> Table:
    """The terminal leaderboard: block, the sort metric per tag (± ci95), its paired Δ to the
    baseline, LPIPS on revisits and FVD; ``rad-bench run --wide`` prints every column instead."""
    cols = _compact_columns(table, metrics, sort_by)
    rows = []
    for _, row in table.iterrows():
        cells = [_lead_cell(row, "block")] + [_fmt(row.get(c, np.nan), row.get(f"{c}_ci95", np.nan)) for c, _ in cols]
        rows.append(cells + ([_fmt_diff(row, delta[0])] if delta else []))
    extra = [f"Δ {delta[0]} vs {delta[1]}"] if delta else []
    return Table(["block", *(h for _, h in cols), *extra], rows)


TAG_NOTE = (
    "Tags come from the ground-truth context the model was given: `in_window` = the place is shown in a "
    "context frame still within attention reach, `revisit` = shown in the context only beyond the reach "
    "(only memory can restore it), `novel` = never shown in the context; generated frames never count as "
    "shown. Reach: depth x (window - 1) + 1 frames for sliding windows, the frame's own chunk for chunk "
    "attention."
)


RECALL_NOTE = (
    "`recall_acc`: a generated query frame counts as recalled when, of the 32 value renderings (8 colours x 4 "
    "shapes), the one nearest to it in pixel L2 is the one nearest to the ground truth. The nearest rendering "
    "can be right for a frame that is far from clean (the right colour per quarter of the view, with noise), "
    "so read it beside the query frames' PSNR and LPIPS and the sample strips. Chance is 1/V (V = data.values). "
    "Only the first ask of each slot is scored (rows with `scored` = 0, repeated asks the window can copy, "
    "stay in metrics.csv)."
)

REFERENCE_NOTE = (
    "Rows marked (ref) are references that involve no training, scored on the same episodes: "
    "`copy_last`: repeats the last context frame; a learned block below it has learned nothing useful. "
    "`recall_oracle`: the most recent context frame of the same place (the last frame again where a frame's "
    "place was never shown); the distance to it is what memory could still gain."
)


def reference_note(unit: str) -> str:
    """What the references are, and what their interval is over."""
    spread = (
        "Their intervals are over seeds like any block's, of zero width: they are deterministic given the episodes."
        if unit == "seed"
        else "Their intervals are over clips, like every row's in a one-seed run."
    )
    return f"{REFERENCE_NOTE} {spread}"


def unit_note(unit: str, n: int, fvd: bool = False) -> str:
    """How the ± of every leaderboard cell was computed."""
    if unit == "clip":
        over = "over evaluation clips" + (" (FVD: over FVD batches)" if fvd else "")
        return f"Mean ± 95% t-interval over {n} clips of one seed: the interval is {over}, not over trainings."
    return f"Mean ± 95% t-interval over {n} seeds (half-width t(0.975, n-1) x sd / sqrt(n) of the seed means)."


READING = {  # "how to read this": one sentence per metric, beside its spec's description
    "psnr": "`psnr` (dB, higher is better): peak signal-to-noise ratio per frame, pixel range 1; capped at 60 dB, "
    "above 8-bit quantisation noise, so only an exact copy (e.g. `recall_oracle` on a frame it shows) reaches it.",
    "ssim": "`ssim` (higher is better, at most 1): structural similarity per frame, Gaussian 11x11 window.",
    "lpips": "`lpips` (lower is better): learned perceptual distance per frame (LPIPS v0.1, AlexNet features); "
    "0 for identical frames.",
    "fvd": "`fvd` (lower is better): Fréchet Video Distance between the generated and the true rollouts of a "
    "block, I3D (Kinetics-400) logits of videos upsampled to 224 px; its protocol column in metrics.csv names the "
    "video count. Far from the usual 2,048 videos it is biased upward: compare blocks within one run only.",
    "recall_acc": RECALL_NOTE,
}


def reading_notes(metrics: list[str]) -> list[str]:
    """The definitions of this run's metrics, in the order they appear."""
    return [READING[m] for m in metrics if m in READING]


def frames_note(table: pd.DataFrame) -> str:
    cols = [f"frames_{t}" for t in TAGS]
    counts = table.reindex(columns=cols).fillna(0).astype(int).drop_duplicates()
    if len(counts) > 1:
        return (
            "Scored frames per block and seed differ between rows (sweep points or attention reaches differ): "
            "see `frames_*` in leaderboard.csv."
        )
    n = dict(zip(TAGS, counts.iloc[0])) if len(counts) else dict.fromkeys(TAGS, 0)
    return f"Scored frames per block and seed: {n['in_window']} in_window, {n['revisit']} revisit, {n['novel']} novel."


def compare_note(table: pd.DataFrame, sort_by: str, baseline: str | None) -> str:
    """How the Δ column was computed and which sign is better, or why there is none."""
    if baseline is None:
        return "No paired comparison: `leaderboard.baseline` is not set and the run has no `none` block."
    if not any(c.endswith("_diff") for c in table):
        return f"No paired comparison: the baseline `{baseline}` is not in this run."
    if f"{sort_by}_diff" not in table:
        return f"`{sort_by}` is a set metric: paired differences to `{baseline}` are in leaderboard.csv (`*_diff`)."
    spec = get_metric(split_column(sort_by)[0])
    better = "higher-is-better, so Δ > 0" if spec.higher_is_better else "lower-is-better, so Δ < 0"
    sweep = "; sweep points pair within their variant" if table.get("variant", pd.Series()).notna().any() else ""
    return (
        f"Δ = block − `{baseline}` on the identical evaluation episodes (per seed and clip{sweep}), mean and "
        "95% two-level bootstrap interval (seeds, then clips; 2000 resamples). `*` = the interval excludes "
        f"zero. {spec.name} is {better} means the block beats `{baseline}`."
    )


def has_reference(table: pd.DataFrame) -> bool:
    return "reference" in table and bool(flag(table["reference"]).any())


def byte_unit(n: float) -> tuple[float, str]:
    for scale, name in ((2**30, "GiB"), (2**20, "MiB"), (2**10, "KiB")):
        if n >= scale:
            return float(scale), name
    return 1.0, "B"


def _fmt_bytes(n: float) -> str:
    if pd.isna(n):
        return "—"
    scale, name = byte_unit(n)
    return f"{int(n)} B" if name == "B" else f"{n / scale:.2f} {name}"


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
        cells = [str(block), *(plain(info.loc[block, c]) for c in lead), str(seeds[block])]
        for c in cols:
            v = row[c]
            if c.endswith("_bytes") or c.startswith("state_bytes"):
                cells.append(_fmt_bytes(v))
            elif c == "params_total":
                cells.append("—" if pd.isna(v) else f"{int(v):,}")
            else:
                cells.append("—" if pd.isna(v) else f"{v:.4g}")
        rows.append(cells)
    return slim(Table(["block", *lead, "seeds", *(EFFICIENCY[c] for c in cols)], rows), fixed=1, settings=len(lead) + 1)
