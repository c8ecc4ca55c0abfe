"""Training of one model on one dataset (the loss comes from :mod:`rad_bench.modes`).

Resumable: with ``train.checkpoint_every`` > 0 the full training state (weights, EMA, optimizer,
step, loss log, every RNG including the data generator) is saved atomically to ``checkpoint``;
a rerun with the same file continues from it and reproduces the uninterrupted run exactly.

Under ``torchrun`` the model is wrapped in ``DistributedDataParallel``. Every rank draws the
*global* batch from the same generator and keeps its slice, so N processes see exactly the
batches of one process; only rank 0 logs and writes the checkpoint.

Fast path (:class:`FastPath`, ``train.compile`` / ``precision`` / ``prefetch_batches``, all ``auto`` =
on for CUDA only, so CPU runs keep the eager float32 path): the model is ``torch.compile``d for the
step, its forward runs under bf16 autocast (float32 master weights, optimizer and loss), AdamW is the
fused CUDA kernel, the next batch is drawn by a background thread (:mod:`rad_bench.batches`, exact
resume kept). On every device the loss stays on the device between log entries: one host sync per
``train.log_every`` steps (and before a checkpoint), where a non-finite loss stops the run.
"""

from __future__ import annotations

import io
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from tqdm.auto import tqdm

from rad_bench.batches import BatchFeed
from rad_bench.config import TrainCfg
from rad_bench.data import Dataset
from rad_bench.distributed import all_mean, is_main, rank, world_size
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import VideoDiT
from rad_bench.modes import sample_train_levels, training_loss
from rad_bench.utils import atomic_write_bytes, rng_state, set_rng_state

CHECKPOINT_FORMAT = 1


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


class CheckpointError(RuntimeError):
    """A training checkpoint cannot be resumed; the message names the file and the fix."""


@dataclass
class TrainStats:
    steps: int = 0
    seconds: float = 0.0
    log: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss since last entry)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (step, validation score): train.eval_every
    fast: dict[str, Any] = field(default_factory=dict)  # the resolved FastPath (FastPath.record)

    @property
    def step_s(self) -> float:
        return self.seconds / max(self.steps, 1)

    @property
    def final_loss(self) -> float:
        return self.log[-1][1] if self.log else float("nan")


def lr_at(step: int, cfg: TrainCfg) -> float:
    """Linear warm-up, then cosine decay to 10% of the peak."""
    if step < cfg.warmup:
        return cfg.lr * (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(cfg.steps - cfg.warmup, 1)
    return cfg.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(frac, 1.0))))


class EMA:
    """Exponential moving average of a model's floating-point state (integer buffers are copied).
    Decay warms up as ``min(decay, (1 + step) / (10 + step))`` so early averages are not dominated
    by the random init."""

    def __init__(self, model: torch.nn.Module, decay: float) -> None:
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int) -> None:
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v, 1 - d)
            else:
                self.shadow[k].copy_(v)


# --------------------------------------------------------------------------------------------
#                                   Checkpoints
# --------------------------------------------------------------------------------------------


@dataclass
class _State:
    """Everything that changes during training; a checkpoint is exactly this."""

    model: VideoDiT
    opt: torch.optim.Optimizer
    ema: EMA | None
    g: torch.Generator
    stats: TrainStats
    running: list[float]  # losses since the last log entry (read from the device)
    pending: list[tuple[int, Tensor]] = field(default_factory=list)  # (step, loss) not read yet; never saved
    feed: BatchFeed | None = None  # where the batches come from; its generator state is what a checkpoint stores
    evaluate: Callable[[], float] | None = None  # the learning curve's scorer (rad_bench.curve); never saved


def save_train_state(path: Path, cell: str, cfg: TrainCfg, step: int, s: _State) -> None:
    """Atomically write the training state after ``step`` steps (tensors, numbers, lists, dicts only)."""
    buf = io.BytesIO()
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "cell": cell,
            "train_cfg": cfg.model_dump_json(),
            "step": step,
            "model": s.model.state_dict(),
            "ema": s.ema.shadow if s.ema else {},
            "optimizer": s.opt.state_dict(),
            "stats": {
                "steps": s.stats.steps,
                "seconds": s.stats.seconds,
                "log": [list(x) for x in s.stats.log],
                "curve": [list(x) for x in s.stats.curve],
            },
            "running": list(s.running),
            "rng": rng_state(),
            "data_rng": s.feed.rng_state() if s.feed else s.g.get_state(),
        },
        buf,
    )
    atomic_write_bytes(path, buf.getvalue())


def _read(path: Path, cell: str) -> dict[str, Any]:
    fix = f"delete it to restart cell {cell} from step 0"
    try:
        ck = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"not a rad-bench training checkpoint (format {CHECKPOINT_FORMAT})")
    except Exception as e:  # truncated, corrupt or foreign file: never guess, never silently retrain
        raise CheckpointError(
            f"{path}: cannot resume training: the file is truncated, corrupt or not a rad-bench training "
            f"checkpoint ({type(e).__name__}); {fix}"
        ) from None
    return ck


def load_train_state(path: Path, cell: str, cfg: TrainCfg, s: _State) -> int:
    """Restore ``s`` from ``path`` in place; return the step to continue from."""
    ck = _read(path, cell)
    if ck["cell"] != cell or ck["train_cfg"] != cfg.model_dump_json():
        raise CheckpointError(
            f"{path}: belongs to cell '{ck['cell']}' with train config {ck['train_cfg']}, not cell '{cell}' with "
            f"{cfg.model_dump_json()}; delete it to restart cell {cell} from step 0"
        )
    try:
        s.model.load_state_dict(ck["model"])
        s.opt.load_state_dict(ck["optimizer"])
        if s.ema is not None:
            s.ema.shadow = {k: v.to(s.ema.shadow[k].device) for k, v in ck["ema"].items()}
        s.g.set_state(ck["data_rng"])
        set_rng_state(ck["rng"])
        st = ck["stats"]
        s.stats.steps, s.stats.seconds = st["steps"], st["seconds"]
        s.stats.log = [(int(a), float(b)) for a, b in st["log"]]
        s.stats.curve = [(int(a), float(b)) for a, b in st.get("curve", [])]
        s.running[:] = ck["running"]
    except (KeyError, RuntimeError, ValueError, TypeError) as e:
        raise CheckpointError(
            f"{path}: cannot resume training ({type(e).__name__}: {e}); delete it to restart cell {cell} from step 0"
        ) from None
    return ck["step"]


# --------------------------------------------------------------------------------------------
#                                   Loop
# --------------------------------------------------------------------------------------------


def _batch(data: Dataset, diffusion: Diffusion, cfg: TrainCfg, g: torch.Generator, device: str) -> list[Tensor]:
    """The global batch from ``g`` (frames, actions, levels, noise, the frames that carry the loss);
    under torchrun this rank's slice of it."""
    if cfg.loss_frames == "targets":
        frames, actions, targets = data.sample_with_targets(cfg.batch_size, cfg.clip_len, g)
    else:
        frames, actions = data.sample(cfg.batch_size, cfg.clip_len, g)
        targets = torch.ones(frames.shape[:2], dtype=torch.bool)
    k = sample_train_levels(diffusion, frames.shape[:2], cfg, g)
    eps = torch.randn(frames.shape, generator=g)
    per = cfg.batch_size // world_size()
    sl = slice(rank() * per, (rank() + 1) * per)
    return [x[sl].to(device) for x in (frames, actions, k, eps, targets)]


@dataclass(frozen=True)
class FastPath:
    """How a run executes its steps, resolved once from ``train.compile``, ``train.precision``,
    ``train.prefetch_batches`` and the device (``auto``: the fast choice on CUDA, the unchanged eager
    float32 path on CPU). ``bf16`` changes the numbers, ``compile`` may change their last bits (fused
    kernels sum in another order), ``batches_ahead`` never does; all are recorded in the cell's stats."""

    compile: bool
    bf16: bool
    batches_ahead: bool
    fused_adamw: bool  # the one-kernel AdamW exists for CUDA tensors only

    @classmethod
    def of(cls, cfg: TrainCfg, device: str) -> FastPath:
        cuda = torch.device(device).type == "cuda"
        on = lambda v: v == "on" or (v == "auto" and cuda)  # noqa: E731
        bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and cuda)
        return cls(compile=on(cfg.compile), bf16=bf16, batches_ahead=on(cfg.prefetch_batches), fused_adamw=cuda)

    def record(self) -> dict[str, Any]:
        """The columns a cell's stats.json gets."""
        return {
            "train_compile": self.compile,
            "train_precision": "bf16" if self.bf16 else "fp32",
            "train_batches_ahead": self.batches_ahead,
        }


def _wrap(model: VideoDiT, device: str, fast: FastPath) -> torch.nn.Module:
    """What the step calls: the model, under DDP with several processes, compiled with ``fast.compile``
    (a compiled wrapper: ``model`` itself, its state dict and the rollout stay eager)."""
    net: torch.nn.Module = model
    if world_size() > 1:
        from torch.nn.parallel import DistributedDataParallel

        ids = [torch.device(device).index] if device.startswith("cuda") else None
        net = DistributedDataParallel(model, device_ids=ids)
    return torch.compile(net) if fast.compile else net  # type: ignore[return-value]


def _optimizer(model: VideoDiT, cfg: TrainCfg, fast: FastPath) -> torch.optim.Optimizer:
    kw = {"fused": True} if fast.fused_adamw else {}  # CPU keeps the default (foreach) implementation
    return torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99), **kw)


def train(
    model: VideoDiT,
    diffusion: Diffusion,
    data: Dataset,
    cfg: TrainCfg,
    *,
    seed: int,
    device: str,
    desc: str = "train",
    progress: bool = True,
    checkpoint: Path | None = None,
    cell: str = "",
    evaluate: Callable[[], float] | None = None,
) -> TrainStats:
    """Train ``model`` in place for ``cfg.steps`` steps (continuing from ``checkpoint`` if it exists);
    with ``cfg.ema`` > 0 the model ends holding the EMA weights. With ``cfg.eval_every`` and ``evaluate``
    (:func:`rad_bench.curve.evaluator`), ``stats.curve`` gets its score before the first step and after
    every ``eval_every`` steps (and the last)."""
    if cfg.batch_size % world_size():
        raise ValueError(f"train.batch_size ({cfg.batch_size}) must be a multiple of the {world_size()} processes")
    model.train()
    fast = FastPath.of(cfg, device)
    s = _State(
        model,
        _optimizer(model, cfg, fast),
        EMA(model, cfg.ema) if cfg.ema > 0 else None,
        torch.Generator().manual_seed(seed),
        TrainStats(fast=fast.record()),
        [],
    )
    start = load_train_state(checkpoint, cell, cfg, s) if checkpoint and checkpoint.is_file() else 0
    s.evaluate = evaluate if cfg.eval_every else None
    if s.evaluate is not None and start == 0 and is_main():
        s.stats.curve.append((0, s.evaluate()))
    if start and is_main():
        print(f"rad-bench: {cell}: resumed training from step {start} of {cfg.steps} ({checkpoint})", file=sys.stderr)
    draw = lambda: _batch(data, diffusion, cfg, s.g, device)  # noqa: E731
    with BatchFeed(draw, s.g, cfg.steps - start, ahead=fast.batches_ahead) as s.feed:
        try:
            _loop(_wrap(model, device, fast), diffusion, cfg, s, start, fast, checkpoint, cell, desc, progress)
        except TrainingDiverged as e:
            raise TrainingDiverged(f"{cell or desc}: {e}") from None
    model.eval()
    if s.ema is not None:
        model.load_state_dict(s.ema.shadow)
    return s.stats


def _loop(
    net: torch.nn.Module,
    diffusion: Diffusion,
    cfg: TrainCfg,
    s: _State,
    start: int,
    fast: FastPath,
    checkpoint: Path | None,
    cell: str,
    desc: str,
    progress: bool,
) -> None:
    """Steps ``start`` to ``cfg.steps``. The losses stay on the device and are read (one host sync)
    only to log them every ``train.log_every`` steps and before a checkpoint; a non-finite one stops
    the run there, naming the step where it first appeared."""
    bar = tqdm(
        range(start, cfg.steps),
        desc=desc,
        disable=not (progress and is_main()),
        dynamic_ncols=True,
        leave=False,
        initial=start,
        total=cfg.steps,
    )
    for step in bar:
        t_start = time.perf_counter()
        s.pending.append((step, _step(net, diffusion, s.feed.next(), cfg, s, step, fast)))
        log = (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps
        every = cfg.checkpoint_every
        save = bool(checkpoint and every and ((step + 1) % every == 0 or step + 1 == cfg.steps))
        if log or save:  # on every rank alike: a non-finite loss stops all of them at the same step
            _drain(s, cfg)
        s.stats.seconds += time.perf_counter() - t_start
        s.stats.steps += 1
        if log:
            s.stats.log.append((step + 1, sum(s.running) / len(s.running)))
            s.running.clear()
            bar.set_postfix(loss=f"{s.stats.final_loss:.4f}")
        if s.evaluate is not None and is_main() and ((step + 1) % cfg.eval_every == 0 or step + 1 == cfg.steps):
            s.stats.curve.append((step + 1, s.evaluate()))  # after the step's time is counted: not a step cost
        if save and is_main():
            save_train_state(checkpoint, cell, cfg, step + 1, s)  # type: ignore[arg-type]


def _drain(s: _State, cfg: TrainCfg) -> None:
    """Move the pending losses to ``s.running`` as floats; stop at the first non-finite one."""
    values = torch.stack([loss for _, loss in s.pending]).tolist() if s.pending else []
    for (step, _), value in zip(s.pending, values):
        if not math.isfinite(value):
            raise TrainingDiverged(f"loss is {value} at step {step}: lower train.lr (now {cfg.lr}) or train.grad_clip")
    s.running.extend(values)
    s.pending.clear()


def _step(
    net: torch.nn.Module, diffusion: Diffusion, batch: list[Tensor], cfg: TrainCfg, s: _State, step: int, fast: FastPath
) -> Tensor:
    """One optimizer step; returns the loss averaged over ranks, a float32 tensor still on the device."""
    frames, actions, k, eps, targets = batch
    for group in s.opt.param_groups:
        group["lr"] = lr_at(step, cfg)
    device_type = frames.device.type
    with torch.autocast(device_type, dtype=torch.bfloat16, enabled=fast.bf16):
        loss = training_loss(net, diffusion, frames, actions, k, eps, cfg, targets)
    loss = loss.float()  # the loss and its gradient's seed in float32, whatever the forward ran in
    s.opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(s.model.parameters(), cfg.grad_clip)
    s.opt.step()
    if s.ema is not None:
        s.ema.update(s.model, step)
    return all_mean(loss.detach())  # every rank holds the same value, so all of them stop together
