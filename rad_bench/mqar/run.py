"""The per-block learning-rate choice of an MQAR suite on the val split (:func:`sweep_lr`), never on the eval
split. Running the suite itself: :mod:`rad_bench.token_run` (the run folder layout every suite shares)."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from rad_bench.mqar.config import MQARConfig, load_mqar
from rad_bench.mqar.report import table_md
from rad_bench.mqar.train import score, torch_threads, train
from rad_bench.utils import atomic_write_text


def _config(path_or_cfg: str | Path | MQARConfig) -> MQARConfig:
    return path_or_cfg if isinstance(path_or_cfg, MQARConfig) else load_mqar(path_or_cfg)


LR_MARGIN = 0.02  # val accuracy an lr must gain over the default to replace it (not noise among chance rows)


def choose_lr(sweep: pd.DataFrame, default: float, margin: float = LR_MARGIN) -> dict[str, float]:
    """Per block, the lr with the best mean val accuracy over K, if it beats ``default`` by more than
    ``margin`` (a block at chance at every lr keeps the default)."""
    mean = sweep.groupby(["block", "lr"])["accuracy"].mean()
    chosen = {}
    for block, acc in mean.groupby(level="block"):
        acc = acc.droplevel("block")
        best = float(acc.idxmax())
        chosen[str(block)] = best if acc[best] > acc.get(default, -math.inf) + margin else default
    return chosen


def sweep_lr(path_or_cfg: str | Path | MQARConfig, out_dir: str | Path) -> tuple[pd.DataFrame, dict[str, float]]:
    """Train every block at every ``lr_grid`` value with ``sweep_seed`` (a seed outside ``seeds``) and
    score on the **val** split. Writes ``mqar_lr_sweep.csv`` / ``.md``; returns the rows and the choice."""
    cfg, out_dir = _config(path_or_cfg), Path(out_dir)
    rows: list[dict] = []
    cells = [(b, lr) for b in cfg.block_names() for lr in cfg.lr_grid]
    with torch_threads(cfg.threads):
        for block, lr in tqdm(cells, desc="mqar lr sweep", disable=not cfg.progress):
            rows += score(train(cfg, block, cfg.sweep_seed, lr=lr), cfg, "val")
    df = pd.DataFrame(rows)
    chosen = choose_lr(df, cfg.lr)
    atomic_write_text(out_dir / "mqar_lr_sweep.csv", df.to_csv(index=False))
    text = table_md(
        df.assign(block=df["block"] + " @ lr " + df["lr"].map("{:g}".format)),
        f"MQAR lr sweep on the val split (seed {cfg.sweep_seed})",
    )
    yaml = "\n".join(f"  {b}: {lr:g}" for b, lr in chosen.items())
    text += f"\nChosen (mean val accuracy over K):\n\nlr_per_block:\n{yaml}\n"
    atomic_write_text(out_dir / "mqar_lr_sweep.md", text)
    return df, chosen
