"""Efficiency benchmark: rollout cost vs length, scans, training throughput, metric throughput.

    python -m rad_bench.bench [--quick] [--out results/bench] [--device auto|cpu|cuda]

Every number comes from one run on one machine, so ratios never mix devices. Every CSV row has a
``device`` column and every file name but ``env.json`` and ``summary.md`` states the device
(``<section>-<device>.csv``): use a separate ``--out`` per machine. Sections:

1. ``rollout``: each registered block in the ``smoke_all`` model (untrained), rolled out with
   :func:`rad_bench.rollout.rollout` for 1x, 4x and 16x the attention window after a fixed context.
   ``ms_per_frame`` is the time of one rollout step (one new frame for each of the ``batch`` clips:
   ``sampling_steps`` denoising calls + one commit), the context pass subtracted; state bytes are
   :meth:`DiTState.nbytes` after the last frame. Peak memory is ``torch.cuda.max_memory_allocated``
   on CUDA; on CPU it is the growth of the process-wide peak RSS (0 = no new process peak).
2. ``scans``: Mamba2 chunked SSD vs its sequential recurrence, TTT dual vs primal form,
   ``LSTMCell.scan`` vs ``torch.nn.LSTM``, forward (no grad) and forward+backward, at the widths
   of the ``smoke_all`` model; on CUDA also the ``mamba_ssm`` kernel when it imports.
3. ``train``: steps/s and frames/s of :func:`rad_bench.train.train` per block, FLOPs per step
   (forward + backward, ``FlopCounterMode``: matmuls, convs and attention only) and their rate
   as a fraction of a measured float32 matmul rate.
4. ``modes``: forward + backward time of one training batch of ``modes_len`` (32) frames for the
   recurrent blocks, trained ``chunk``-wise, ``frame``-wise with the state prefetch (with and
   without gradient through it) and by the naive window-after-window loop that defines it.
5. ``metrics``: frames/s of PSNR, SSIM, LPIPS and I3D features (skipped with a note when the
   weight packages are missing).

On CUDA the rollout is also timed under bf16 autocast (rows with ``dtype = bf16-autocast``).
Outputs under ``--out``: ``{rollout,scans,train,modes,metrics}-<device>.csv``, ``env.json``,
``summary.md`` (ratios with targets, PASS/MISS) and ``rollout_ms_per_frame-<device>.png``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import inspect
import io
import math
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.utils.flop_counter import FlopCounterMode

from rad_bench.config import BlockSpec, Suite, TrainCfg, load_suite
from rad_bench.data import Dataset, EvalSet
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import VideoDiT, count_params
from rad_bench.modes import frame_loss_naive, sample_train_levels, training_loss
from rad_bench.ops import set_suite_impl
from rad_bench.registry import BLOCKS, list_blocks
from rad_bench.rollout import RolloutStats, rollout
from rad_bench.runner import EVAL_NOISE_SEED, make_dataset, make_model, model_config
from rad_bench.train import train
from rad_bench.utils import (
    atomic_write_bytes,
    atomic_write_text,
    env_info,
    peak_kind,
    peak_memory,
    resolve_device,
    seed_everything,
    write_json,
)

SUITE = Path(__file__).resolve().parent.parent / "suites" / "smoke_all.yaml"
SECTIONS = ("rollout", "scans", "train", "modes", "metrics")
FP32, BF16 = "float32", "bf16-autocast"
ROLLOUT_TARGET = 1.15  # max per-frame time ratio 16x / 1x window for constant-state blocks
FRAME_VS_CHUNK_TARGET = 1.5  # max training-step time ratio, frame-wise (prefetch) / chunk-wise
NAIVE_VS_FRAME_TARGET = 3.0  # min training-step time ratio, naive window loop / frame-wise (prefetch)
MODE_BLOCKS = ("lstm_attn", "mamba2", "ttt")  # the recurrent memories RAD's comparison is about
# (op, fast impl, baseline impl, min speedup of fast over baseline or None)
SCAN_PAIRS: tuple[tuple[str, str, str, float | None], ...] = (
    ("ssd", "chunked", "sequential", 5.0),
    ("ssd", "kernel", "chunked", None),
    ("ttt", "dual", "primal", 3.0),
    ("lstm", "LSTMCell.scan", "torch.nn.LSTM", 1.0),
)


@dataclass(frozen=True)
class Sizes:
    """How much work each section does; ``None`` means "the suite's value"."""

    clips: int | None  # rollout batch
    sampling_steps: int | None
    reps: int  # timed repetitions after one warm-up; the best is kept
    ssd_len: int
    ttt_len: int
    lstm_len: int
    scan_rows: int  # independent sequences (the b*n rows of a block)
    lstm_rows: int
    train_batch: int | None
    train_warmup: int
    train_steps: int
    matmul_n: int
    metric_frames: int
    i3d_clips: int
    modes_len: int = 32  # clip length of the training-mode comparison
    lengths: tuple[int, ...] = (1, 4, 16)  # rollout lengths in windows
    episodes: int = 16  # training worlds to generate (only sampled from here)


# full: about 2 min on 2 CPU cores (measured: 122 s at one thread); quick: ~15 s, a smoke test of every path
FULL = Sizes(
    clips=None, sampling_steps=None, reps=2, ssd_len=1024, ttt_len=1024, lstm_len=256, scan_rows=16, lstm_rows=256,
    train_batch=None, train_warmup=2, train_steps=5, matmul_n=2048, metric_frames=256, i3d_clips=4,
)  # fmt: skip
QUICK = Sizes(
    clips=1, sampling_steps=1, reps=1, ssd_len=256, ttt_len=64, lstm_len=64, scan_rows=16, lstm_rows=64,
    train_batch=4, train_warmup=1, train_steps=2, matmul_n=512, metric_frames=32, i3d_clips=1, modes_len=8,
)  # fmt: skip


@dataclass
class Bench:
    """What every section needs: the device, the sizes, the suite and its data."""

    device: str
    sizes: Sizes
    suite: Suite
    data: Dataset
    diffusion: Diffusion
    name: str  # device model name
    notes: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        """``cpu`` or ``cuda``: the device in file names and the ``device`` column."""
        return torch.device(self.device).type

    def row(self, **values: Any) -> dict[str, Any]:
        return {"device": self.tag, "device_name": self.name, **values}


# --------------------------------------------------------------------------------------------
#                                   Timing and memory helpers
# --------------------------------------------------------------------------------------------

_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def sync(device: str) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


def time_best(fn: Callable[[], Any], device: str, reps: int) -> float:
    """Seconds of the fastest of ``reps`` calls of ``fn``, after one untimed warm-up call."""
    fn()
    best = math.inf
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def device_name(device: str) -> str:
    if is_cuda(device):
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def autocast(device: str, dtype: str) -> contextlib.AbstractContextManager:
    if dtype == FP32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


# --------------------------------------------------------------------------------------------
#                                   1. Rollout cost vs length
# --------------------------------------------------------------------------------------------


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

    sec = time_best(call, b.device, b.sizes.reps)
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
        sec, stats, _ = min(runs, key=lambda x: x[0])
        per_frame = max(sec - ctx_s, 1e-9) / horizon
        total = stats.state_bytes[-1]
        row = b.row(block=spec.display, state_growth=BLOCKS.get(spec.name).state_growth, dtype=dtype)
        row.update(impl=model.layers[0].memory.impl, length_x_window=mult, frames=horizon, window=window)
        row.update(
            batch=ev.frames.shape[0], context=r.context, sampling_steps=b.sizes.sampling_steps or r.sampling_steps
        )
        row.update(ms_per_frame=1e3 * per_frame, frames_per_s=ev.frames.shape[0] / per_frame)
        row.update(state_bytes=total, state_bytes_kv=kv_bytes, state_bytes_mem=total - kv_bytes)
        row.update(peak_mem_bytes=max(x[2] for x in runs), peak_mem_kind=peak_kind(b.device))
        rows.append(row)
        log(f"rollout {spec.display:12s} {dtype} {mult:2d}x window: {row['ms_per_frame']:.2f} ms/frame")
    return rows


def bench_rollout(b: Bench) -> list[dict[str, Any]]:
    dtypes = [FP32, BF16] if is_cuda(b.device) else [FP32]
    return [row for dtype in dtypes for spec in b.suite.blocks for row in rollout_rows(b, spec, dtype)]


# --------------------------------------------------------------------------------------------
#                                   2. Scans
# --------------------------------------------------------------------------------------------


def time_op(b: Bench, fn: Callable[..., Tensor], inputs: tuple[Tensor, ...], mode: str) -> float:
    """Seconds of ``fn(*inputs)``: ``fwd`` without grad, ``fwd+bwd`` with ``.sum().backward()``
    and every floating-point input a leaf that requires grad."""
    if mode == "fwd":

        def call() -> None:
            with torch.no_grad():
                fn(*inputs)

    else:
        leaves = tuple(t.detach().requires_grad_() if t.is_floating_point() else t for t in inputs)

        def call() -> None:
            fn(*leaves).sum().backward()

    return time_best(call, b.device, b.sizes.reps)


def scan_rows(
    b: Bench, op: str, impls: dict[str, Callable[..., Tensor]], inputs: tuple[Tensor, ...], length: int, config: str
) -> list[dict[str, Any]]:
    """Forward and forward+backward time of each implementation of one op on the same inputs."""
    rows, n = [], inputs[0].shape[0]
    for mode in ("fwd", "fwd+bwd"):
        for impl, fn in impls.items():
            sec = time_op(b, fn, inputs, mode)
            rows.append(b.row(op=op, impl=impl, mode=mode, length=length, rows=n, config=config, ms=1e3 * sec))
            log(f"scan {op} {impl:14s} {mode:7s} length {length}: {1e3 * sec:.1f} ms")
    return rows


def _randn(g: torch.Generator, device: str, *shape: int) -> Tensor:
    return torch.randn(*shape, generator=g).to(device)


def ssd_inputs(b: Bench, length: int) -> tuple[tuple[Tensor, ...], int, str]:
    """Inputs shaped as in the smoke_all model's Mamba2 block (block defaults), and its chunk size."""
    defaults = {k: p.default for k, p in inspect.signature(BLOCKS.get("mamba2").__init__).parameters.items()}
    cfg = model_config(b.suite, b.data)
    e = defaults["expand"] * cfg.dim
    h, s, rows = cfg.heads, defaults["d_state"], b.sizes.scan_rows
    g = torch.Generator().manual_seed(0)
    x = _randn(g, b.device, rows, length, h, e // h)
    bm, cm = (_randn(g, b.device, rows, length, 1, s) for _ in "BC")  # one group of B, C (ngroups=1)
    dt = F.softplus(_randn(g, b.device, rows, length, h) - 3.0)  # small steps: a long memory
    A = -torch.linspace(1.0, 16.0, h, device=b.device)
    chunk = defaults["chunk_size"]
    return (x, dt, A, bm, cm), chunk, f"heads={h} headdim={e // h} d_state={s} chunk={chunk}"


def bench_ssd(b: Bench) -> list[dict[str, Any]]:
    from rad_bench.ops.ssd import ssd, ssd_chunked, ssd_impl, ssd_ref

    inputs, chunk, config = ssd_inputs(b, b.sizes.ssd_len)
    impls: dict[str, Callable[..., Tensor]] = {
        "sequential": lambda *t: ssd_ref(*t)[0],
        "chunked": lambda *t: ssd_chunked(*t, chunk)[0],
    }
    if is_cuda(b.device) and ssd_impl(torch.device(b.device)) == "kernel":
        impls["kernel"] = lambda *t: ssd(*t, chunk, requested="kernel")[0]
    elif is_cuda(b.device):
        b.notes.append("SSD kernel rows absent: mamba_ssm does not import here (or RAD_BENCH_IMPL=ref).")
    return scan_rows(b, "ssd", impls, inputs, b.sizes.ssd_len, config)


def bench_ttt(b: Bench, mini_batch: int = 16) -> list[dict[str, Any]]:
    from rad_bench.ops.ttt import ttt_dual, ttt_init_state, ttt_primal_ref

    cfg = model_config(b.suite, b.data)
    h, e, rows, length = cfg.heads, cfg.dim // cfg.heads, b.sizes.scan_rows, b.sizes.ttt_len
    g = torch.Generator().manual_seed(0)
    q, k, v = (_randn(g, b.device, rows, h, length, e) for _ in "qkv")
    eta = torch.sigmoid(_randn(g, b.device, rows, h, length)) / e  # the block's eta, base_lr 1
    ln_w, ln_b = torch.ones(h, e, device=b.device), torch.zeros(h, e, device=b.device)
    w0 = {"w1": 0.02 * _randn(g, b.device, rows, h, e, e), "b1": torch.zeros(rows, h, 1, e, device=b.device)}
    state = ttt_init_state(w0)
    impls: dict[str, Callable[..., Tensor]] = {
        name: (lambda *t, f=f: f(*t, ln_w, ln_b, state, mini_batch, "linear")[0])
        for name, f in (("primal", ttt_primal_ref), ("dual", ttt_dual))
    }
    config = f"inner=linear heads={h} head_dim={e} mini_batch={mini_batch}"
    return scan_rows(b, "ttt", impls, (q, k, v, eta), length, config)


def bench_lstm(b: Bench) -> list[dict[str, Any]]:
    from blocks.lstm_attn import LSTMCell

    d = model_config(b.suite, b.data).dim
    rows, length = b.sizes.lstm_rows, b.sizes.lstm_len
    cell, ref = LSTMCell(d, d).to(b.device), torch.nn.LSTM(d, d, batch_first=True).to(b.device)
    h0 = torch.zeros(rows, d, device=b.device)
    x = _randn(torch.Generator().manual_seed(0), b.device, rows, length, d)
    impls: dict[str, Callable[..., Tensor]] = {
        "torch.nn.LSTM": lambda t: ref(t, (h0[None], h0[None]))[0],
        "LSTMCell.scan": lambda t: cell.scan(t, h0, h0)[0],
    }
    return scan_rows(b, "lstm", impls, (x,), length, f"d_in={d} hidden={d}")


def bench_scans(b: Bench) -> list[dict[str, Any]]:
    return bench_ssd(b) + bench_ttt(b) + bench_lstm(b)


# --------------------------------------------------------------------------------------------
#                                   3. Training
# --------------------------------------------------------------------------------------------


def matmul_peak(device: str, n: int, reps: int) -> float:
    """Measured float32 FLOP/s of an ``n x n`` matmul: the machine's practical peak."""
    g = torch.Generator().manual_seed(0)
    x, y = _randn(g, device, n, n), _randn(g, device, n, n)
    return 2 * n**3 / time_best(lambda: x @ y, device, max(reps, 3))


def train_batch(b: Bench, cfg: TrainCfg, batch: int, clip_len: int) -> tuple[Tensor, ...]:
    """One training batch ``(frames, actions, levels, noise)`` on the device, drawn as ``train()`` does."""
    g = torch.Generator().manual_seed(0)
    frames, actions = b.data.sample(batch, clip_len, g)
    k = sample_train_levels(b.diffusion, frames.shape[:2], cfg, g)
    eps = torch.randn(frames.shape, generator=g)
    return tuple(t.to(b.device) for t in (frames, actions, k, eps))


def train_flops(b: Bench, model: VideoDiT, batch: int, clip_len: int) -> int:
    """FLOPs of one training step's forward + backward (the optimizer step is not counted)."""
    frames, actions, k, eps = train_batch(b, b.suite.train, batch, clip_len)
    counter = FlopCounterMode(display=False)
    with counter:
        loss = training_loss(model, b.diffusion, frames, actions, k, eps, b.suite.train)
        loss.backward()
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


# --------------------------------------------------------------------------------------------
#                                   4. Training modes
# --------------------------------------------------------------------------------------------


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

        seconds = time_best(step, b.device, b.sizes.reps)
        rows.append(b.row(block=spec.display, way=way, batch=batch, clip_len=length, s_per_step=seconds))
        log(f"modes {spec.display:10s} {way:26s} {seconds * 1e3:8.1f} ms/step")
    return rows


def bench_modes(b: Bench) -> list[dict[str, Any]]:
    return [r for spec in b.suite.blocks if spec.name in MODE_BLOCKS for r in mode_rows(b, spec)]


# --------------------------------------------------------------------------------------------
#                                   5. Metrics throughput
# --------------------------------------------------------------------------------------------


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
    sec = time_best(fn, b.device, b.sizes.reps)
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


# --------------------------------------------------------------------------------------------
#                                   Writing: CSV, figure, summary
# --------------------------------------------------------------------------------------------


def csv_text(rows: list[dict[str, Any]]) -> str:
    fields = list(dict.fromkeys(k for row in rows for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def plot_rollout(rows: list[dict[str, Any]], name: str) -> bytes:
    """PNG of ms per frame vs rollout length, one line per block (dashed: bf16 autocast)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 3.8))
    ax = fig.subplots()
    for (block, dtype), rs in group(rows, "block", "dtype").items():
        label = block if dtype == FP32 else f"{block} ({dtype})"
        ls = "-" if dtype == FP32 else "--"
        ax.plot([r["frames"] for r in rs], [r["ms_per_frame"] for r in rs], ls, marker="o", label=label)
    frames = sorted({r["frames"] for r in rows})
    ax.set_xscale("log", base=2)
    ax.set_xticks(frames, [str(f) for f in frames])
    ax.set_xlabel(f"rollout length (frames after a {rows[0]['context']}-frame context; window {rows[0]['window']})")
    ax.set_ylabel("ms per frame")
    ax.set_title(f"rollout cost vs length, batch {rows[0]['batch']}, {name}", fontsize=9)
    ax.legend(fontsize=7)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    return buf.getvalue()


def group(rows: list[dict[str, Any]], *keys: str) -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        k = tuple(row[key] for key in keys)
        out.setdefault(k if len(keys) > 1 else k[0], []).append(row)
    return out


def md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return lines + ["| " + " | ".join(r) + " |" for r in rows] + [""]


def g3(v: float) -> str:
    return f"{v:.3g}"


def verdict(ratio: float, target: float | None, at_most: bool = False) -> tuple[str, str]:
    """(target text, PASS/MISS) for a ratio; no target gives ("—", "—")."""
    if target is None:
        return "—", "—"
    ok = ratio <= target if at_most else ratio >= target
    return (f"<= {target}" if at_most else f">= {target}x"), ("PASS" if ok else "MISS")


def rollout_summary(rows: list[dict[str, Any]]) -> list[str]:
    fp32 = [r for r in rows if r["dtype"] == FP32]
    lengths = sorted({r["length_x_window"] for r in fp32})
    table = []
    for block, rs in group(fp32, "block").items():
        by = {r["length_x_window"]: r for r in rs}
        lo, hi = by[lengths[0]], by[lengths[-1]]
        ratio = hi["ms_per_frame"] / lo["ms_per_frame"]
        constant = lo["state_growth"] == "constant"
        target, status = verdict(ratio, ROLLOUT_TARGET, at_most=True) if constant else ("grows (expected)", "—")
        times = [g3(by[m]["ms_per_frame"]) for m in lengths]
        state = f"{lo['state_bytes'] / 1e6:.3g} → {hi['state_bytes'] / 1e6:.3g}"
        table.append([block, lo["state_growth"], lo["impl"], *times, state, f"{ratio:.3f}", target, status])
    head = ["block", "state", "impl", *(f"ms/frame {m}x" for m in lengths), "state MB", f"{lengths[-1]}x/{lengths[0]}x"]
    r0 = fp32[0]
    intro = [
        "## 1. Rollout cost vs length",
        "",
        f"Untrained smoke_all models; batch {r0['batch']}, context {r0['context']}, window {r0['window']}, "
        f"{r0['sampling_steps']} sampling steps + 1 commit per frame; ms per rollout step (one frame per clip), "
        f"context pass subtracted, best of the repetitions. State MB: KV window + memory state, "
        f"{lengths[0]}x → {lengths[-1]}x window. Peak memory ({r0['peak_mem_kind']}) is in `rollout-*.csv`.",
        "",
    ]
    return intro + md_table([*head, "target", "status"], table) + bf16_summary(rows)


def bf16_summary(rows: list[dict[str, Any]]) -> list[str]:
    by = {(r["block"], r["dtype"], r["length_x_window"]): r for r in rows}
    longest = max(r["length_x_window"] for r in rows)
    table = []
    for block in group(rows, "block"):
        if (block, BF16, longest) in by:
            a, h = by[(block, FP32, longest)]["ms_per_frame"], by[(block, BF16, longest)]["ms_per_frame"]
            table.append([block, g3(a), g3(h), f"{a / h:.2f}x"])
    if not table:
        return []
    head = ["block", f"fp32 ms/frame {longest}x", f"bf16 ms/frame {longest}x", "bf16 speedup"]
    return ["### bf16 autocast rollout", "", *md_table(head, table)]


def scans_summary(rows: list[dict[str, Any]]) -> list[str]:
    by = {(r["op"], r["impl"], r["mode"]): r for r in rows}
    table = []
    for op, fast, base, target in SCAN_PAIRS:
        for mode in ("fwd", "fwd+bwd"):
            if (op, fast, mode) not in by or (op, base, mode) not in by:
                continue
            f, s = by[(op, fast, mode)], by[(op, base, mode)]
            speedup = s["ms"] / f["ms"]
            t, status = verdict(speedup, target)
            table.append([op, f"{fast} vs {base}", mode, str(f["length"]), g3(s["ms"]), g3(f["ms"]), f"{speedup:.2f}x"])
            table[-1] += [t, status]
    head = ["op", "fast vs baseline", "mode", "length", "baseline ms", "fast ms", "speedup", "target", "status"]
    configs = "; ".join(f"{op}: {rs[0]['config']}, {rs[0]['rows']} rows" for op, rs in group(rows, "op").items())
    intro = ["## 2. Scans", "", f"Speedup = baseline time / fast time, best of the repetitions. {configs}.", ""]
    return intro + md_table(head, table)


def train_summary(rows: list[dict[str, Any]]) -> list[str]:
    r0 = rows[0]
    table = [
        [
            r["block"],
            f"{r['steps_per_s']:.2f}",
            f"{r['frames_per_s']:.0f}",
            f"{r['flops_per_step'] / 1e9:.3g}",
            f"{r['achieved_flops_per_s'] / 1e9:.3g}",
            f"{100 * r['fraction_of_peak']:.1f}%",
        ]
        for r in rows
    ]
    head = ["block", "steps/s", "frames/s", "GFLOP/step", "achieved GFLOP/s", "of matmul peak"]
    intro = [
        "## 3. Training",
        "",
        f"`train()` at batch {r0['batch']} x {r0['clip_len']} frames, {r0['steps_timed']} steps after warm-up. "
        f"FLOPs: forward + backward per step (FlopCounterMode: matmul, conv, attention). "
        f"Matmul peak: float32 {r0['matmul_n']}x{r0['matmul_n']} at {r0['matmul_peak_flops_per_s'] / 1e9:.1f} GFLOP/s.",
        "",
    ]
    return intro + md_table(head, table)


def modes_summary(rows: list[dict[str, Any]]) -> list[str]:
    table = []
    for block, rs in group(rows, "block").items():
        t = {r["way"]: r["s_per_step"] for r in rs}
        frame_chunk = verdict(t["frame"] / t["chunk"], FRAME_VS_CHUNK_TARGET, at_most=True)
        naive_frame = verdict(t["naive window loop"] / t["frame"], NAIVE_VS_FRAME_TARGET)
        table.append(
            [block, *(f"{1e3 * t[w]:.0f}" for w in t), f"{t['frame'] / t['chunk']:.2f}x", frame_chunk[1],
             f"{t['frame (prefetch detached)'] / t['chunk']:.2f}x", f"{t['naive window loop'] / t['frame']:.2f}x",
             naive_frame[1]]
        )  # fmt: skip
    r0 = rows[0] if rows else {"batch": "?", "clip_len": "?"}
    head = ["block", "chunk ms", "frame ms", "frame detached ms", "naive ms", "frame / chunk",
            f"target <= {FRAME_VS_CHUNK_TARGET}x", "detached / chunk", "naive / frame",
            f"target >= {NAIVE_VS_FRAME_TARGET}x"]  # fmt: skip
    intro = [
        "## 4. Training modes",
        "",
        f"Forward + backward of one batch of {r0['batch']} clips x {r0['clip_len']} frames (no optimizer step), "
        "best of the repetitions. `frame`: RAD's frame-wise training with the state prefetch (one clean pass, then "
        "every frame denoised in one batch); `naive window loop`: the same loss frame after frame with the state "
        "handed on (`rad_bench.modes.frame_loss_naive`).",
        "",
    ]
    return intro + md_table(head, table)


def metrics_summary(rows: list[dict[str, Any]]) -> list[str]:
    table = [
        [r["metric"], str(r["frames"]), f"{r['frame_size']} → {r['model_input_size']}", g3(r["frames_per_s"])]
        for r in rows
    ]
    return ["## 5. Metrics throughput", "", *md_table(["metric", "frames", "px (in → model)", "frames/s"], table)]


def summary_md(b: Bench, env: dict[str, Any], results: dict[str, list[dict[str, Any]]], wall_s: float) -> str:
    notes = list(b.notes)
    if not is_cuda(b.device):
        notes.append("CPU peak memory is the growth of the process-wide peak RSS during a rollout, not its own use.")
    lines = [
        f"# rad-bench efficiency: {b.tag} ({b.name})",
        "",
        f"{'--quick' if env['quick'] else 'full'} run, torch {env['torch']}, {env['torch_threads']} threads, "
        f"git {env['git_sha'][:7]}, {time.strftime('%Y-%m-%d %H:%M')}, {wall_s:.0f} s. "
        f"All ratios are from this one run on this one device.",
        "",
    ]
    lines += rollout_summary(results["rollout"]) + scans_summary(results["scans"])
    lines += train_summary(results["train"]) + modes_summary(results["modes"]) + metrics_summary(results["metrics"])
    lines += ["## Notes", "", *(f"- {n}" for n in notes)] if notes else []
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
#                                   Entry point
# --------------------------------------------------------------------------------------------

RUNNERS: dict[str, Callable[[Bench], list[dict[str, Any]]]] = {
    "rollout": bench_rollout,
    "scans": bench_scans,
    "train": bench_train,
    "modes": bench_modes,
    "metrics": bench_metrics,
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m rad_bench.bench", description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="tiny sizes (~30 s on CPU), for tests")
    p.add_argument("--out", type=Path, default=Path("results/bench"), help="output folder")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"], help="auto: cuda when available")
    return p.parse_args(argv)


def setup(device: str, sizes: Sizes) -> Bench:
    """The smoke_all suite with every registered block, its dataset and diffusion."""
    blocks = ", ".join(list_blocks())
    suite = load_suite(SUITE, [f"data.episodes={sizes.episodes}", f"blocks=[{blocks}]"])
    set_suite_impl(suite.impl)
    diffusion = Diffusion(suite.diffusion.levels, suite.diffusion.prediction)
    return Bench(device, sizes, suite, make_dataset(suite, seed=0), diffusion, device_name(device))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    b = setup(resolve_device(args.device), QUICK if args.quick else FULL)
    env = {**env_info(b.device), "device_name": b.name, "quick": args.quick, "sizes": asdict(b.sizes)}
    env["argv"] = sys.argv if argv is None else argv
    write_json(args.out / "env.json", env)
    log(f"{b.tag} ({b.name}), {torch.get_num_threads()} threads, blocks {[s.name for s in b.suite.blocks]}")
    results = {}
    for name in SECTIONS:
        log(f"== {name}")
        results[name] = RUNNERS[name](b)
        atomic_write_text(args.out / f"{name}-{b.tag}.csv", csv_text(results[name]))
    atomic_write_bytes(args.out / f"rollout_ms_per_frame-{b.tag}.png", plot_rollout(results["rollout"], b.name))
    atomic_write_text(args.out / "summary.md", summary_md(b, env, results, time.perf_counter() - start))
    log(f"wrote {args.out} in {time.perf_counter() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
