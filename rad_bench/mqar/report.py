"""MQAR tables and figure: the block x K table (mean and 95% t-interval over seeds) and the accuracy-vs-K
figure with chance marked (a run folder's report: :mod:`rad_bench.report.tokens`)."""

from __future__ import annotations

import io

import pandas as pd

from rad_bench.stats import ci95

COLUMNS = ["block", "K", "seed", "accuracy", "chance", "params", "state_bytes", "steps", "lr"]


def summary(df: pd.DataFrame) -> pd.DataFrame:
    """One row per (block, K): mean accuracy over seeds, its 95% t-interval, seeds, chance, params, lr."""
    g = df.groupby(["block", "K"], sort=True)
    out = g["accuracy"].agg(mean="mean", ci95=ci95, seeds="count").reset_index()
    extra = g[["chance", "params", "state_bytes", "lr"]].first().reset_index()
    return out.merge(extra, on=["block", "K"])


def table_md(df: pd.DataFrame, title: str = "MQAR calibration") -> str:
    """Markdown: block x K cells ``mean ± ci95``, then params, state bytes and lr per block."""
    s = summary(df)
    ks = sorted(s["K"].unique())
    lines = [
        f"# {title}",
        "",
        f"Held-out accuracy at the query steps, mean ± 95% t-interval over {int(s['seeds'].max())} seeds; "
        f"chance = {s['chance'].iloc[0]:.3f}.",
        "",
        "| block | " + " | ".join(f"K={k}" for k in ks) + " | params | state bytes | lr |",
        "|---|" + "---|" * (len(ks) + 3),
    ]
    for block, rows in s.groupby("block", sort=True):
        cells = rows.set_index("K")
        acc = [f"{cells.at[k, 'mean']:.3f} ± {cells.at[k, 'ci95']:.3f}" if k in cells.index else "" for k in ks]
        first = rows.iloc[0]
        lines.append(
            f"| {block} | " + " | ".join(acc) + f" | {int(first['params'])} | {int(first['state_bytes'])} | "
            f"{first['lr']:g} |"
        )
    lines += ["", "state bytes: all layers' block states after one sequence (batch 1), as carried between steps."]
    return "\n".join(lines) + "\n"


def figure_png(df: pd.DataFrame) -> bytes:
    """Accuracy vs K per block, mean with the 95% interval as error bars, chance as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = summary(df)
    fig, ax = plt.subplots(figsize=(5.5, 3.8), dpi=120)
    for block, rows in s.groupby("block", sort=True):
        ax.errorbar(rows["K"], rows["mean"], yerr=rows["ci95"].fillna(0), marker="o", capsize=3, label=block)
    ax.axhline(s["chance"].iloc[0], color="grey", ls="--", lw=1, label="chance")
    ax.set_xscale("log", base=2)
    ax.set_xticks(sorted(s["K"].unique()), [str(k) for k in sorted(s["K"].unique())])
    ax.set(xlabel="key-value pairs K", ylabel="recall accuracy", ylim=(-0.02, 1.02), title="MQAR (token level)")
    ax.legend(fontsize=8, loc="center")
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()
