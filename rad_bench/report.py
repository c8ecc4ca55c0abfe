"""metrics.csv -> leaderboard.csv / leaderboard.md / figures. Reads CSVs and sample files only
(no torch, no models), so ``rad-bench report RUN_DIR`` redraws everything on any machine.

Leaderboard cell = mean over seeds of each seed's mean over (clip, frame) rows with that tag,
± the standard error over seeds. With a single seed the standard error is taken over clips
instead, and the table says so.
"""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rad_bench.metrics import get_metric  # noqa: E402
from rad_bench.tags import TAGS  # noqa: E402
from rad_bench.utils import atomic_write_bytes, atomic_write_text  # noqa: E402

TAG_COLORS = {"in_window": (60, 170, 80), "revisit": (240, 140, 20), "novel": (140, 140, 140)}
GROUPS = (*TAGS, "all")


def _stderr(x: pd.Series) -> float:
    return float(x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else float("nan")


def leaderboard(df: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One row per block: ``<metric>_<tag>`` mean and ``..._stderr`` columns, plus params."""
    multi_seed = df["seed"].nunique() > 1
    unit = "seed" if multi_seed else "clip"
    parts = []
    set_metrics = [m for m in df["metric"].unique() if get_metric(m).scope == "set"]
    # a set metric's leaderboard value is its whole-episode row (frame -1); buckets are for plots
    df = df[~df["metric"].isin(set_metrics) | (df["frame"] == -1)]
    for group in GROUPS:
        sub = df if group == "all" else df[df["tag"] == group]
        per_unit = sub.groupby(["block", "metric", unit])["value"].mean()
        agg = per_unit.groupby(["block", "metric"]).agg(["mean", _stderr])
        agg.columns = ["mean", "stderr"]
        agg["group"] = group
        parts.append(agg.reset_index())
    long = pd.concat(parts)
    long["col"] = long["metric"] + "_" + long["group"]
    wide = long.pivot(index="block", columns="col", values="mean")
    err = long.pivot(index="block", columns="col", values="stderr").add_suffix("_stderr")
    frames = df.groupby(["block", "tag"])[["clip", "frame"]].apply(lambda g: len(g.drop_duplicates()))
    counts = frames.unstack(fill_value=0).add_prefix("frames_")
    info = df.groupby("block").agg(
        block_name=("block_name", "first"),
        params_total=("params_total", "first"),
        params_block=("params_block", "first"),
        impl=("impl", "first"),
        seeds=("seed", "nunique"),
    )
    table = info.join(wide).join(err).join(counts)
    return table.reset_index(), unit


def _fmt(mean: float, err: float) -> str:
    if np.isnan(mean):
        return "—"
    return f"{mean:.3f}" if np.isnan(err) else f"{mean:.3f} ± {err:.3f}"


def markdown(table: pd.DataFrame, metrics: list[str], unit: str, sort_by: str) -> str:
    cols = ["block", "params"]
    groups = {m: GROUPS if get_metric(m).scope == "per_frame" else ("all",) for m in metrics}
    header = [f"{m}_{g} {get_metric(m).arrow}" for m in metrics for g in groups[m]]
    lines = ["| " + " | ".join(cols + header) + " |", "|" + "---|" * (len(cols) + len(header))]
    for _, row in table.iterrows():
        cells = [str(row["block"]), f"{int(row['params_total']):,}"]
        for m in metrics:
            for g in groups[m]:
                c = f"{m}_{g}"
                cells.append(_fmt(row.get(c, np.nan), row.get(f"{c}_stderr", np.nan)))
        lines.append("| " + " | ".join(cells) + " |")
    n = {t: int(table[f"frames_{t}"].iloc[0]) if f"frames_{t}" in table else 0 for t in TAGS}
    lines += [
        "",
        f"Sorted by `{sort_by}`. Mean ± standard error over {unit}s"
        + (
            " (one seed: the error is over evaluation clips, and over FVD batches, not seeds)."
            if unit == "clip"
            else "."
        )
        + " Tags come from ground-truth places: `in_window` = last seen within the attention reach "
        + "(depth x (window - 1) + 1 frames), `revisit` = seen only longer ago, so only memory can help, "
        + "`novel` = never seen.",
        f"Scored frames per block and seed: {n['in_window']} in_window, {n['revisit']} revisit, {n['novel']} novel.",
    ]
    return "\n".join(lines) + "\n"


def _save(fig: plt.Figure, stem: Path) -> None:
    for ext in ("png", "pdf"):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, dpi=120, bbox_inches="tight")
        atomic_write_bytes(stem.with_suffix(f".{ext}"), buf.getvalue())
    plt.close(fig)


def plot_metric_vs_frame(df: pd.DataFrame, metric: str, reach: int, out: Path) -> None:
    """Metric vs frames since rollout start; line = mean, band = spread over seeds (or clips)."""
    sub = df[(df["metric"] == metric) & (df["frame"] >= 0)]
    if sub.empty:
        return
    unit = "seed" if sub["seed"].nunique() > 1 else "clip"
    fig, ax = plt.subplots(figsize=(6.4, 3.8))
    for block, g in sub.groupby("block"):
        per = g.groupby(["frame", unit])["value"].mean().unstack()
        mean, err = per.mean(axis=1), per.std(axis=1, ddof=1) / np.sqrt(per.shape[1])
        ax.plot(mean.index, mean.values, label=block)
        ax.fill_between(mean.index, (mean - err).values, (mean + err).values, alpha=0.2)
    # from frame `reach` on, no context frame is reachable by attention any more
    ax.axvline(reach - 0.5, color="k", ls="--", lw=1)
    ax.text(reach - 0.5, ax.get_ylim()[1], " context out of attention reach", va="top", fontsize=8)
    ax.set_xlabel("frames since rollout start")
    ax.set_ylabel(f"{metric} {get_metric(metric).arrow}")
    ax.set_title(f"{metric} vs frame (band: ± stderr over {unit}s)")
    ax.legend(fontsize=8)
    _save(fig, out)


def plot_revisit_bars(table: pd.DataFrame, metric: str, out: Path) -> None:
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
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
    ax.set_xticks(x, table["block"])
    ax.set_ylabel(f"{metric} {get_metric(metric).arrow}")
    ax.set_title(f"{metric} by tag")
    ax.legend(fontsize=8)
    _save(fig, out)


def sample_strip(run_dir: Path, out: Path, clip: int = 0, max_frames: int = 16) -> None:
    """PNG: ground truth (top, border coloured by tag) and each block's seed-0 rollout below it."""
    from PIL import Image, ImageDraw

    from rad_bench.tags import tag_frames

    files = sorted((run_dir / "samples").glob("*-s*.npz"))
    first_seed = {}
    for f in files:
        block = f.stem.rsplit("-s", 1)[0]
        first_seed.setdefault(block, f)
    if not first_seed:
        return
    ref = np.load(next(iter(first_seed.values())))
    context = int(ref["context"])
    gen_len = ref["generated"].shape[1]
    idx = np.linspace(0, gen_len - 1, min(max_frames, gen_len)).round().astype(int)
    tags = tag_frames(ref["places"][clip].tolist(), context, _reach(run_dir))
    s = ref["truth"].shape[2]
    pad, label_w = 2, 90
    rows = [("ground truth", ref["truth"][clip, context:][idx])] + [
        (b, np.load(f)["generated"][clip][idx]) for b, f in first_seed.items()
    ]
    img = Image.new("RGB", (label_w + len(idx) * (s + 2 * pad), len(rows) * (s + 2 * pad) + 14), "white")
    draw = ImageDraw.Draw(img)
    for r, (name, frames) in enumerate(rows):
        y = 14 + r * (s + 2 * pad)
        draw.text((2, y + s // 2 - 5), name[:14], fill="black")
        for c, (fi, frame) in enumerate(zip(idx, frames)):
            x = label_w + c * (s + 2 * pad)
            if r == 0:
                draw.rectangle([x, y, x + s + 2 * pad - 1, y + s + 2 * pad - 1], fill=TAG_COLORS[tags[fi]])
                draw.text((x + 1, 1), str(fi), fill="black")
            img.paste(Image.fromarray(frame), (x + pad, y + pad))
    img = img.resize((img.width * 2, img.height * 2), Image.NEAREST)
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    atomic_write_bytes(out, buf.getvalue())


def _reach(run_dir: Path) -> int:
    df = pd.read_csv(run_dir / "metrics.csv", usecols=["reach"], nrows=1)
    return int(df["reach"].iloc[0])


def _sort_key(run_dir: Path) -> str:
    import yaml

    f = run_dir / "suite.resolved.yaml"
    if f.is_file():
        return str(yaml.safe_load(f.read_text()).get("leaderboard", {}).get("sort_by", "psnr_revisit"))
    return "psnr_revisit"


def write(run_dir: Path, sort_by: str | None = None) -> pd.DataFrame:
    """(Re)build leaderboard.csv, leaderboard.md and figures/ from ``run_dir/metrics.csv``."""
    run_dir = Path(run_dir)
    sort_by = sort_by or _sort_key(run_dir)
    df = pd.read_csv(run_dir / "metrics.csv")
    metrics = list(dict.fromkeys(df["metric"]))
    table, unit = leaderboard(df)
    if sort_by in table:
        m = sort_by.split("_")[0]
        table = table.sort_values(sort_by, ascending=not get_metric(m).higher_is_better)
    atomic_write_text(run_dir / "leaderboard.csv", table.to_csv(index=False))
    atomic_write_text(run_dir / "leaderboard.md", markdown(table, metrics, unit, sort_by))
    figs = run_dir / "figures"
    reach = int(df["reach"].iloc[0])
    for m in metrics:
        plot_metric_vs_frame(df, m, reach, figs / f"{m}_vs_frame")
        if get_metric(m).scope == "per_frame":
            plot_revisit_bars(table, m, figs / f"{m}_by_tag")
    sample_strip(run_dir, figs / "samples.png")
    return table
