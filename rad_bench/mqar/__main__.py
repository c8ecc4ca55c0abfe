"""``python -m rad_bench.mqar SUITE --out DIR [--sweep-lr] [--set key=value ...] [--no-progress]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rad_bench.mqar.config import load_mqar
from rad_bench.mqar.run import sweep_lr
from rad_bench.results import ReportError
from rad_bench.suitefile import SuiteError
from rad_bench.token_run import run_mqar


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m rad_bench.mqar", description=__doc__)
    p.add_argument("suite", type=Path, help="an MQAR suite file, e.g. suites/mqar.yaml")
    p.add_argument("--out", type=Path, required=True, help="a new or empty folder, or its run folder to resume")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--sweep-lr", action="store_true", help="choose per-block lrs on the val split instead")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    try:
        cfg = load_mqar(args.suite, args.overrides + (["progress=false"] if args.no_progress else []))
    except SuiteError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.sweep_lr:
        _, chosen = sweep_lr(cfg, args.out)
        print("lr_per_block: {" + ", ".join(f"{b}: {lr:g}" for b, lr in chosen.items()) + "}")
    else:
        try:
            run_mqar(cfg, args.out)
        except (SuiteError, ReportError) as e:  # e.g. --out holds something else
            print(f"error: {e}", file=sys.stderr)
            return 2
        print((args.out / "leaderboard.md").read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
