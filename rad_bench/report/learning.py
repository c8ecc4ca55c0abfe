"""Learning curves of one run (``train.eval_every``): each trained cell's ``curve.csv`` (the sort metric on
the validation episodes every N training steps, :mod:`rad_bench.curve`), drawn as metric vs steps per block
(mean over seeds ± stderr), and a "steps to reach" table: how many steps each seed took to first reach a
level halfway between the untrained score and the best block's final score, the same level for every block."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from rad_bench.metrics import get_metric  # noqa: E402
from rad_bench.report.document import Table  # noqa: E402
from rad_bench.report.figures import _save  # noqa: E402
from rad_bench.report.style import block_color, chance_line, legend_outside  # noqa: E402
from rad_bench.results import CURVE_CSV, split_column  # noqa: E402


def read_curves(run_dir: Path) -> pd.DataFrame | None:
    """Every cell's curve.csv under ``run_dir/cells`` in one table; None when no cell has one."""
    files = sorted((run_dir / "cells").glob(f"*/{CURVE_CSV}")) if (run_dir / "cells").is_dir() else []
    frames = [pd.read_csv(f) for f in files]
    frames = [f for f in frames if {"block", "seed", "step", "value", "metric"} <= set(f.columns) and len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def _higher(metric_col: str) -> bool:
    return get_metric(split_column(metric_col)[0]).higher_is_better


def reach_level(curves: pd.DataFrame) -> float:
    """Halfway between the mean untrained score (step 0) and the best block's mean final score."""
    start = curves[curves["step"] == 0]["value"].mean()
    last = curves[curves["step"] == curves.groupby(["block", "seed"])["step"].transform("max")]
    finals = last.groupby("block")["value"].mean()
    best = finals.max() if _higher(str(curves["metric"].iloc[0])) else finals.min()
    return float(start + (best - start) / 2) if np.isfinite(start) else float(best / 2)


def steps_to_reach(curves: pd.DataFrame, level: float) -> pd.DataFrame:
    """Per block: the seeds that reached ``level``, the mean first step at which they did, the final score."""
    higher, rows = _higher(str(curves["metric"].iloc[0])), []
    for block, g in curves.groupby("block"):
        firsts, finals = [], []
        for _, s in g.sort_values("step").groupby("seed"):
            hit = s[s["value"] >= level] if higher else s[s["value"] <= level]
            firsts.append(float(hit["step"].iloc[0]) if len(hit) else np.nan)
            finals.append(float(s["value"].iloc[-1]))
        reached = [x for x in firsts if np.isfinite(x)]
        rows.append(
            {
                "block": block,
                "seeds": len(firsts),
                "reached": len(reached),
                "steps_to_reach": float(np.mean(reached)) if reached else np.nan,
                "final": float(np.mean(finals)),
            }
        )
    return pd.DataFrame(rows)


def reach_table(curves: pd.DataFrame) -> Table:
    level, metric = reach_level(curves), str(curves["metric"].iloc[0])
    t = steps_to_reach(curves, level)
    rows = [
        [
            str(r.block),
            f"{r.reached} of {r.seeds}",
            "—" if np.isnan(r.steps_to_reach) else f"{r.steps_to_reach:.0f}",
            f"{r.final:.3f}",
        ]
        for r in t.sort_values("final", ascending=not _higher(metric)).itertuples()
    ]
    return Table(["block", f"seeds reaching {level:.3g}", "mean steps to reach", f"final {metric}"], rows)


LINE_STYLES = ("-", "--", ":", "-.")


def plot_learning_curves(curves: pd.DataFrame, stem: Path, chance: float | None = None) -> Path:
    """Metric vs training steps, one line per block: mean over seeds, band ± stderr (a block's sweep points in
    one colour, each its own line style); the reach level dashed."""
    fig, ax = plt.subplots(figsize=(6.4, 4))
    seen: dict[str, int] = {}  # lines per colour so far: a block's sweep points differ by line style
    for block, g in sorted(curves.groupby("block"), key=lambda x: str(x[0])):
        per = g.pivot_table(index="step", columns="seed", values="value")
        mean, err = per.mean(axis=1), per.std(axis=1, ddof=1).fillna(0) / np.sqrt(per.count(axis=1))
        color = block_color(str(block))
        style = LINE_STYLES[seen.get(color, 0) % len(LINE_STYLES)]
        seen[color] = seen.get(color, 0) + 1
        ax.plot(mean.index, mean.values, marker="o", ms=3, color=color, ls=style, label=str(block))
        ax.fill_between(mean.index, mean - err, mean + err, alpha=0.15, color=color, lw=0)
    ax.axhline(reach_level(curves), color="k", ls="--", lw=1, label="steps-to-reach level")
    chance_line(ax, [chance] if chance is not None else [])
    ax.set_xlabel("training steps")
    ax.set_ylabel(f"{curves['metric'].iloc[0]} (validation)")
    legend_outside(ax)
    return _save(fig, stem)
