"""Diffusion Forcing training of one model on one dataset."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from rad_bench.config import TrainCfg
from rad_bench.data import Dataset
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import VideoDiT


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite."""


@dataclass
class TrainStats:
    steps: int = 0
    seconds: float = 0.0
    log: list[tuple[int, float]] = field(default_factory=list)  # (step, mean loss since last entry)

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
) -> TrainStats:
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    g = torch.Generator().manual_seed(seed)
    stats, running = TrainStats(), []
    bar = tqdm(range(cfg.steps), desc=desc, disable=not progress, dynamic_ncols=True, leave=False)
    for step in bar:
        t_start = time.perf_counter()
        frames, actions = data.sample(cfg.batch_size, cfg.clip_len, g)
        k = diffusion.sample_levels(frames.shape[:2], cfg.clean_prob, g)
        eps = torch.randn(frames.shape, generator=g)
        frames, actions, k, eps = (x.to(device) for x in (frames, actions, k, eps))
        for group in opt.param_groups:
            group["lr"] = lr_at(step, cfg)
        loss = diffusion.loss(lambda x, lv: model(x, lv, actions)[0], frames, k, eps)
        if not torch.isfinite(loss):
            raise TrainingDiverged(
                f"loss is {loss.item()} at step {step}: lower train.lr (now {cfg.lr}) or train.grad_clip"
            )
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        stats.seconds += time.perf_counter() - t_start
        stats.steps += 1
        running.append(loss.item())
        if (step + 1) % cfg.log_every == 0 or step + 1 == cfg.steps:
            stats.log.append((step + 1, sum(running) / len(running)))
            running = []
            bar.set_postfix(loss=f"{stats.final_loss:.4f}")
    model.eval()
    return stats
