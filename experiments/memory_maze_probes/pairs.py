"""Paired comparisons of a run's blocks (issue 29), per seed and clip on the identical evaluation episodes: the
mean difference and the report's two-level bootstrap interval (seeds, then clips) for revisit PSNR, in-window
PSNR and revisit LPIPS. Prints a markdown table.

Usage:
  python experiments/memory_maze_probes/pairs.py RUN --against none     # every other block against `none`
  python experiments/memory_maze_probes/pairs.py RUN --shift-study      # the shift study's pairs (shift.yaml)
  python experiments/memory_maze_probes/pairs.py RUN --pair A B [--pair C D ...]
  ... --by-gap: instead, the mean revisit PSNR difference per bin of the gap (frames since the view was last
  shown in the context; later retrace frames have larger gaps), over every seed, clip and frame of the bin
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rad_bench.report.tables import bootstrap_ci, clip_means, paired_differences

COLUMNS = ("psnr_revisit", "psnr_in_window", "lpips_revisit")


def shift_study() -> list[tuple[str, str]]:
    """Each block at shift 2, 4 and 8 against itself at shift 1, and mamba2 at every shift against copy_last."""
    out = [(f"{b}[shift={s}]", f"{b}[shift=1.0]") for b in ("full_attn", "mamba2") for s in ("2.0", "4.0", "8.0")]
    return out + [(f"mamba2[shift={s}]", "copy_last") for s in ("1.0", "2.0", "4.0", "8.0")]


def table(cm: pd.DataFrame, pairs: list[tuple[str, str]]) -> str:
    lines = ["| block | vs | " + " | ".join(f"Δ {c}" for c in COLUMNS) + " |", "|---|---|" + "---|" * len(COLUMNS)]
    for a, b in pairs:
        d = paired_differences(cm, a, b)
        cells = []
        for c in COLUMNS:
            m, lo, hi = bootstrap_ci(d[c].unstack("clip").to_numpy(dtype=float))
            star = " *" if lo > 0 or hi < 0 else ""
            cells.append("—" if np.isnan(m) else f"{m:+.2f} [{lo:.2f}, {hi:.2f}]{star}")
        lines.append(f"| {a} | {b} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


GAP_BINS = (0, 8, 16, 24, 32, 48)


def by_gap(metrics: pd.DataFrame, pairs: list[tuple[str, str]]) -> str:
    """Mean revisit PSNR difference of each pair per gap bin (paired per seed, clip and frame)."""
    d = metrics[(metrics["metric"] == "psnr") & (metrics["tag"] == "revisit")].copy()
    d["bin"] = pd.cut(d["gap"], GAP_BINS)
    wide = d.pivot_table(index=["seed", "clip", "frame", "bin"], columns="block", values="value", observed=True)
    bins = list(wide.index.get_level_values("bin").categories)
    lines = ["| block | vs | " + " | ".join(f"gap {b.left + 1}-{b.right}" for b in bins) + " |",
             "|---|---|" + "---|" * len(bins)]  # fmt: skip
    for a, b in pairs:
        diff = (wide[a] - wide[b]).groupby(level="bin", observed=False).agg(["mean", "size"])
        lines.append(f"| {a} | {b} | " + " | ".join(f"{m:+.2f} (n={int(n)})" for m, n in diff.to_numpy()) + " |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--against", metavar="BLOCK", help="every other block against this one")
    how.add_argument("--shift-study", action="store_true", help="the pairs of experiments/.../shift.yaml")
    how.add_argument("--pair", nargs=2, action="append", metavar=("A", "B"), help="A against B (repeatable)")
    ap.add_argument("--by-gap", action="store_true", help="mean revisit PSNR difference per gap bin")
    args = ap.parse_args()
    metrics = pd.read_csv(args.run / "metrics.csv", low_memory=False)
    cm = clip_means(metrics)
    if args.against:
        blocks = [b for b in dict.fromkeys(cm.index.get_level_values("block")) if b != args.against]
        pairs = [(b, args.against) for b in blocks]
    else:
        pairs = shift_study() if args.shift_study else [tuple(p) for p in args.pair]
    print(by_gap(metrics, pairs) if args.by_gap else table(cm, pairs))


if __name__ == "__main__":
    main()
