"""Collect the recall recipe study (issue 23) into one table: ``study.csv`` and ``study.md`` next to this file.

Reads the newest run of each study suite (``results/recall_recipe_<step>/``; validation episodes only) and
keeps, per recipe, block and K: recall_acc on first asks and the query frames' PSNR and LPIPS, each the mean
over seeds with its 95% t-interval over seeds, from the finished cells (a run stopped early counts its seeds).

    python experiments/recall_recipe/collect.py [--results results] [--final results/recall/<run>]

With ``--final``, also the README's table of a ``suites/recall.yaml`` run: per block and K, recall_acc (mean ±
95% interval over seeds) and the query frames' PSNR, each with the paired difference to ``none`` at the same
K when its bootstrap interval excludes zero (``*``), and how much each block falls from K = 2 to every larger K:
the same trained model is scored at every K, so the difference pairs by seed (t-interval over seeds, and the
leaderboard's two-level bootstrap: seeds, then clips within each seed and K).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from rad_bench.results import parse_variant

HERE = Path(__file__).parent
STEPS = {  # suite name -> how the table names its recipe
    "recall_recipe_today": "0: the suite before the study (own training per K, random queries, all frames)",
    "recall_recipe_shift": "1: rounds + one training on 1..16 writes, shift {shift:g}",
    "recall_recipe_targets": "2: step 1 at shift 8, loss on first asks only",
    "recall_recipe_steps": "4: the chosen recipe (suites/recall.yaml v3) at 2400 steps",
}
COLUMNS = ("recall_acc_revisit", "psnr_revisit", "lpips_revisit")


def newest(results: Path, suite: str) -> Path | None:
    runs = sorted(d for d in (results / suite).glob("*") if (d / "cells").is_dir())
    return runs[-1] if runs else None


def _interval(x: pd.Series) -> float:
    """95% t-interval half-width over seeds (0 for one seed)."""
    n = x.count()
    return float(stats.t.ppf(0.975, n - 1) * x.std(ddof=1) / n**0.5) if n > 1 else 0.0


def cell_means(run: Path) -> pd.DataFrame:
    """Per finished cell (a partial run too: cells are read one by one): block, K, seed and the mean of each
    per-frame metric over the scored revisit frames (first asks)."""
    out = []
    for f in sorted((run / "cells").glob("*/metrics.csv")):
        df = pd.read_csv(f)
        df = df[(df["tag"] == "revisit") & (df["scored"].fillna(1) != 0)] if "scored" in df else df
        v = parse_variant(df["variant"].iloc[0])
        row = {"block": df["block_name"].iloc[0], "K": v.get("slots"), "shift": v.get("shift", df["shift"].iloc[0]),
               "seed": int(df["seed"].iloc[0]), "reference": bool(df["reference"].iloc[0])}  # fmt: skip
        row |= {f"{m}_revisit": x for m, x in df.groupby("metric")["value"].mean().items()}
        out.append(row)
    return pd.DataFrame(out)


def rows(results: Path) -> pd.DataFrame:
    out = []
    for suite, recipe in STEPS.items():
        run = newest(results, suite)
        if run is None:
            continue
        cells = cell_means(run)
        for (block, k, shift), g in cells[~cells["reference"]].groupby(["block", "K", "shift"], sort=False):
            row = {"step": recipe.format(shift=float(shift)), "run": run.name, "block": block, "K": k,
                   "seeds": len(g)}  # fmt: skip
            for c in COLUMNS:
                row[c], row[f"{c}_ci95"] = (g[c].mean(), _interval(g[c])) if c in g else (float("nan"),) * 2
            out.append(row)
    return pd.DataFrame(out)


def markdown(df: pd.DataFrame) -> str:
    """One line per recipe and block: recall_acc at each K (± 95% over seeds), query PSNR at the smallest K."""
    ks = sorted(df["K"].dropna().unique())
    head = ["recipe", "block", "seeds", *(f"recall_acc K={k:g}" for k in ks), f"query PSNR K={ks[0]:g} (dB)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for (step, block), g in df.groupby(["step", "block"], sort=False):
        g = g.set_index("K")
        acc = [f"{g.at[k, 'recall_acc_revisit']:.2f} ± {g.at[k, 'recall_acc_revisit_ci95']:.2f}" if k in g.index
               else "—" for k in ks]  # fmt: skip
        psnr = f"{g.at[ks[0], 'psnr_revisit']:.1f}" if ks[0] in g.index else "—"
        lines.append("| " + " | ".join([step, block, str(int(g["seeds"].min())), *acc, psnr]) + " |")
    return "\n".join(lines) + "\n"


def _cell(r: pd.Series, col: str, fmt: str) -> str:
    text = f"{r[col]:{fmt}} ± {r[col + '_ci95']:{fmt}}"
    diff = f"{col}_diff"
    if diff in r and pd.notna(r[diff]):
        text += (
            f" ({r[diff]:+{fmt}} [{r[diff + '_lo']:{fmt}}, {r[diff + '_hi']:{fmt}}]{' *' if r[diff + '_sig'] else ''})"
        )
    return text


def final_table(run: Path) -> str:
    """recall_acc and query PSNR per block (rows) and K (columns), paired with none at the same K."""
    lb = pd.read_csv(run / "leaderboard.csv")
    lb["K"] = lb["variant"].map(lambda v: parse_variant(v).get("slots"))
    ks = sorted(lb["K"].dropna().unique())
    out = []
    for col, fmt, title in (("recall_acc_revisit", ".2f", "recall_acc"), ("psnr_revisit", ".1f", "query PSNR (dB)")):
        head = ["block", *(f"K={k:g}" for k in ks)]
        lines = [f"**{title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        order = lb[lb["K"] == ks[0]].sort_values(col, ascending=False)["block_name"]
        for block in order:
            g = lb[lb["block_name"] == block].set_index("K")
            ref = " (ref)" if bool(g["reference"].iloc[0]) else ""
            lines.append("| " + " | ".join([block + ref, *(_cell(g.loc[k], col, fmt) for k in ks)]) + " |")
        out.append("\n".join(lines) + "\n")
    return "\n".join(out)


def _clip_scores(run: Path) -> pd.DataFrame:
    """recall_acc per block, seed, K and clip (the mean over its scored first asks)."""
    out = []
    for f in sorted((run / "cells").glob("*/metrics.csv")):
        df = pd.read_csv(f)
        df = df[(df["metric"] == "recall_acc") & (df["tag"] == "revisit") & (df["scored"] != 0)]
        if not df.empty:
            k = parse_variant(df["variant"].iloc[0])["slots"]
            out.append(df.groupby(["block_name", "seed", "clip"])["value"].mean().reset_index().assign(K=int(k)))
    return pd.concat(out)


def fall_with_k(run: Path, boots: int = 4000) -> str:
    """Per trained block: recall_acc at K = 2 minus at each larger K, paired by seed."""
    d, rng = _clip_scores(run), np.random.default_rng(0)
    lines = [
        "| block | from K=2 to | per seed | mean ± t-interval | two-level bootstrap 95% |",
        "|---|---|---|---|---|",
    ]
    for block, x in d.groupby("block_name"):
        clips = {(s, k): g["value"].to_numpy() for (s, k), g in x.groupby(["seed", "K"])}
        seeds, ks = sorted(x["seed"].unique()), sorted(x["K"].unique())
        for k in ks[1:]:
            per = pd.Series([clips[(s, ks[0])].mean() - clips[(s, k)].mean() for s in seeds])
            draw = lambda v: v[rng.integers(0, len(v), len(v))].mean()  # noqa: E731
            sample = [np.mean([draw(clips[(s, ks[0])]) - draw(clips[(s, k)]) for s in rng.choice(seeds, len(seeds))])
                      for _ in range(boots)]  # fmt: skip
            lo, hi = np.percentile(sample, [2.5, 97.5])
            lines.append(f"| {block} | {k} | {' / '.join(f'{v:+.2f}' for v in per)} | {per.mean():+.2f} ± "
                         f"{_interval(per):.2f} | [{lo:+.2f}, {hi:+.2f}] |")  # fmt: skip
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, default=Path("results"))
    ap.add_argument("--final", type=Path, default=None)
    args = ap.parse_args()
    if args.final is not None:
        print(final_table(args.final))
        print(fall_with_k(args.final))
    df = rows(args.results)
    df.to_csv(HERE / "study.csv", index=False)
    (HERE / "study.md").write_text(markdown(df))
    print(markdown(df))


if __name__ == "__main__":
    main()
