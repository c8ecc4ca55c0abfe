"""Resume, determinism and concurrent runs of ``rad-bench run`` (real subprocesses, SIGKILL, CPU).

Every comparison is exact: on CPU, with one thread, the same suite and seed must give the same
numbers whether the run was uninterrupted, killed and resumed, or split between two processes.

OMP_NUM_THREADS=1 pytest tests/test_resume.py
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from rad_bench.config import load_suite
from rad_bench.kinds import resolved_yaml
from rad_bench.runner import run_suite
from rad_bench.train import CheckpointError

FIXTURES = Path(__file__).parent / "fixtures" / "suites"
BASE = FIXTURES / "_tiny_base.yaml"
CELLS = ["none-s0", "full_attn-s0"]
STEPS = 24
SUITE = f"""include: {BASE}
name: resume
blocks: [none, full_attn]
metrics: [psnr, ssim]
leaderboard: {{sort_by: psnr_all}}
train: {{steps: {STEPS}, checkpoint_every: 3, ema: 0.9}}
"""
VALUE_COLUMNS = ["block", "seed", "clip", "frame", "tag", "metric", "value"]
RESUMED = re.compile(r"(\S+): resumed training from step (\d+) of (\d+)")


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "resume.yaml"
    path.write_text(SUITE)
    return path


def start(suite_file: Path, run_dir: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "rad_bench", "run", str(suite_file), "--run-dir", str(run_dir), "--no-progress"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> str:
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    return err


def kill_when(proc: subprocess.Popen, path: Path, timeout: float = 60.0) -> None:
    """SIGKILL ``proc`` as soon as ``path`` exists (polled every few milliseconds)."""
    t0 = time.monotonic()
    while not path.exists():
        assert proc.poll() is None, f"finished before {path} appeared: {proc.communicate()[1]}"
        assert time.monotonic() - t0 < timeout, f"{path} never appeared"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def results(run_dir: Path) -> pd.DataFrame:
    """metrics.csv's row keys and values, plus every cell's training loss log."""
    df = pd.read_csv(run_dir / "metrics.csv")[VALUE_COLUMNS]
    logs = [pd.read_csv(run_dir / "cells" / c / "train_log.csv").assign(cell=c) for c in CELLS]
    return pd.concat([df, *logs], ignore_index=True)


def assert_same(a: Path, b: Path) -> None:
    pd.testing.assert_frame_equal(results(a), results(b), check_exact=True)


def assert_clean(run_dir: Path) -> None:
    ck = run_dir / "checkpoints"
    assert sorted(p.name for p in ck.iterdir()) == sorted(f"{c}.pt" for c in CELLS)  # no .train.pt, no temp files
    assert not list(run_dir.rglob("*.tmp"))


@pytest.fixture(scope="module")
def reference(suite_file, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("ref") / "run"
    finish(start(suite_file, run_dir))
    return run_dir


def test_same_seed_same_metrics(suite_file, reference, tmp_path):
    """Determinism: a second uninterrupted run equals the first, value for value."""
    finish(start(suite_file, tmp_path / "run"))
    assert_same(reference, tmp_path / "run")
    assert_clean(reference)
    assert len(pd.read_csv(reference / "cells" / "none-s0" / "train_log.csv")) == STEPS


def test_killed_three_times_resumes_exactly(suite_file, reference, tmp_path):
    """SIGKILL mid-training, then during the second cell's rollout (the first cell done, the second's
    training finished); each rerun continues where the last left off, and the end result equals
    the uninterrupted run value for value."""
    run_dir = tmp_path / "run"
    kill_when(start(suite_file, run_dir), run_dir / "checkpoints" / "none-s0.train.pt")
    assert not (run_dir / "cells" / "none-s0" / "metrics.csv").exists()

    rerun = start(suite_file, run_dir)
    kill_when(rerun, run_dir / "checkpoints" / "full_attn-s0.pt")
    (cell, step, total), *_ = RESUMED.findall(rerun.stderr.read())
    assert cell == "none-s0" and 0 < int(step) < int(total) == STEPS, step

    for half in ["checkpoints/.full_attn-s0.train.pt.x.tmp", "cells/full_attn-s0/.metrics.csv.y.tmp"]:
        (run_dir / half).parent.mkdir(parents=True, exist_ok=True)
        (run_dir / half).write_bytes(b"as a kill mid-write leaves them")
    err = finish(start(suite_file, run_dir))
    assert "running cell none-s0" not in err  # a finished cell is never recomputed
    assert ("full_attn-s0", str(STEPS), str(STEPS)) in RESUMED.findall(err) or not (
        run_dir / "checkpoints" / "full_attn-s0.train.pt"
    ).exists(), err  # killed after training: resumed at the end, no step repeated
    assert_same(reference, run_dir)
    assert_clean(run_dir)


def test_two_processes_share_a_run_folder(suite_file, reference, tmp_path):
    run_dir = tmp_path / "run"
    a, b = start(suite_file, run_dir), start(suite_file, run_dir)
    errs = [finish(a), finish(b)]
    ran = [re.findall(r"running cell (\S+)", e) for e in errs]
    refs = ["copy_last-s0", "recall_oracle-s0"]  # reference rows: scored, never trained
    assert sorted(ran[0] + ran[1]) == sorted(CELLS + refs), ran  # every cell computed exactly once
    assert_same(reference, run_dir)
    assert_clean(run_dir)


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_checkpoint_is_a_clear_error(suite_file, reference, tmp_path, damage):
    """A damaged training checkpoint stops the run with the file and the fix named; never a silent retrain."""
    run_dir = tmp_path / "run"
    bad = run_dir / "checkpoints" / "none-s0.train.pt"
    bad.parent.mkdir(parents=True)
    good = (reference / "checkpoints" / "none-s0.pt").read_bytes()  # a real torch.save file, cut short
    bad.write_bytes(good[: len(good) // 2] if damage == "truncated" else b"not a checkpoint")
    suite = load_suite(suite_file, ["train.steps=2"])
    (run_dir / "suite.resolved.yaml").write_text(resolved_yaml(suite, limited=False))  # a run folder
    with pytest.raises(CheckpointError, match=rf"{re.escape(str(bad))}: .* delete it to restart cell none-s0"):
        run_suite(suite, run_dir=run_dir, progress=False, argv=["test"])
    if damage == "truncated":
        bad.unlink()  # the documented fix
        run_suite(suite, run_dir=run_dir, progress=False, argv=["test"])
        assert (run_dir / "metrics.csv").is_file() and not bad.exists()


def test_final_checkpoint_loads_weights_only(reference):
    ck = torch.load(reference / "checkpoints" / "full_attn-s0.pt", weights_only=True)
    assert "model" in ck


def test_ema_warmup():
    """Decay min(ema, (1 + step) / (10 + step)): 0.1 at step 0, the configured value later."""
    from rad_bench.train import EMA

    m = torch.nn.Linear(2, 2)
    w0 = m.weight.detach().clone()
    ema = EMA(m, 0.999)
    with torch.no_grad():
        m.weight.add_(1.0)
    ema.update(m, 0)
    torch.testing.assert_close(ema.shadow["weight"], 0.1 * w0 + 0.9 * (w0 + 1))
    ema.update(m, 10**6)
    torch.testing.assert_close(ema.shadow["weight"], 0.999 * (0.1 * w0 + 0.9 * (w0 + 1)) + 0.001 * (w0 + 1))


def _cut_mid_row(path: Path) -> None:
    text = path.read_text()
    path.write_text(text[: len(text) // 2])


def _edit_one_value(path: Path) -> None:
    lines = path.read_text().splitlines(keepends=True)
    lines[1] = re.sub(r"\d(?=[^\d]*$)", lambda m: str((int(m.group()) + 1) % 10), lines[1], count=1)
    path.write_text("".join(lines))


@pytest.mark.parametrize(
    "damage", ["cut mid-row", "one value edited", "samples deleted", "cut, no record (older run folder)"]
)
def test_damaged_finished_cell_is_set_aside_and_run_again(suite_file, reference, tmp_path, damage):
    """A finished cell whose files no longer match its completion record (or, in a folder written before
    records existed, whose metrics.csv is cut short) is moved to damaged/ and computed again; the combined
    CSV then equals the uninterrupted run's. A deleted checkpoint alone damages nothing."""
    import shutil

    run_dir = tmp_path / "run"
    shutil.copytree(reference, run_dir)
    cell = run_dir / "cells" / "none-s0"
    if damage == "samples deleted":
        (run_dir / "samples" / "none-s0.npz").unlink()
    elif damage == "one value edited":
        _edit_one_value(cell / "metrics.csv")
    else:
        _cut_mid_row(cell / "metrics.csv")
    if damage.endswith("(older run folder)"):
        (cell / "done.json").unlink()
    (run_dir / "checkpoints" / "full_attn-s0.pt").unlink()  # deleted to save disk: full_attn stays done
    err = finish(start(suite_file, run_dir))
    assert "cell none-s0 is damaged" in err and "running cell none-s0" in err, err
    assert "running cell full_attn-s0" not in err, err
    assert len(list((run_dir / "damaged").glob("none-s0-*/cells/none-s0/metrics.csv"))) == 1  # kept, not deleted
    assert_same(reference, run_dir)
    assert (cell / "done.json").is_file()


def test_a_run_written_by_an_earlier_version_is_still_resumed(tmp_path):
    """A suite.resolved.yaml written before ``data:`` was typed (the mapping as written, no defaults) and before
    FVD's settings were its own (``rollout.fvd_bucket``/``fvd_batches``) names the same suite: --resume finds
    it; a different suite in that old form does not match."""
    import yaml

    from rad_bench.config import resolved_dict
    from rad_bench.rundir import latest_matching, prepare_run_dir

    suite = load_suite(FIXTURES / "tiny.yaml")
    old = resolved_dict(suite)
    old["data"] = {"name": "synthetic", **suite.data.model_dump(exclude_defaults=True)}  # as written, no defaults
    old["rollout"] |= {"fvd_bucket": None, "fvd_batches": 1}
    old.pop("metric_settings")
    old["limited"] = False
    run = tmp_path / "tiny" / "20250101-000000-abcdef0"
    run.mkdir(parents=True)
    (run / "suite.resolved.yaml").write_text(yaml.safe_dump(old, sort_keys=False))
    text = resolved_yaml(suite, limited=False)
    assert latest_matching(tmp_path / "tiny", text) == run
    assert prepare_run_dir(suite, None, True, False, tmp_path) == run  # resumed, its record now in today's form
    assert (run / "suite.resolved.yaml").read_text() == text
    other = resolved_yaml(load_suite(FIXTURES / "tiny.yaml", ["seeds=[5]"]), limited=False)
    assert latest_matching(tmp_path / "tiny", other) is None
