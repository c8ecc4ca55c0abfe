"""Suite throughput for any subset: training steps per wall second of a whole ``rad-bench run``, this checkout
against a baseline commit (``make bench`` runs the fixed subsets of :mod:`rad_bench.bench.suites`; this runs others).

    python experiments/throughput/suite.py OUT --suite suites/smoke.yaml --baseline a2ad65d \\
        [--set seeds=[0]] [--limit-steps 300] [--repeats 2]

The suite file is read as it was at the baseline and run by both codes, alternating, baseline first, ``--repeats``
times (:func:`rad_bench.bench.suites.one_run`); nothing else should run on the machine. Writes ``OUT/suites.csv``
(one row per run) and prints one markdown row per suite: medians and the ratio, this checkout over the baseline.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

from rad_bench.bench.suites import baseline_code, frozen_suite, one_run


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--suite", action="append", required=True, help="a suite path in the repository (repeatable)")
    p.add_argument("--baseline", default="a2ad65d")
    p.add_argument("--set", dest="sets", action="append", default=[], help="an override for both codes")
    p.add_argument("--limit-steps", type=int)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    base = baseline_code(a.baseline, a.out)
    extra = [x for s in a.sets for x in ("--set", s)] + (["--limit-steps", str(a.limit_steps)] if a.limit_steps else [])
    rows = []
    for suite in a.suite:
        frozen = frozen_suite(suite, a.baseline, a.out)
        for rep in range(a.repeats):
            for code, label in ((base, f"baseline {a.baseline}"), (None, "this tree")):
                results = a.out / "runs" / f"{Path(suite).stem}-{label.split()[0]}-{rep}"
                if results.exists():
                    sys.exit(f"{results} exists: choose a fresh OUT")
                row = one_run(code, frozen, results, extra)
                rows.append(
                    {"suite": suite, "code": label, "repeat": rep, **row, "steps_per_s": row["steps"] / row["wall_s"]}
                )
                print(f"{suite} {label} #{rep}: {row['steps']} steps in {row['wall_s']:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    df.to_csv(a.out / "suites.csv", index=False)
    print(table(df, a.baseline))


def table(df: pd.DataFrame, baseline: str) -> str:
    """One markdown row per suite: median steps/s of each code and their ratio."""
    lines = [
        f"| suite | trainings x steps | baseline {baseline} steps/s | this tree steps/s | ratio | runs |",
        "|---|---|---|---|---|---|",
    ]
    for suite, g in df.groupby("suite", sort=False):
        med = g.groupby("code", sort=False)["steps_per_s"].median()
        old, new = med.iloc[0], med.iloc[1]
        walls = ", ".join(f"{w:.0f}" for w in g["wall_s"])
        size = f"{g['trainings'].iloc[0]} x {g['steps'].iloc[0] // max(1, g['trainings'].iloc[0])}"
        lines.append(f"| {suite} | {size} | {old:.2f} | {new:.2f} | {new / old:.2f}x | wall s: {walls} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
