"""Training and evaluation of the MQAR token model: one model per (block, seed), trained on every K of
the suite at once (batches split evenly over K), then scored on the held-out eval split per K.

Deterministic given the seed: the weights come from ``torch.manual_seed(seed)``, the data from the
seed's own train / val / eval streams (:func:`rad_bench.mqar.data.stream`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from rad_bench.mqar.config import MQARConfig
from rad_bench.mqar.data import IGNORE, make_mqar, mqar_batch, stream
from rad_bench.mqar.model import MQARModel, model_state_bytes, param_count
from rad_bench.registry import BLOCKS
from rad_bench.train import TrainingDiverged
from rad_bench.utils import resolve_device


@dataclass
class Trained:
    model: MQARModel
    block: str
    seed: int
    lr: float
    final_loss: float
    seconds: float


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Torch's CPU threads set to ``n`` inside, restored after (a suite's ``threads``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _device(model: MQARModel) -> torch.device:
    return next(model.parameters()).device


def vocab_size(cfg: MQARConfig) -> int:
    return 1 + cfg.key_vocab + cfg.value_vocab


def build_model(cfg: MQARConfig, block: str) -> MQARModel:
    return MQARModel(
        BLOCKS.get(block),
        vocab=vocab_size(cfg),
        dim=cfg.dim,
        heads=cfg.heads,
        layers=cfg.layers,
        mlp_ratio=cfg.mlp_ratio,
        seq_len=cfg.seq_len if cfg.pos_emb else None,
        block_kwargs=cfg.kwargs_for(block),
    )


def _optimizer(model: MQARModel, cfg: MQARConfig, lr: float) -> torch.optim.Optimizer:
    """AdamW; weight decay on matrices only (not on biases, norms or Mamba's per-head A, dt, D)."""
    decay = [p for p in model.parameters() if p.ndim >= 2]
    rest = [p for p in model.parameters() if p.ndim < 2]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": rest, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.98))


def lr_factor(step: int, cfg: MQARConfig) -> float:
    """Linear warmup over ``warmup`` steps, then cosine decay to 10% at the last step."""
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    frac = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac))


def query_loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Cross-entropy at the query steps only (every other target is ``IGNORE``), averaged per sequence
    first: every sequence weighs the same, so the K = 16 rows (16 queries each) do not drown the K = 2
    rows (2 queries) of a mixed batch in a block that can only learn the small K."""
    ce = F.cross_entropy(logits.transpose(1, 2), y, ignore_index=IGNORE, reduction="none")  # (b, t)
    n = (y != IGNORE).sum(1).clamp(min=1)
    return (ce.sum(1) / n).mean()


def train(cfg: MQARConfig, block: str, seed: int, lr: float | None = None, desc: str = "") -> Trained:
    """Train one token model with ``block`` as its mixer for ``cfg.steps`` steps."""
    lr = cfg.lr_for(block) if lr is None else lr
    torch.manual_seed(seed)
    device = resolve_device(cfg.device)
    model = build_model(cfg, block).to(device)
    opt = _optimizer(model, cfg, lr)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    rng, t0, loss = stream(seed, "train"), time.perf_counter(), torch.tensor(float("nan"))
    bar = tqdm(range(cfg.steps), desc=desc or f"{block} seed {seed}", disable=not cfg.progress, leave=False)
    model.train()
    for _ in bar:
        x, y = mqar_batch(rng, cfg.batch, cfg.ks, cfg.seq_len, cfg.key_vocab, cfg.value_vocab, cfg.layout)
        loss = query_loss(model(x.to(device)), y.to(device))
        if not torch.isfinite(loss):
            raise TrainingDiverged(f"mqar {block} seed {seed} lr {lr}: loss is {loss.item()}; lower the lr")
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        opt.step()
        sched.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    return Trained(model, block, seed, lr, float(loss.item()), time.perf_counter() - t0)


@torch.no_grad()
def accuracy(model: MQARModel, cfg: MQARConfig, seed: int, split: str, k: int, n: int) -> float:
    """Fraction of query steps whose argmax over the whole vocabulary is the right value."""
    x, y = make_mqar(stream(seed, split, k), n, k, cfg.seq_len, cfg.key_vocab, cfg.value_vocab, cfg.layout)
    model.eval()
    hits, total = 0, 0
    for xs, ys in zip(x.split(256), y.split(256)):
        pred = model(xs.to(_device(model))).argmax(-1).cpu()
        mask = ys != IGNORE
        hits += int((pred[mask] == ys[mask]).sum())
        total += int(mask.sum())
    return hits / total


def score(trained: Trained, cfg: MQARConfig, split: str = "eval") -> list[dict]:
    """One tidy row per K: accuracy on ``split`` with chance, size and recipe."""
    n = cfg.eval_size if split == "eval" else cfg.val_size
    x, _ = make_mqar(np.random.default_rng(0), 1, max(cfg.ks), cfg.seq_len, cfg.key_vocab, cfg.value_vocab, cfg.layout)
    common = {
        "block": trained.block,
        "seed": trained.seed,
        "chance": 1.0 / cfg.value_vocab,
        "params": param_count(trained.model),
        "state_bytes": model_state_bytes(trained.model.eval(), x.to(_device(trained.model))),
        "steps": cfg.steps,
        "lr": trained.lr,
        "final_loss": trained.final_loss,
        "train_s": round(trained.seconds, 2),
        "layout": cfg.layout,
        "seq_len": cfg.seq_len,
    }
    return [{**common, "K": k, "accuracy": accuracy(trained.model, cfg, trained.seed, split, k, n)} for k in cfg.ks]
