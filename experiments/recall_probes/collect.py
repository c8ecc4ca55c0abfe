"""Collect recall_acc of the issue-17 probe runs (experiments/recall_probes/*.yaml) into probes.csv.

Reads each run folder's cells/*/metrics.csv (so a run stopped before its last cell still counts its
finished cells): per cell, the mean recall_acc over the evaluation clips' query frames and the 95%
t-interval over clips (one seed per cell), and its training step time from stats.json (wall seconds
on the machine that ran it, shared with other jobs: a rough cost, not a benchmark), and which
episodes it scored (``split``: test, or validation for the learning-rate probe).

    python experiments/recall_probes/collect.py PROBE=RUN_DIR [PROBE=RUN_DIR ...] > probes.csv
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import t as student_t


def cell_rows(probe: str, run_dir: Path) -> list[dict]:
    rows = []
    for f in sorted((run_dir / "cells").glob("*/metrics.csv")):
        df = pd.read_csv(f)
        acc = df[(df.metric == "recall_acc") & (df.frame >= 0)].groupby("clip")["value"].mean()
        half = student_t.ppf(0.975, len(acc) - 1) * acc.std(ddof=1) / len(acc) ** 0.5
        first, stats = df.iloc[0], f.parent / "stats.json"
        step_s = json.loads(stats.read_text()).get("train_step_s") if stats.is_file() else None
        rows.append({"probe": probe, "block": first.block, "seed": int(first.seed), "reference": first.reference,
                     "recall_acc": round(acc.mean(), 4), "ci95": round(half, 4), "clips": len(acc),
                     "train_step_s": None if step_s is None else round(step_s, 3),
                     "split": first.get("split", "test")})  # fmt: skip
    return rows


if __name__ == "__main__":
    out = []
    for arg in sys.argv[1:]:
        probe, run_dir = arg.split("=", 1)
        out += cell_rows(probe, Path(run_dir))
    pd.DataFrame(out).to_csv(sys.stdout, index=False)
