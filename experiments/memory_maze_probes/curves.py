"""Is a block still improving when its training budget ends? (issue 29). From a run's learning curves
(``cells/*/curve.csv``, ``train.eval_every``: the sort metric on the validation episodes), per block: the
untrained score, the score ``window`` steps before the end, the final score, and the rise over those last
steps, mean over seeds with its 95% t-interval (a rise whose interval excludes zero: still rising).
Prints a markdown table.

Usage: python experiments/memory_maze_probes/curves.py results/memory_maze/<run> [--window 400]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from scipy.stats import t as student_t

from rad_bench.report.learning import read_curves


def interval(x: np.ndarray) -> float:
    """Half-width of the 95% t-interval of the mean of ``x`` (nan for one value)."""
    return float(student_t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x))) if len(x) > 1 else np.nan


def table(run: Path, window: int) -> str:
    curves = read_curves(run)
    last = int(curves["step"].max())
    lines = [f"| block | seeds | step 0 | step {last - window} | step {last} | rise over the last {window} steps |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for block, g in curves.groupby("block"):
        per = g.pivot_table(index="step", columns="seed", values="value")
        if last - window not in per.index:
            raise SystemExit(f"{run}: no curve point at step {last - window}; pick --window from the eval_every grid")
        rise = (per.loc[last] - per.loc[last - window]).to_numpy()
        star = " *" if abs(rise.mean()) > interval(rise) else ""
        lines.append(
            f"| {block} | {per.shape[1]} | {per.loc[0].mean():.2f} | {per.loc[last - window].mean():.2f} | "
            f"{per.loc[last].mean():.2f} | {rise.mean():+.2f} ± {interval(rise):.2f}{star} |"
        )
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--window", type=int, default=400)
    args = ap.parse_args()
    print(table(args.run, args.window))


if __name__ == "__main__":
    main()
