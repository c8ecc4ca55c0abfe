"""The Memory Maze shift study's paired comparisons (issue 29): each block at shift 2, 4 and 8 against the same
block at shift 1, and mamba2 against copy_last, per seed and clip on the identical validation episodes; the
mean and the report's two-level bootstrap interval (seeds, then clips). Prints a markdown table.

Usage: python experiments/memory_maze_probes/shift_pairs.py results/memory_maze_shift/<run>
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from rad_bench.report.tables import bootstrap_ci, clip_means, paired_differences

COLUMNS = ("psnr_revisit", "psnr_in_window", "lpips_revisit")


def pairs(run: Path) -> list[tuple[str, str]]:
    out = [(f"{b}[shift={s}]", f"{b}[shift=1.0]") for b in ("full_attn", "mamba2") for s in ("2.0", "4.0", "8.0")]
    return out + [(f"mamba2[shift={s}]", "copy_last") for s in ("1.0", "2.0", "4.0", "8.0")]


def main() -> None:
    run = Path(sys.argv[1])
    cm = clip_means(pd.read_csv(run / "metrics.csv"))
    print("| block | vs | " + " | ".join(f"Δ {c}" for c in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for a, b in pairs(run):
        d = paired_differences(cm, a, b)
        cells = []
        for c in COLUMNS:
            wide = d[c].unstack("clip").to_numpy(dtype=float)
            m, lo, hi = bootstrap_ci(wide)
            star = " *" if lo > 0 or hi < 0 else ""
            cells.append("—" if np.isnan(m) else f"{m:+.2f} [{lo:.2f}, {hi:.2f}]{star}")
        print(f"| {a} | {b} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
