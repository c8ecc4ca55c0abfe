"""Section 1, ``rollout``: per-frame cost, state bytes and peak memory of every block's rollout at 1x,
4x and 16x the attention window (untrained smoke_all models), fp32 and, on CUDA, bf16 autocast."""

from __future__ import annotations

import time
from typing import Any

import torch

from rad_bench.bench.common import BF16, FP32, Bench, Timing, autocast, is_cuda, log, sync, timed
from rad_bench.build import make_model
from rad_bench.config import BlockSpec
from rad_bench.data import EvalSet
from rad_bench.model.dit import VideoDiT
from rad_bench.registry import BLOCKS
from rad_bench.rollout import EVAL_NOISE_SEED, RolloutStats, rollout
from rad_bench.utils import peak_kind, peak_memory, seed_everything


@torch.no_grad()
def context_cost(b: Bench, model: VideoDiT, ev: EvalSet, dtype: str) -> tuple[float, int]:
    """Seconds of the parallel context pass (subtracted from rollout times) and the KV cache
    bytes after it; the context is longer than the window, so the KV cache is full and stays
    that size for the whole rollout."""
    c = b.suite.rollout.context
    if c < model.cfg.window - 1:
        raise ValueError(f"rollout.context ({c}) must fill the KV window ({model.cfg.window - 1} frames)")
    frames, actions = ev.frames[:, :c].to(b.device), ev.actions[:, :c].to(b.device)
    levels = torch.zeros(frames.shape[:2], dtype=torch.long, device=b.device)
    last = []

    def call() -> None:
        with autocast(b.device, dtype):
            last[:] = [model(frames, levels, actions)[1]]

    sec = timed(call, b.device, b.sizes.reps).median
    return sec, last[0].nbytes()[0]


def timed_rollout(b: Bench, model: VideoDiT, ev: EvalSet, dtype: str, horizon: int) -> tuple[float, RolloutStats, int]:
    """(seconds, stats, peak memory bytes) of one rollout of ``horizon`` frames."""
    r = b.suite.rollout
    steps = b.sizes.sampling_steps or r.sampling_steps
    g = torch.Generator().manual_seed(EVAL_NOISE_SEED)
    with peak_memory(b.device) as peak, autocast(b.device, dtype):
        sync(b.device)
        t = time.perf_counter()
        _, stats = rollout(
            model,
            b.diffusion,
            ev.frames,
            ev.actions,
            context=r.context,
            horizon=horizon,
            sampling_steps=steps,
            g=g,
            progress=False,
        )
        sync(b.device)
        sec = time.perf_counter() - t
    return sec, stats, peak[0]


def rollout_rows(b: Bench, spec: BlockSpec, dtype: str) -> list[dict[str, Any]]:
    """Rows for one block: per-frame time, state and peak memory at each rollout length."""
    seed_everything(0)
    model = make_model(b.suite, spec, b.data, b.device).eval()
    window, r = model.cfg.window, b.suite.rollout
    horizons = [m * window for m in b.sizes.lengths]
    ev = b.data.eval_set(b.sizes.clips or r.batch_size, r.context, max(horizons))
    timed_rollout(b, model, ev, dtype, window)  # warm-up
    ctx_s, kv_bytes = context_cost(b, model, ev, dtype)
    rows = []
    for mult, horizon in zip(b.sizes.lengths, horizons):
        runs = [timed_rollout(b, model, ev, dtype, horizon) for _ in range(b.sizes.reps)]
        stats = runs[0][1]
        frame = Timing(tuple(x[0] for x in runs)).minus(ctx_s).scaled(1 / horizon)  # seconds per frame
        per_frame = frame.median
        total = stats.state_bytes[-1]
        row = b.row(block=spec.display, state_growth=BLOCKS.get(spec.name).state_growth, dtype=dtype)
        row.update(impl=model.layers[0].memory.impl, length_x_window=mult, frames=horizon, window=window)
        row.update(
            batch=ev.frames.shape[0], context=r.context, sampling_steps=b.sizes.sampling_steps or r.sampling_steps
        )
        row.update(ms_per_frame=1e3 * per_frame, ms_per_frame_lo=1e3 * frame.lo, ms_per_frame_hi=1e3 * frame.hi)
        row.update(frames_per_s=ev.frames.shape[0] / per_frame, reps=len(runs))
        row.update(state_bytes=total, state_bytes_kv=kv_bytes, state_bytes_mem=total - kv_bytes)
        row.update(peak_mem_bytes=max(x[2] for x in runs), peak_mem_kind=peak_kind(b.device))
        rows.append(row)
        log(f"rollout {spec.display:12s} {dtype} {mult:2d}x window: {row['ms_per_frame']:.2f} ms/frame")
    return rows


def bench_rollout(b: Bench) -> list[dict[str, Any]]:
    dtypes = [FP32, BF16] if is_cuda(b.device) else [FP32]
    return [row for dtype in dtypes for spec in b.suite.blocks for row in rollout_rows(b, spec, dtype)]
