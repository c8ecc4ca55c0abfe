"""Video recall at equal memory budgets (issue 24): the table, the paired differences and the figure of a run of
``experiments/budget/recall.yaml`` (the recall suite with ``model.state_budget`` swept).

Usage: python experiments/budget/recall.py RUN [--defaults docs/results/recall/leaderboard.csv] [--out DIR]

Recall accuracy on first asks (the leaderboard's rule: rows with ``scored`` 0 left out), per block, budget and K:
mean over seeds with its 95% t-interval, and the state each block reached per layer and spatial token (the
block's own formula at the knob the budget set, :func:`rad_bench.block.fit_state`). Paired differences (per seed
and clip on the identical episodes, the report's two-level bootstrap): each block against `none` at the same
budget and K, mamba2 against ttt at the same budget and K, and each block at the larger budget against itself at
the smaller. ``--defaults`` adds the suite's own unbudgeted blocks (another run of the same recipe, seeds and
test episodes) to the figure as open markers. Writes OUT/budget_table.md, OUT/budget_pairs.md and
OUT/recall_vs_state.png (OUT: the run folder by default).
"""

from __future__ import annotations

import argparse
import io
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import yaml  # noqa: E402

from rad_bench.block import budgeted_kwargs  # noqa: E402
from rad_bench.model.presets import PRESETS  # noqa: E402
from rad_bench.registry import BLOCKS  # noqa: E402
from rad_bench.report.style import block_color  # noqa: E402
from rad_bench.report.tables import bootstrap_ci, clip_means, paired_differences  # noqa: E402
from rad_bench.results import concat_csv  # noqa: E402
from rad_bench.stats import ci95  # noqa: E402

COLUMN = "recall_acc_revisit"
LABEL = re.compile(r"^(?P<block>[^\[]+)\[slots=(?P<k>\d+)(?:,state_budget=(?P<budget>\d+))?\]$")


def state_bytes(block: str, budget: int | None, dim: int, heads: int) -> int:
    """Carried bytes per layer and spatial token of ``block`` under ``budget`` (None: its defaults)."""
    cls = BLOCKS.get(block)
    return int(cls.carried_bytes(dim, heads, 1, **budgeted_kwargs(cls, dim, heads, budget, {})) or 0)


def scored_clip_means(run: Path) -> pd.DataFrame:
    """:func:`clip_means` of the leaderboard's rows (first asks only); of the finished cells so far when the run
    has not written its combined metrics.csv yet."""
    cells = sorted((run / "cells").glob("*/metrics.csv"))
    whole = run / "metrics.csv"
    df = pd.read_csv(whole) if whole.is_file() else pd.read_csv(io.StringIO(concat_csv(cells)))
    if "scored" in df:
        df = df[df["scored"].fillna(1) != 0]
    return clip_means(df[df["metric"] == "recall_acc"])


def summary(cm: pd.DataFrame, dim: int, heads: int) -> pd.DataFrame:
    rows = []
    for label, g in cm[COLUMN].groupby(level="block"):
        m = LABEL.match(str(label))
        if not m or m["block"] not in BLOCKS:  # references (copy_last, recall_oracle) carry no state
            continue
        per_seed = g.groupby(level="seed").mean()
        budget = int(m["budget"]) if m["budget"] else None
        rows.append({"block": m["block"], "budget": budget, "K": int(m["k"]), "recall_acc": per_seed.mean(),
                     "ci95": ci95(per_seed), "seeds": len(per_seed),
                     "state_bytes": state_bytes(m["block"], budget, dim, heads)})  # fmt: skip
    return pd.DataFrame(rows).sort_values(["block", "budget", "K"])


def pair_rows(cm: pd.DataFrame, table: pd.DataFrame) -> list[str]:
    """One markdown row per pair: A, B and the bootstrap mean difference with its interval."""
    name = lambda b, budget, k: f"{b}[slots={k},state_budget={budget}]"  # noqa: E731
    budgets = sorted(int(b) for b in table["budget"].dropna().unique())
    pairs = []
    for k in sorted(table["K"].unique()):
        for budget in budgets:
            pairs += [(name(b, budget, k), name("none", budget, k)) for b in ("mamba2", "ttt")]
            pairs += [(name("mamba2", budget, k), name("ttt", budget, k))]
        pairs += [(name(b, budgets[-1], k), name(b, budgets[0], k)) for b in ("mamba2", "ttt")]
    lines = ["| A | B | Δ recall_acc (95% CI) |", "|---|---|---|"]
    blocks = set(cm.index.get_level_values("block"))
    for a, b in pairs:
        if a in blocks and b in blocks:
            d = paired_differences(cm, a, b)[COLUMN].unstack("clip").to_numpy(dtype=float)
            mean, lo, hi = bootstrap_ci(d)
            star = " *" if lo > 0 or hi < 0 else ""
            lines.append(f"| {a} | {b} | {mean:+.2f} [{lo:.2f}, {hi:.2f}]{star} |")
    return lines


def figure(table: pd.DataFrame, defaults: pd.DataFrame | None, chance: float, path: Path) -> None:
    ks = sorted(table["K"].unique())
    fig, axes = plt.subplots(1, len(ks), figsize=(3.2 * len(ks), 3.3), sharey=True, squeeze=False)
    for ax, k in zip(axes[0], ks):
        at = table[table["K"] == k]
        for block, g in at[at["block"] != "none"].groupby("block"):
            g = g.sort_values("state_bytes")
            ax.errorbar(g["state_bytes"], g["recall_acc"], yerr=g["ci95"].fillna(0), marker="o", capsize=3,
                        color=block_color(block), label=f"{block} (budgeted)")  # fmt: skip
        none = at.loc[at["block"] == "none", "recall_acc"].mean()
        ax.axhline(none, ls="--", lw=1, color=block_color("none"), label="none (mean over budgets)")
        if defaults is not None:
            for _, r in defaults[(defaults["K"] == k) & (defaults["block"] != "none")].iterrows():
                ax.plot(r["state_bytes"], r["recall_acc"], marker="o", mfc="none", ls="", ms=7,
                        color=block_color(r["block"]), label=f"{r['block']} (suite default, recall run)")  # fmt: skip
        ax.axhline(chance, ls=":", color="grey", label="chance")
        ax.set_xscale("log", base=2)
        ax.set(title=f"K = {k}", xlabel="state bytes per layer and token", ylim=(-0.04, 1.04))
    axes[0][0].set_ylabel("recall_acc (first asks) ↑")
    handles, labels = axes[0][0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    fig.legend(seen.values(), seen.keys(), loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=130, bbox_inches="tight")


def read_defaults(path: Path, dim: int, heads: int) -> pd.DataFrame:
    """The unbudgeted blocks of a recall leaderboard (``block[slots=K]`` rows) with their default state bytes."""
    board = pd.read_csv(path)
    rows = []
    for _, r in board.iterrows():
        m = LABEL.match(str(r["block"]))
        if m and not m["budget"] and m["block"] in BLOCKS and m["block"] != "full_attn":
            rows.append({"block": m["block"], "K": int(m["k"]), "recall_acc": r[COLUMN],
                         "state_bytes": state_bytes(m["block"], None, dim, heads)})  # fmt: skip
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--defaults", type=Path, help="a recall leaderboard.csv whose unbudgeted blocks join the figure")
    ap.add_argument("--out", type=Path, help="where the table, pairs and figure go (default: the run folder)")
    args = ap.parse_args()
    out = args.out or args.run
    out.mkdir(parents=True, exist_ok=True)
    resolved = yaml.safe_load((args.run / "suite.resolved.yaml").read_text())
    model = resolved["model"]
    preset = PRESETS[model["preset"]]
    dim, heads = int(model.get("dim") or preset["dim"]), int(model.get("heads") or preset["heads"])
    cm = scored_clip_means(args.run)
    table = summary(cm, dim, heads)
    shown = table.assign(recall_acc=table["recall_acc"].round(3), ci95=table["ci95"].round(3))
    text = "\n".join(["| " + " | ".join(shown.columns) + " |", "|" + "---|" * len(shown.columns)]
                     + ["| " + " | ".join(map(str, r)) + " |" for r in shown.itertuples(index=False)])  # fmt: skip
    (out / "budget_table.md").write_text(text + "\n")
    (out / "budget_pairs.md").write_text("\n".join(pair_rows(cm, table)) + "\n\n`*`: the interval excludes zero.\n")
    chance = 1 / float(resolved["data"].get("values", 32))
    defaults = read_defaults(args.defaults, dim, heads) if args.defaults else None
    figure(table, defaults, chance, out / "recall_vs_state.png")
    print(text, *pair_rows(cm, table), sep="\n")


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
