"""The report of a token suite's run folder (``kind: mqar``): the same files as a video run's, from the same
combined metrics.csv (rebuilt from the cells whose completion records verify): ``leaderboard.csv`` (block x K:
mean accuracy over seeds, its 95% t-interval, chance, parameters, state bytes, learning rate),
``leaderboard.md``, ``figures/mqar_acc_vs_k.png``, ``report.md`` and ``report.html``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from rad_bench.mqar.report import COLUMNS, figure_png, summary, table_md, table_rows
from rad_bench.report.document import Figure, Para, Table, write_documents
from rad_bench.report.runs import read_csv_checked
from rad_bench.results import LEADERBOARD_CSV, LEADERBOARD_MD, METRICS_CSV, write_table
from rad_bench.utils import atomic_write_bytes, atomic_write_text


def _table(s: pd.DataFrame) -> Table:
    header, rows = table_rows(s)
    note = f"Held-out accuracy at the query steps, mean ± 95% t-interval over seeds; chance {s['chance'].iloc[0]:.3f}."
    return Table(header, rows, note=note)


def write_tokens(run_dir: Path) -> pd.DataFrame:
    """The report files of a token suite's run folder whose combined metrics.csv is written; returns the
    leaderboard (one row per block and K)."""
    numbers = ("K", "seed", "accuracy", "chance", "params", "state_bytes", "lr")
    df = read_csv_checked(run_dir / METRICS_CSV, COLUMNS, numeric=numbers)
    name = (yaml.safe_load((run_dir / "suite.resolved.yaml").read_text()) or {}).get("name", "mqar")
    s = summary(df)
    write_table(run_dir / LEADERBOARD_CSV, s)
    atomic_write_text(run_dir / LEADERBOARD_MD, table_md(df, f"MQAR calibration ({name})"))
    figure = run_dir / "figures" / "mqar_acc_vs_k.png"
    figure.parent.mkdir(exist_ok=True)
    atomic_write_bytes(figure, figure_png(df))
    intro = Para(
        f"Token-level multi-query associative recall, suite `{name}`: each block the only sequence mixer "
        "of a small token model, trained once on every K and scored at each."
    )
    items = [intro, _table(s), Figure(figure, "Accuracy against the number of key-value pairs K (chance dashed).")]
    write_documents(run_dir, f"rad-bench report: {name} ({run_dir.name})", items)
    return s
