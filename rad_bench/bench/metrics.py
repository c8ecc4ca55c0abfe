"""Section 5, ``metrics``: frames per second of PSNR, SSIM, LPIPS and I3D features (a metric whose
weight package is missing is skipped with a note)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from rad_bench.bench.common import Bench, log, timed


def weights_available(check: Callable[[], str], metric: str, b: Bench) -> bool:
    """Whether a metric's weight package is installed (its sha256 check passes); notes it if not."""
    try:
        check()
    except RuntimeError as e:
        b.notes.append(f"{metric} skipped: {e}")
        log(f"{metric} skipped: weights missing")
        return False
    return True


def metric_row(b: Bench, metric: str, fn: Callable[[], Any], frames: int, size: int, model_size: int) -> dict[str, Any]:
    sec = timed(fn, b.device, b.sizes.reps).median
    row = b.row(metric=metric, frames=frames, frame_size=size, model_input_size=model_size, seconds=sec)
    row["frames_per_s"] = frames / sec
    log(f"metric {metric:6s} {row['frames_per_s']:.1f} frames/s")
    return row


def bench_metrics(b: Bench, clip_len: int = 16) -> list[dict[str, Any]]:
    from rad_bench.metrics import i3d
    from rad_bench.metrics import lpips as lpips_weights
    from rad_bench.metrics.frame import LPIPS_MIN_SIZE, lpips, psnr, ssim

    n, size = b.sizes.metric_frames, b.data.frame_size
    g = torch.Generator().manual_seed(0)
    x, y = (torch.rand(n, 3, size, size, generator=g).mul(2).sub(1).to(b.device) for _ in "xy")
    rows = [metric_row(b, "psnr", lambda: psnr(x, y), n, size, size)]
    rows.append(metric_row(b, "ssim", lambda: ssim(x, y), n, size, size))
    if weights_available(lpips_weights.weights_sha256, "lpips", b):
        rows.append(metric_row(b, "lpips", lambda: lpips(x, y), n, size, max(size, LPIPS_MIN_SIZE)))
    if weights_available(i3d.weights_sha256, "i3d", b):
        clips = torch.rand(b.sizes.i3d_clips, clip_len, 3, size, size, generator=g).mul(2).sub(1).to(b.device)
        rows.append(metric_row(b, "i3d", lambda: i3d.i3d_features(clips), clips.shape[0] * clip_len, size, i3d.SIZE))
    return rows
