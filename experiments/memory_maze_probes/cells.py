"""What the Memory Maze diagnostics share: a trained cell of a run folder, ready to roll out on the
validation episodes, and PSNR of frames in [-1, 1]. Imported by denoise.py, attention.py and
sampling_steps.py (run as scripts from any folder: Python puts this folder on the path)."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from rad_bench.build import make_model
from rad_bench.config import BlockSpec, Suite, data_config, validate
from rad_bench.data import EvalSet
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import VideoDiT
from rad_bench.registry import DATASETS


def load_cell(run: Path, cell: str) -> tuple[Suite, VideoDiT, Diffusion, EvalSet]:
    """The run's suite, the cell's trained model (eval mode, CPU), its diffusion and the validation episodes."""
    raw = yaml.safe_load((run / "suite.resolved.yaml").read_text())
    raw.pop("limited", None)  # the run folder records whether steps were capped; not a suite key
    suite = validate(raw)
    ck = torch.load(run / "checkpoints" / f"{cell}.pt", map_location="cpu", weights_only=True)
    data = DATASETS.get(suite.data["name"])(data_config(suite), seed=0)
    model = make_model(suite, BlockSpec(**ck["block"]), data, "cpu")
    model.load_state_dict(ck["model"])
    r = suite.rollout
    ev = data.eval_set(r.clips, r.context, r.horizon, "validation")
    return suite, model.eval(), Diffusion(suite.diffusion.levels, suite.diffusion.prediction), ev


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over every leading index (clips, frames) of the PSNR of ``(..., c, H, W)`` frames in [-1, 1]."""
    mse = ((x.clamp(-1, 1) - y) ** 2 / 4).flatten(-3).mean(-1)
    return float((-10 * mse.log10()).mean())
