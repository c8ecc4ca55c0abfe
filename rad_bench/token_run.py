"""Running a token suite (``kind: mqar``) in the run folder layout every suite shares (:mod:`rad_bench.rundir`):
``suite.resolved.yaml``, ``argv.txt`` and ``env.json``; one cell per block and seed (``cells/<block>-s<seed>/
metrics.csv``, then its completion record), each under its lock, a finished one never recomputed (``--resume``);
then the combined metrics.csv and the report (:func:`rad_bench.report.write`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from rad_bench import report as report_
from rad_bench.mqar.config import MQARConfig, load_mqar
from rad_bench.mqar.train import score, torch_threads, train
from rad_bench.results import METRICS_CSV
from rad_bench.rundir import cell_done, run_locked, start_run_dir
from rad_bench.utils import atomic_write_text


def _cell(cfg: MQARConfig, block: str, seed: int, run_dir: Path, name: str) -> None:
    """Train one block on one seed, score it on the eval split at every K, write the cell's metrics.csv."""
    rows = score(train(cfg, block, seed), cfg, "eval")
    atomic_write_text(run_dir / "cells" / name / METRICS_CSV, pd.DataFrame(rows).to_csv(index=False))


def run_token_suite(
    cfg: MQARConfig,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    limit_steps: int | None = None,
    results_root: Path = Path("results"),
    argv: list[str] | None = None,
    progress: bool = True,
    report: bool = True,
) -> Path:
    """Every (block, seed) cell of ``cfg`` not already done, then (``report``) the report; returns the run
    folder."""
    limited = limit_steps is not None and limit_steps < cfg.steps
    if limited:
        cfg = cfg.model_copy(update={"steps": limit_steps})
    cfg = cfg.model_copy(update={"progress": cfg.progress and progress})  # --no-progress: every bar off
    run_dir = start_run_dir(cfg, run_dir, resume, limited, results_root, argv, cfg.device)
    cells = [(block, seed, f"{block}-s{seed}") for block in cfg.block_names() for seed in cfg.seeds]
    todo = [c for c in cells if not cell_done(run_dir, c[2])]
    print(f"rad-bench: {run_dir} ({len(todo)} of {len(cells)} cells to run)", file=sys.stderr)
    with torch_threads(cfg.threads):
        for block, seed, name in tqdm(todo, desc="mqar", disable=not cfg.progress):
            run_locked(run_dir, name, lambda b=block, s=seed, n=name: _cell(cfg, b, s, run_dir, n), wait=True)
    if report:
        report_.write(run_dir)
    return run_dir


def run_mqar(path_or_cfg: str | Path | MQARConfig, out_dir: str | Path) -> pd.DataFrame:
    """The library call: :func:`run_token_suite` into ``out_dir`` (new, empty, or this suite's run folder to
    resume); returns the combined rows (block, K, seed, accuracy, ...)."""
    cfg = path_or_cfg if isinstance(path_or_cfg, MQARConfig) else load_mqar(path_or_cfg)
    run_dir = run_token_suite(cfg, run_dir=Path(out_dir), progress=cfg.progress)
    return pd.read_csv(run_dir / METRICS_CSV)
