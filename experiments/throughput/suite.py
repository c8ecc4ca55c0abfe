"""Suite throughput: training steps per wall second of a whole ``rad-bench run``, this tree against a baseline commit.

    python experiments/throughput/suite.py OUT --suite suites/smoke.yaml --baseline a2ad65d \\
        [--set seeds=[0]] [--limit-steps 300] [--repeats 2]

Issue 25's measure of speed. The suite file is read as it was at the baseline commit (same cells, same steps: a
recipe change made since does not count as speed) and run to the end, report included, by two codes: the
baseline commit's (``git archive`` into ``OUT/code-<sha>``, run with that folder first on ``PYTHONPATH``) and this
working tree's, each with its own defaults (processes, threads). Runs alternate, baseline first, ``--repeats``
times, one at a time; nothing else should run on the machine. Steps trained are summed from each run's
``efficiency.csv`` (learned cells that trained their own model; reference cells and shared trainings count
nothing). Writes ``OUT/suites.csv`` (one row per run) and prints one markdown row per suite: medians and the
ratio of steps per wall second, this tree over the baseline.
"""

from __future__ import annotations

import argparse
import io
import os
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def git(*args: str) -> bytes:
    return subprocess.run(["git", "-C", str(ROOT), *args], check=True, capture_output=True).stdout


def baseline_code(sha: str, out: Path) -> Path:
    """The baseline commit's tree, extracted once into ``out/code-<sha>``."""
    full = git("rev-parse", sha).decode().strip()
    where = out / f"code-{full[:7]}"
    if not (where / "rad_bench").is_dir():
        with tarfile.open(fileobj=io.BytesIO(git("archive", full))) as tar:
            tar.extractall(where, filter="data")
    return where


def one_run(code: Path | None, suite: Path, results: Path, extra: list[str]) -> dict:
    """Time one whole ``rad-bench run`` (a fresh run folder); return its row."""
    env = dict(os.environ)
    if code is not None:  # `python -m` puts its working folder first on sys.path: run in the code's folder
        env["PYTHONPATH"] = os.pathsep.join([str(code), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    suite, results = suite.resolve(), results.resolve()
    cmd = [sys.executable, "-m", "rad_bench", "run", str(suite), "--results", str(results), "--no-progress", *extra]
    probe = [sys.executable, "-c", "import rad_bench; print(rad_bench.__file__)"]
    where = subprocess.run(probe, env=env, cwd=code or ROOT, capture_output=True, text=True, check=True).stdout
    if not Path(where.strip()).is_relative_to(code or ROOT):
        sys.exit(f"{' '.join(cmd)} would import rad_bench from {where.strip()}, not from {code or ROOT}")
    t0 = time.perf_counter()
    done = subprocess.run(cmd, env=env, cwd=code or ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if done.returncode:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    (run_dir,) = [p for p in results.glob("*/*") if p.is_dir()]
    eff = pd.read_csv(run_dir / "efficiency.csv")
    own = eff[~eff["reference"].astype(bool)]
    if "train_shared_from" in own:
        own = own[own["train_shared_from"].isna()]
    steps = int(own["train_steps"].sum())
    return {"cells": len(eff), "trainings": len(own), "steps": steps, "wall_s": wall, "steps_per_s": steps / wall}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("out", type=Path)
    p.add_argument("--suite", type=Path, action="append", required=True, help="a suite path (repeatable)")
    p.add_argument("--baseline", default="a2ad65d")
    p.add_argument("--set", dest="sets", action="append", default=[], help="an override for both codes")
    p.add_argument("--limit-steps", type=int)
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    a.out.mkdir(parents=True, exist_ok=True)
    base = baseline_code(a.baseline, a.out)
    extra = [x for s in a.sets for x in ("--set", s)]
    extra += ["--limit-steps", str(a.limit_steps)] if a.limit_steps else []
    rows = []
    for suite in a.suite:
        frozen = a.out / f"{suite.stem}@{a.baseline}.yaml"  # the suite as it was at the baseline
        frozen.write_bytes(git("show", f"{a.baseline}:{suite.as_posix()}"))
        (a.out / "_base.yaml").write_bytes(git("show", f"{a.baseline}:suites/_base.yaml"))
        for rep in range(a.repeats):
            for code, label in ((base, f"baseline {a.baseline}"), (None, "this tree")):
                results = a.out / "runs" / f"{suite.stem}-{label.split()[0]}-{rep}"
                if results.exists():
                    sys.exit(f"{results} exists: choose a fresh OUT")
                row = one_run(code, frozen, results, extra)
                rows.append({"suite": suite.as_posix(), "code": label, "repeat": rep, **row})
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
