"""Recall against state size on MQAR (issue 24): the MQAR suite run at several state budgets (``state_budget``:
bytes of mixer state per layer and token; each constant-state block's state knob set to the most state
within it, full attention unbudgeted), the rows gathered into one table with the budget and the state bytes
each block reached, and the Pareto figure: accuracy against state bytes, one line per block, one panel per K,
chance and full attention marked.

Usage: python experiments/budget/mqar.py OUT [--budget 1536 --budget 3072 ...] [--set steps=1000 ...]
Writes OUT/budget_<B>/ (each budget's MQAR run), OUT/budgets.csv, OUT/budgets.md and OUT/recall_vs_state.png.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

from rad_bench.mqar.config import load_mqar  # noqa: E402
from rad_bench.mqar.run import run_mqar  # noqa: E402
from rad_bench.report.style import block_color  # noqa: E402

SUITE = Path(__file__).parents[2] / "suites" / "mqar.yaml"
BUDGETS = (1536, 3072, 6144, 12288, 24576)  # 16x; mamba2's smallest state is 1048 bytes per layer and token


def run_budgets(out: Path, budgets: list[int], overrides: list[str]) -> pd.DataFrame:
    """Each budget's MQAR run (constant-state blocks); full attention and `none` once, unbudgeted."""
    frames = []
    for b in budgets:
        cfg = load_mqar(SUITE, [*overrides, f"state_budget={b}", "blocks=[lstm_attn, mamba2, ttt, frame_stack]"])
        frames.append(run_mqar(cfg, out / f"budget_{b}").assign(budget=b))
    ref = load_mqar(SUITE, [*overrides, "blocks=[full_attn, none]"])
    frames.append(run_mqar(ref, out / "unbudgeted").assign(budget=None))
    return pd.concat(frames, ignore_index=True)


def figure(df: pd.DataFrame, path: Path) -> None:
    ks = sorted(df["K"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(3.2 * len(ks), 3.2), sharey=True, squeeze=False)
    axes = axes[0]
    mean = df.groupby(["block", "budget", "K"], dropna=False)[["accuracy", "state_bytes"]].mean().reset_index()
    for ax, k in zip(axes, ks):
        at = mean[mean["K"] == k]
        for block, g in at[at["budget"].notna()].groupby("block"):
            g = g.sort_values("state_bytes")
            ax.plot(g["state_bytes"], g["accuracy"], marker="o", color=block_color(block), label=block)
        for _, row in at[at["budget"].isna()].iterrows():
            ax.axhline(row["accuracy"], ls="--", lw=1, color=block_color(row["block"]), label=f"{row['block']} (ref)")
        ax.axhline(float(df["chance"].iloc[0]), ls=":", color="grey", label="chance")
        ax.set_xscale("log", base=2)
        ax.set(title=f"K = {k}", xlabel="state bytes per sequence (all layers)")
    axes[0].set_ylabel("accuracy (eval)")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--budget", type=int, action="append", help=f"bytes per layer and token (default {BUDGETS})")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="MQAR suite override")
    args = ap.parse_args()
    df = run_budgets(args.out, args.budget or list(BUDGETS), args.overrides)
    df.to_csv(args.out / "budgets.csv", index=False)
    table = df.groupby(["block", "budget", "K"], dropna=False).agg(
        accuracy=("accuracy", "mean"), sd=("accuracy", "std"), state_bytes=("state_bytes", "mean"),
        params=("params", "mean"),
    )  # fmt: skip
    rows = table.round(3).reset_index()
    text = "\n".join(["| " + " | ".join(rows.columns) + " |", "|" + "---|" * len(rows.columns)]
                     + ["| " + " | ".join(str(v) for v in r) + " |" for r in rows.itertuples(index=False)])  # fmt: skip
    (args.out / "budgets.md").write_text(text + "\n")
    figure(df, args.out / "recall_vs_state.png")
    print(text)


if __name__ == "__main__":
    main()
