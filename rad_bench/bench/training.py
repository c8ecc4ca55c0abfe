"""Sections 3 and 4, ``train`` and ``modes``: training throughput and FLOPs per block, and the cost of
one training batch of the recurrent blocks trained chunk-wise, frame-wise (state prefetch, with and
without its gradient) and by the naive window-after-window loop that defines frame-wise training."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from rad_bench.bench.common import Bench, is_cuda, log, randn, time_best, timed
from rad_bench.build import make_model
from rad_bench.config import BlockSpec, TrainCfg
from rad_bench.model.dit import VideoDiT, count_params
from rad_bench.modes import frame_loss_naive, sample_train_levels, training_loss
from rad_bench.train import train
from rad_bench.utils import seed_everything

MODE_BLOCKS = ("lstm_attn", "mamba2", "ttt")  # the recurrent memories RAD's comparison is about


def matmul_peak(device: str, n: int, reps: int) -> float:
    """Measured float32 FLOP/s of an ``n x n`` matmul: the machine's practical peak."""
    g = torch.Generator().manual_seed(0)
    x, y = randn(g, device, n, n), randn(g, device, n, n)
    return 2 * n**3 / time_best(lambda: x @ y, device, max(reps, 3))


def train_batch(b: Bench, cfg: TrainCfg, batch: int, clip_len: int) -> tuple[Tensor, ...]:
    """One training batch ``(frames, actions, levels, noise)`` on the device, drawn as ``train()`` does."""
    g = torch.Generator().manual_seed(0)
    frames, actions = b.data.sample(batch, clip_len, g)
    k = sample_train_levels(b.diffusion, frames.shape[:2], cfg, g)
    eps = torch.randn(frames.shape, generator=g)
    return tuple(t.to(b.device) for t in (frames, actions, k, eps))


def train_flops(b: Bench, model: VideoDiT, batch: int, clip_len: int) -> int:
    """FLOPs of one training step's forward + backward (the optimizer step is not counted), counted in
    training mode whatever mode ``model`` is in (``train`` leaves it in eval mode, and cuDNN's LSTM has
    no backward for an eval-mode forward: the first H100 run crashed here), then restored."""
    frames, actions, k, eps = train_batch(b, b.suite.train, batch, clip_len)
    counter, was_training = FlopCounterMode(display=False), model.training
    model.train()
    try:
        with counter:
            loss = training_loss(model, b.diffusion, frames, actions, k, eps, b.suite.train)
            loss.backward()
    finally:
        model.train(was_training)
        model.zero_grad(set_to_none=True)
    return counter.get_total_flops()


def train_row(b: Bench, spec: BlockSpec, peak: float) -> dict[str, Any]:
    seed_everything(0)
    model = make_model(b.suite, spec, b.data, b.device)
    cfg = b.suite.train.model_copy(update={"batch_size": b.sizes.train_batch or b.suite.train.batch_size})
    run = lambda steps: train(  # noqa: E731
        model, b.diffusion, b.data, cfg.model_copy(update={"steps": steps}), seed=0, device=b.device, progress=False
    )
    run(b.sizes.train_warmup)
    flops = train_flops(b, model, cfg.batch_size, cfg.clip_len)
    step_s = run(b.sizes.train_steps).step_s
    row = b.row(block=spec.display, params_total=count_params(model), batch=cfg.batch_size, clip_len=cfg.clip_len)
    row.update(steps_timed=b.sizes.train_steps, s_per_step=step_s, steps_per_s=1 / step_s)
    row.update(frames_per_s=cfg.batch_size * cfg.clip_len / step_s, flops_per_step=flops)
    row.update(achieved_flops_per_s=flops / step_s, matmul_peak_flops_per_s=peak, matmul_n=b.sizes.matmul_n)
    row.update(fraction_of_peak=flops / step_s / peak)
    log(f"train {spec.display:12s} {row['steps_per_s']:.2f} steps/s, {flops / 1e9:.2f} GFLOP/step")
    return row


def bench_train(b: Bench) -> list[dict[str, Any]]:
    peak = matmul_peak(b.device, b.sizes.matmul_n, b.sizes.reps)
    log(f"float32 matmul {b.sizes.matmul_n}^2: {peak / 1e9:.1f} GFLOP/s")
    if any(s.name == "mamba2" for s in b.suite.blocks) and is_cuda(b.device):
        b.notes.append("FlopCounterMode does not see Triton kernels: mamba2 FLOPs on CUDA omit the SSD kernel.")
    return [train_row(b, spec, peak) for spec in b.suite.blocks]


def mode_rows(b: Bench, spec: BlockSpec) -> list[dict[str, Any]]:
    """Forward + backward time of one training batch per way of training ``spec``: ``chunk``, ``frame``
    (prefetch, with and without its gradient) and the naive window-after-window loop it replaces."""
    batch, length = b.sizes.train_batch or b.suite.train.batch_size, b.sizes.modes_len
    ways = {
        "chunk": {"mode": "chunk"},
        "frame": {"mode": "frame"},
        "frame (prefetch detached)": {"mode": "frame", "prefetch_grad": False},
        "naive window loop": {"mode": "frame"},
    }
    rows = []
    for way, update in ways.items():
        cfg = b.suite.train.model_copy(update=update)
        seed_everything(0)
        model = make_model(b.suite.model_copy(update={"train": cfg}), spec, b.data, b.device)
        frames, actions, k, eps = train_batch(b, cfg, batch, length)
        if way == "naive window loop":
            loss_fn = lambda: frame_loss_naive(model, b.diffusion, frames, actions, k, eps)  # noqa: E731
        else:
            loss_fn = lambda: training_loss(model, b.diffusion, frames, actions, k, eps, cfg)  # noqa: E731

        def step() -> None:
            loss_fn().backward()
            model.zero_grad(set_to_none=True)

        t = timed(step, b.device, b.sizes.reps)
        rows.append(
            b.row(
                block=spec.display,
                way=way,
                batch=batch,
                clip_len=length,
                s_per_step=t.median,
                s_per_step_lo=t.lo,
                s_per_step_hi=t.hi,
                reps=len(t.runs),
            )
        )
        log(f"modes {spec.display:10s} {way:26s} {t.median * 1e3:8.1f} ms/step")
    return rows


def bench_modes(b: Bench) -> list[dict[str, Any]]:
    return [r for spec in b.suite.blocks if spec.name in MODE_BLOCKS for r in mode_rows(b, spec)]
