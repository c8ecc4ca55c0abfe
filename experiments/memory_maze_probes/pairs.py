"""Paired comparisons of a run's blocks (issue 29), per seed and clip on the identical evaluation episodes: the
mean difference and the report's two-level bootstrap interval (seeds, then clips) for revisit PSNR, in-window
PSNR and revisit LPIPS. Prints a markdown table.

Usage:
  python experiments/memory_maze_probes/pairs.py RUN --against none     # every other block against `none`
  python experiments/memory_maze_probes/pairs.py RUN --shift-study      # the shift study's pairs (shift.yaml)
  python experiments/memory_maze_probes/pairs.py RUN --pair A B [--pair C D ...]
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    how = ap.add_mutually_exclusive_group(required=True)
    how.add_argument("--against", metavar="BLOCK", help="every other block against this one")
    how.add_argument("--shift-study", action="store_true", help="the pairs of experiments/.../shift.yaml")
    how.add_argument("--pair", nargs=2, action="append", metavar=("A", "B"), help="A against B (repeatable)")
    args = ap.parse_args()
    cm = clip_means(pd.read_csv(args.run / "metrics.csv"))
    if args.against:
        blocks = [b for b in dict.fromkeys(cm.index.get_level_values("block")) if b != args.against]
        pairs = [(b, args.against) for b in blocks]
    else:
        pairs = shift_study() if args.shift_study else [tuple(p) for p in args.pair]
    print(table(cm, pairs))


if __name__ == "__main__":
    main()
