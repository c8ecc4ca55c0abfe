"""Several processes for one suite (issue 13): ``--workers N`` on this machine and ``--launcher local``
(submitit's local executor, the stand-in for ``--launcher slurm``), real subprocesses on CPU. Every
cell is computed once, and the results equal a one-process run value for value.

OMP_NUM_THREADS=1 pytest tests/test_launch.py
"""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from rad_bench.cli import app

BASE = Path(__file__).parent / "fixtures" / "suites" / "_tiny_base.yaml"
SUITE = f"""include: {BASE}
name: launch
blocks: [none, full_attn]
metrics: [psnr]
leaderboard: {{sort_by: psnr_all}}
train: {{steps: 4}}
"""
CELLS = ["none-s0", "full_attn-s0", "copy_last-s0", "recall_oracle-s0"]  # two blocks + the reference rows
VALUES = ["block", "seed", "clip", "frame", "tag", "metric", "value"]


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "launch.yaml"
    path.write_text(SUITE)
    return path


def run(suite_file: Path, run_dir: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rad_bench", "run", str(suite_file), "--run-dir", str(run_dir), "--no-progress"]
    res = subprocess.run([*cmd, "--threads", "1", *args], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    return res


@pytest.fixture(scope="module")
def reference(suite_file, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    run(suite_file, run_dir)
    return pd.read_csv(run_dir / "metrics.csv")[VALUES]


def ran(text: str) -> list[str]:
    return re.findall(r"running cell (\S+)", text)


@pytest.mark.slow
def test_workers_share_the_run_folder(suite_file, reference, tmp_path):
    """--workers 2: the helper runs cells too, each cell once; the parent reports after it has ended."""
    run_dir = tmp_path / "run"
    res = run(suite_file, run_dir, "--workers", "2")
    helper = (run_dir / "logs" / "worker1.log").read_text()
    assert sorted(ran(res.stderr) + ran(helper)) == sorted(CELLS), (res.stderr, helper)
    assert f"rad-bench: {run_dir} (" in helper  # it worked on the same folder (which cells it won is a race)
    assert "results:" not in helper  # --no-report: the leaderboard is the parent's alone
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "metrics.csv")[VALUES], reference, check_exact=True)
    assert (run_dir / "leaderboard.md").is_file()


PROBE = """import gc, runpy, sys
sys.argv = ["rad-bench", "run", *sys.argv[1:]]
try:
    runpy.run_module("rad_bench", run_name="__main__")
except SystemExit as e:
    assert not e.code, e.code
print(sorted(m for m in ("pandas", "matplotlib", "scipy") if m in sys.modules), gc.get_freeze_count() > 0)
"""


def test_a_process_that_draws_no_report_imports_no_report_libraries(suite_file, tmp_path):
    """A ``--workers`` helper (``--no-report``) trains, rolls out and scores without pandas, matplotlib or scipy,
    which only the report needs, and with the imports' objects frozen out of the garbage collector's full
    collections (``cli._freeze_imports``); the two together: 0.58x the whole process's time (docs/throughput.md)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    args = [str(suite_file), "--run-dir", str(tmp_path / "run"), "--no-progress", "--no-report", "--limit-steps", "1"]
    res = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split("\n")[-2] == "[] True", res.stdout
    assert (tmp_path / "run" / "cells" / "none-s0" / "metrics.csv").is_file()


@pytest.mark.slow
def test_launcher_local_runs_one_job_per_cell(suite_file, reference, tmp_path):
    """--launcher local (submitit's local executor): one job per cell into the run folder, the report
    drawn once all have ended; the same numbers as one process."""
    pytest.importorskip("submitit")
    run_dir = tmp_path / "run"
    sets = ["launcher.gpus=0", "launcher.cpus=1", "launcher.time=10"]
    res = run(suite_file, run_dir, "--launcher", "local", *(a for s in sets for a in ("--set", s)))
    assert f"{len(CELLS)} cell jobs to local" in res.stderr
    logs = [p.read_text() for p in (run_dir / "logs" / "submitit").glob("*_log.err")]
    assert sorted(c for log in logs for c in ran(log)) == sorted(CELLS)
    pd.testing.assert_frame_equal(pd.read_csv(run_dir / "metrics.csv")[VALUES], reference, check_exact=True)
    assert (run_dir / "leaderboard.md").is_file()


def test_launcher_without_submitit_names_the_install_command(suite_file, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "submitit", None)  # import submitit raises ImportError
    res = CliRunner().invoke(app, ["run", str(suite_file), "--launcher", "slurm", "--results", str(tmp_path)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "submitit" in res.output and "pip install 'rad-bench[cluster]'" in res.output
    assert not list(tmp_path.iterdir())  # refused before any folder was made


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="this machine has Slurm")
def test_launcher_slurm_without_slurm_is_a_clear_error(suite_file, tmp_path):
    pytest.importorskip("submitit")
    res = CliRunner().invoke(app, ["run", str(suite_file), "--launcher", "slurm", "--results", str(tmp_path)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert "--launcher slurm: no Slurm on this machine" in res.output and "--launcher local" in res.output
    assert not list(tmp_path.iterdir())


def test_workers_and_launcher_exclude_each_other(suite_file, tmp_path):
    args = ["run", str(suite_file), "--launcher", "local", "--workers", "2", "--results", str(tmp_path)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 2 and "drop --workers" in res.output, res.output


def test_auto_workers_one_thread_process_per_core_for_real_trainings_on_cpu(suite_file, monkeypatch):
    """``launcher.workers: auto`` (the default): parallel cells on CPU only when each process has trainings
    long enough to repay its start; quick checks, single trainings and CUDA runs stay in one process."""
    from rad_bench.config import load_suite
    from rad_bench.launch import AUTO_MIN_STEPS, auto_workers

    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    long = load_suite(suite_file, [f"train.steps={AUTO_MIN_STEPS}"])
    assert long.launcher.workers == "auto"
    assert auto_workers(long, None, "cpu") == 2  # two trainings (the reference rows train nothing)
    assert auto_workers(load_suite(suite_file, [f"train.steps={AUTO_MIN_STEPS}", "seeds=[0,1,2]"]), None, "cpu") == 4
    assert auto_workers(long, AUTO_MIN_STEPS - 1, "cpu") == 1  # --limit-steps: a quick check
    assert auto_workers(load_suite(suite_file), None, "cpu") == 1  # 4 steps
    assert auto_workers(load_suite(suite_file, [f"train.steps={AUTO_MIN_STEPS}", "blocks=[none]"]), None, "cpu") == 1
    assert auto_workers(long, None, "cuda:0") == 1
    assert load_suite(suite_file, ["launcher.workers=2"]).launcher.workers == 2
