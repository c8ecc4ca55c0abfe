"""What the Memory Maze diagnostics share besides :func:`rad_bench.reuse.load_cell` (a finished cell, ready to
roll out): PSNR of frames in [-1, 1] averaged over every leading index. Imported by denoise.py and
sampling_steps.py (run as scripts from any folder: Python puts this folder on the path)."""

from __future__ import annotations

import torch


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over every leading index (clips, frames) of the PSNR of ``(..., c, H, W)`` frames in [-1, 1]."""
    mse = ((x.clamp(-1, 1) - y) ** 2 / 4).flatten(-3).mean(-1)
    return float((-10 * mse.log10()).mean())
