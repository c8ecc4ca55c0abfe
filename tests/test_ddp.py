"""``rad-bench run`` under ``torchrun`` (DDP, gloo on CPU) against one process.

Each rank draws the global batch from the same generator and trains on its slice, and DDP
averages the gradients, so two processes see exactly the single-process batches; only the
float order of the gradient sum differs. Measured on CPU (2 ranks, 8 steps): training losses
within 1.2e-7, PSNR identical, SSIM within 1e-8. Tolerances below leave ~100x headroom and are
still far below any difference between blocks or seeds:

    loss: rel 1e-5    psnr: 0.01 dB    ssim: 1e-4

OMP_NUM_THREADS=1 pytest tests/test_ddp.py
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from rad_bench import train as train_mod
from rad_bench.config import TrainCfg
from rad_bench.model.diffusion import Diffusion

BASE = Path(__file__).parent / "fixtures" / "suites" / "_tiny_base.yaml"
BIN = Path(sys.executable).parent
CELLS = ["none-s0", "full_attn-s0"]
SUITE = f"""include: {BASE}
name: ddp
blocks: [none, full_attn]
metrics: [psnr, ssim]
leaderboard: {{sort_by: psnr_all}}
train: {{steps: 8, batch_size: 4}}
"""
TOL = {"psnr": 0.01, "ssim": 1e-4}
LOSS_RTOL = 1e-5


def run(cmd: list[str], suite: Path, run_dir: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    sets = [a for o in overrides for a in ("--set", o)]
    args = [*cmd, "run", str(suite), "--run-dir", str(run_dir), "--no-progress", *sets]
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300)


TORCHRUN = [str(BIN / "torchrun"), "--standalone", "--nproc_per_node", "2", "-m", "rad_bench"]


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("suite") / "ddp.yaml"
    path.write_text(SUITE)
    return path


def test_two_ranks_match_one_process(suite_file, tmp_path):
    one = run([sys.executable, "-m", "rad_bench"], suite_file, tmp_path / "one")
    assert one.returncode == 0, one.stderr
    two = run(TORCHRUN, suite_file, tmp_path / "two")
    assert two.returncode == 0, two.stderr
    assert json.loads((tmp_path / "two" / "env.json").read_text())["world_size"] == 2
    assert two.stdout.count("results:") == 1  # rank 0 alone reports
    for cell in CELLS:
        a, b = (pd.read_csv(tmp_path / d / "cells" / cell / "train_log.csv") for d in ("one", "two"))
        np.testing.assert_allclose(b["loss"], a["loss"], rtol=LOSS_RTOL, err_msg=cell)
    a, b = (pd.read_csv(tmp_path / d / "metrics.csv") for d in ("one", "two"))
    keys = ["block", "seed", "clip", "frame", "tag", "metric"]
    assert a[keys].equals(b[keys])
    for metric, tol in TOL.items():
        m = a["metric"] == metric
        np.testing.assert_allclose(b["value"][m], a["value"][m], rtol=0, atol=tol, err_msg=metric)


def test_batch_must_split_evenly(suite_file, tmp_path):
    out = run(TORCHRUN, suite_file, tmp_path / "odd", "train.batch_size=3", "train.steps=1")
    assert out.returncode != 0
    assert "train.batch_size (3) must be a multiple of the 2 torchrun processes" in out.stderr


def test_rank_slices_tile_the_global_batch(monkeypatch):
    """Every rank's slice, concatenated in rank order, is exactly the one-process batch."""

    class Data:
        def sample(self, b, t, g):
            return torch.randn(b, t, 3, 4, 4, generator=g), torch.randn(b, t, 5, generator=g)

    cfg, diffusion = TrainCfg(batch_size=4, clip_len=3), Diffusion(10)
    full = train_mod._batch(Data(), diffusion, cfg, torch.Generator().manual_seed(0), "cpu")
    monkeypatch.setattr(train_mod, "world_size", lambda: 2)
    parts = []
    for r in (0, 1):
        monkeypatch.setattr(train_mod, "rank", lambda r=r: r)
        parts.append(train_mod._batch(Data(), diffusion, cfg, torch.Generator().manual_seed(0), "cpu"))
    for i, x in enumerate(full):
        assert parts[0][i].shape[0] == 2
        torch.testing.assert_close(torch.cat([parts[0][i], parts[1][i]]), x, rtol=0, atol=0)
