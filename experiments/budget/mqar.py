"""Recall against state size on MQAR (issue 24): the MQAR suite run at several state budgets (``state_budget``:
bytes of mixer state per layer and token; each constant-state block's state knob set to the most state
within it, full attention unbudgeted), the rows gathered into one table with the budget and the state bytes
each block reached, and the Pareto figure: accuracy against state bytes, one line per block, one panel per K,
chance and full attention marked.

Usage: python experiments/budget/mqar.py OUT [--budget 1536 --budget 3072 ...] [--set steps=1000 ...] [--jobs 2]
(``--jobs``: budgets trained in that many processes at once, one torch thread each as the suite sets.)
Writes OUT/budget_<B>/ (each budget's MQAR run), OUT/budgets.csv, OUT/budgets.md and OUT/recall_vs_state.png.
"""

from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
from scipy.stats import t as student_t  # noqa: E402

from rad_bench.mqar.config import load_mqar  # noqa: E402
from rad_bench.report.style import block_color  # noqa: E402
from rad_bench.token_run import run_mqar  # noqa: E402

SUITE = Path(__file__).parents[2] / "suites" / "mqar.yaml"
BUDGETS = (1536, 3072, 6144, 12288, 24576)  # 16x; mamba2's smallest state is 1048 bytes per layer and token
CONSTANT = ("lstm_attn", "mamba2", "ttt", "frame_stack")
# A block whose mixer layer alone would hold more parameters than this is left out of that budget: the LSTM's
# parameters grow with the square of its state (hidden 768, the 6,144-byte budget, is 2.4M a layer against the
# whole 28k-parameter model of the others), which no parameter comparison survives and 2 CPU cores cannot train
# in the sweep's time (1000 steps at hidden 384 already take 2.4 minutes a seed).
PARAM_CAP = 1_000_000


def mixer_params(block: str, cfg) -> int:
    """Parameters of one of ``block``'s mixer layers as ``cfg`` builds it (counted on the meta device)."""
    import torch

    from rad_bench.registry import BLOCKS

    with torch.device("meta"):
        layer = BLOCKS.get(block)(cfg.dim, heads=cfg.heads, **cfg.kwargs_for(block))
    return sum(p.numel() for p in layer.parameters())


def blocks_at(budget: int, overrides: list[str]) -> tuple[list[str], dict[str, int]]:
    """The constant-state blocks run at ``budget``, and those left out with their mixer's parameter count."""
    cfg = load_mqar(SUITE, [*overrides, f"state_budget={budget}", f"blocks=[{', '.join(CONSTANT)}]"])
    sizes = {b: mixer_params(b, cfg) for b in CONSTANT}
    return [b for b in CONSTANT if sizes[b] <= PARAM_CAP], {b: n for b, n in sizes.items() if n > PARAM_CAP}


def _one(out: Path, budget: int | None, overrides: list[str]) -> pd.DataFrame:
    """One budget's MQAR run (constant-state blocks), or full attention and `none` unbudgeted (``budget=None``).
    Its run folder resumes: finished cells are read back, not trained again (a folder in the layout before
    that, with its ``mqar_suite.json``, is read back whole)."""
    name = "unbudgeted" if budget is None else f"budget_{budget}"
    if (out / name / "mqar_suite.json").is_file():  # written before token runs shared the run folder layout
        return pd.read_csv(out / name / "mqar.csv").assign(budget=budget)
    if budget is None:
        cfg = load_mqar(SUITE, [*overrides, "blocks=[full_attn, none]"])
    else:
        blocks = blocks_at(budget, overrides)[0]
        cfg = load_mqar(SUITE, [*overrides, f"state_budget={budget}", f"blocks=[{', '.join(blocks)}]"])
    return run_mqar(cfg, out / name).assign(budget=budget)


def run_budgets(out: Path, budgets: list[int], overrides: list[str], jobs: int = 1) -> pd.DataFrame:
    """Every budget's run and the unbudgeted references, ``jobs`` processes at a time, in budget order."""
    points = [*budgets, None]
    if jobs <= 1:
        return pd.concat([_one(out, b, overrides) for b in points], ignore_index=True)
    with ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(_one, out, b, overrides) for b in points]
        return pd.concat([f.result() for f in futures], ignore_index=True)


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


def markdown(rows: pd.DataFrame) -> str:
    head = ["| " + " | ".join(map(str, rows.columns)) + " |", "|" + "---|" * len(rows.columns)]
    return "\n".join(head + ["| " + " | ".join(str(v) for v in r) + " |" for r in rows.itertuples(index=False)])


def summary(df: pd.DataFrame, layers: int) -> pd.DataFrame:
    """Mean and sd over seeds per block, budget and K, with the state reached per layer as a share of the budget."""
    t = df.groupby(["block", "budget", "K"], dropna=False).agg(
        accuracy=("accuracy", "mean"), sd=("accuracy", "std"), state_bytes=("state_bytes", "mean"),
        params=("params", "mean"),
    ).reset_index()  # fmt: skip
    t["reached"] = (t["state_bytes"] / layers / t["budget"]).map(lambda r: "" if pd.isna(r) else f"{r:.0%}")
    return t.round(3)


PAIRS = (("lstm_attn", "ttt"), ("lstm_attn", "mamba2"), ("lstm_attn", "frame_stack"), ("mamba2", "ttt"))


def pairs(df: pd.DataFrame) -> pd.DataFrame:
    """Paired differences at each budget (A minus B, the same seed and evaluation sequences), at K = 2, at K = 16
    and averaged over K: mean over seeds and its 95% t-interval (``n`` seeds)."""
    rows = []
    for budget, at in df[df["budget"].notna()].groupby("budget"):
        for a, b in PAIRS:
            wide = at[at["block"].isin([a, b])].pivot_table(index=["seed", "K"], columns="block", values="accuracy")
            if a not in wide or b not in wide:
                continue
            d = (wide[a] - wide[b]).rename("d").reset_index()
            cells = {}
            for name, part in (("K=2", d[d["K"] == 2]), ("K=16", d[d["K"] == 16]), ("mean over K", d)):
                per_seed = part.groupby("seed")["d"].mean()
                m, half = (
                    per_seed.mean(),
                    student_t.ppf(0.975, len(per_seed) - 1) * per_seed.std() / len(per_seed) ** 0.5,
                )
                star = " *" if abs(m) > half else ""
                cells[name] = f"{m:+.2f} [{m - half:.2f}, {m + half:.2f}]{star}"
            rows.append({"budget": int(budget), "pair": f"{a} − {b}", **cells, "seeds": d["seed"].nunique()})
    return pd.DataFrame(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--budget", type=int, action="append", help=f"bytes per layer and token (default {BUDGETS})")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="MQAR suite override")
    ap.add_argument("--jobs", type=int, default=1, help="budgets run at once (one process each)")
    args = ap.parse_args()
    budgets = args.budget or list(BUDGETS)
    df = run_budgets(args.out, budgets, args.overrides, args.jobs)  # a finished budget's folder is read back
    df.to_csv(args.out / "budgets.csv", index=False)
    layers = load_mqar(SUITE, args.overrides).layers
    text = markdown(summary(df, layers))
    left_out = [f"- {b} at {budget} bytes: its mixer layer would hold {n:,} parameters (cap {PARAM_CAP:,})"
                for budget in budgets for b, n in blocks_at(budget, args.overrides)[1].items()]  # fmt: skip
    if left_out:
        text += "\n\nLeft out (parameters grow with the state):\n" + "\n".join(left_out)
    (args.out / "budgets.md").write_text(text + "\n")
    paired = markdown(pairs(df))
    (args.out / "pairs.md").write_text(paired + "\n\n`*`: the 95% t-interval over seeds excludes zero.\n")
    figure(df, args.out / "recall_vs_state.png")
    print(text + "\n\n" + paired)


if __name__ == "__main__":
    main()
