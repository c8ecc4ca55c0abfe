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


def table_rows(s: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the block x K table of :func:`summary` ``s``: cells ``mean ± ci95``, then params, state
    bytes and lr per block (the markdown table and the report's)."""
    ks = sorted(s["K"].unique())
    rows = []
    for block, g in s.groupby("block", sort=True):
        at, first = g.set_index("K"), g.iloc[0]
        acc = [f"{at.at[k, 'mean']:.3f} ± {at.at[k, 'ci95']:.3f}" if k in at.index else "" for k in ks]
        sizes = [f"{int(first['params']):,}", f"{int(first['state_bytes']):,}", f"{first['lr']:g}"]
        rows.append([str(block), *acc, *sizes])
    return ["block", *(f"K={k}" for k in ks), "params", "state bytes", "lr"], rows


def table_md(df: pd.DataFrame, title: str = "MQAR calibration") -> str:
    """Markdown: the :func:`table_rows` table under a title and the line that says what its cells are."""
    s = summary(df)
    header, rows = table_rows(s)
    lines = [
        f"# {title}",
        "",
        f"Held-out accuracy at the query steps, mean ± 95% t-interval over {int(s['seeds'].max())} seeds; "
        f"chance = {s['chance'].iloc[0]:.3f}.",
        "",
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]
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
