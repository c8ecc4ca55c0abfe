"""Section 6, ``gpu`` (CUDA only; on CPU a note and no rows): the rows that matter on a GPU.

- ``kind = train``: training steps/s per block at the ``tiny`` and ``dit_s`` presets (``--quick``:
  ``dit_s`` only; compiling each block's step takes about 30 s on an H100) through
  :func:`rad_bench.train.train` with the suite's ``auto`` fast path (torch.compile, bf16 autocast,
  fused AdamW, batches drawn ahead); the first call, which compiles, is the untimed warm-up.
- ``kind = mfu``: the same rows' model FLOPs utilisation, FLOPs per step (``FlopCounterMode``, forward
  + backward) / step time / the bf16 matmul peak measured in the same run (``kind = peak``).
- ``kind = ssd``: the ``mamba_ssm`` SSD kernel against the chunked reference on the same inputs, the
  largest relative error of the outputs and of the final state, in float32 and bf16.

No row is written on a machine without CUDA; ``summary.md`` then says so.
"""

from __future__ import annotations

from typing import Any

import torch

from rad_bench.bench.common import QUICK, Bench, is_cuda, log, randn, time_best
from rad_bench.bench.training import train_flops
from rad_bench.build import make_model
from rad_bench.model.dit import count_params
from rad_bench.train import FastPath, train
from rad_bench.utils import seed_everything

GPU_PRESETS = ("tiny", "dit_s")
QUICK_PRESETS = ("dit_s",)  # the preset the MFU target is set at
SKIPPED = "GPU rows (steps/s at tiny and dit_s, bf16 MFU, SSD kernel vs reference) need CUDA: not measured here."


def bf16_peak(device: str, n: int = 8192, reps: int = 5) -> float:
    """Measured bf16 FLOP/s of an ``n x n`` matmul: the practical peak MFU is measured against."""
    g = torch.Generator().manual_seed(0)
    x, y = (randn(g, device, n, n).to(torch.bfloat16) for _ in "xy")
    return 2 * n**3 / time_best(lambda: x @ y, device, reps)


def _relerr(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.float() - b.float()).norm() / b.float().norm().clamp_min(1e-12)).item()


def train_rows(b: Bench, preset: str, peak: float, steps: int = 20) -> list[dict[str, Any]]:
    """Steps/s and bf16 MFU of every block at ``preset`` with the fast path ``auto`` resolves here."""
    suite = b.suite.model_copy(update={"model": b.suite.model.model_copy(update={"preset": preset})})
    rows = []
    for spec in suite.blocks:
        seed_everything(0)
        model = make_model(suite, spec, b.data, b.device)
        run = lambda n: train(
            model,
            b.diffusion,
            b.data,
            suite.train.model_copy(update={"steps": n}),  # noqa: E731
            seed=0,
            device=b.device,
            progress=False,
        )
        run(3)  # compiles
        step_s = run(steps).step_s
        flops = train_flops(b, model, suite.train.batch_size, suite.train.clip_len)
        fast = FastPath.of(suite.train, b.device).record()
        common = b.row(block=spec.display, preset=preset, params_total=count_params(model), **fast)
        rows.append({**common, "kind": "train", "value": 1 / step_s, "unit": "steps/s"})
        rows.append({**common, "kind": "mfu", "value": flops / step_s / peak, "unit": "fraction of bf16 peak"})
        log(f"gpu train {preset:6s} {spec.display:12s} {1 / step_s:8.1f} steps/s  MFU {flops / step_s / peak:.1%}")
    return rows


def ssd_rows(b: Bench) -> list[dict[str, Any]]:
    """The SSD kernel vs the chunked reference (relative error of outputs and final state)."""
    from rad_bench.bench.scans import ssd_inputs
    from rad_bench.ops.ssd import ssd, ssd_chunked, ssd_impl

    if ssd_impl(torch.device(b.device), "auto") != "kernel":
        b.notes.append("SSD kernel vs reference not measured: mamba_ssm does not import here (or RAD_BENCH_IMPL=ref).")
        return []
    (x, dt, A, bm, cm), chunk, config = ssd_inputs(b, b.sizes.ssd_len)
    rows = []
    for dtype in (torch.float32, torch.bfloat16):
        cast = [t.to(dtype) for t in (x, dt, A, bm, cm)]
        y_ref, s_ref = ssd_chunked(*(t.float() for t in cast), chunk)
        y, s = ssd(*cast, chunk, requested="kernel")
        for what, err in (("output", _relerr(y, y_ref)), ("final_state", _relerr(s, s_ref))):
            rows.append(
                b.row(
                    kind="ssd",
                    block="mamba2",
                    preset=config,
                    dtype=str(dtype).removeprefix("torch."),
                    what=what,
                    value=err,
                    unit="relative error vs chunked",
                )
            )
    return rows


def bench_gpu(b: Bench) -> list[dict[str, Any]]:
    if not is_cuda(b.device):
        b.notes.append(SKIPPED)
        return []
    peak = bf16_peak(b.device)
    log(f"bf16 matmul 8192^2: {peak / 1e12:.1f} TFLOP/s")
    rows = [b.row(kind="peak", block="", value=peak, unit="bf16 FLOP/s (8192^2 matmul)")]
    for preset in QUICK_PRESETS if b.sizes == QUICK else GPU_PRESETS:
        rows += train_rows(b, preset, peak)
    return rows + ssd_rows(b)
