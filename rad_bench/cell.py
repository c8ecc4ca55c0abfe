"""One cell of a run, the recipe: build the model, train it (or reuse a training with the same key), roll it out
far past the attention window, score every frame, write the cell's files. Reference rows are scored, never
trained. Where cells come from is :mod:`rad_bench.plan`; in which order and under which lock they run, and the
run folder, are :mod:`rad_bench.runner` and :mod:`rad_bench.rundir`.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rad_bench.build import make_model, model_config, reach_of
from rad_bench.config import (
    Suite,
    TrainCfg,
    resolved_dict,
)
from rad_bench.curve import CURVE_CSV, curve_rows, evaluator
from rad_bench.data import Dataset, EvalSet
from rad_bench.distributed import is_main
from rad_bench.metrics import SetSettings
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import DiTConfig, VideoDiT, block_params, count_params
from rad_bench.plan import Cell, data_key
from rad_bench.reference import REFERENCES
from rad_bench.registry import BLOCKS
from rad_bench.results import (
    METRICS_CSV,
    STATE_COLUMNS,
    STATE_CSV,
    cell_columns,
    csv_text,
    write_csv,
)
from rad_bench.reuse import find_trained, load_trained, training_key
from rad_bench.rollout import EVAL_NOISE_SEED, RolloutStats, rollout_batch
from rad_bench.rundir import (
    on_main,
    train_checkpoint,
)
from rad_bench.score import frame_tags, score_frames, score_sets
from rad_bench.train import FastPath, TrainStats, train
from rad_bench.utils import (
    atomic_write_bytes,
    atomic_write_text,
    peak_kind,
    peak_memory,
    phase,
    seed_everything,
    write_json,
)


@dataclass
class RunContext:
    suite: Suite
    run_dir: Path
    device: str
    limited: bool
    progress: bool
    git_sha: str
    eval_sets: dict[tuple[str, str], EvalSet] = field(default_factory=dict)  # per (data_key, split), built lazily


def eval_set_of(ctx: RunContext, c: Cell, data: Dataset) -> EvalSet:
    """The evaluation episodes of ``c``'s data point (the same for every block and seed), built once."""
    r = c.suite.rollout
    key = (data_key(c.suite), r.split)
    if key not in ctx.eval_sets:
        split = {} if r.split == "test" else {"split": r.split}  # a dataset may predate splits (test only)
        ctx.eval_sets[key] = data.eval_set(r.clips, r.context, r.horizon, **split)
    return ctx.eval_sets[key]


# --------------------------------------------------------------------------------------------
#                                   One cell: train, roll out, score, write
# --------------------------------------------------------------------------------------------


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()


def _write_samples(
    path: Path,
    ev: EvalSet,
    generated: torch.Tensor,
    context: int,
    tags: list[list[tuple[str, int | None]]],
    clips: int = 4,
) -> None:
    buf = io.BytesIO()
    np.savez_compressed(
        buf,
        truth=_to_uint8(ev.frames[:clips]),
        generated=_to_uint8(generated[:clips]),
        places=ev.places[:clips].numpy(),
        context=np.array(context),
        tags=np.array([[tag for tag, _ in clip] for clip in tags[:clips]]),
    )
    atomic_write_bytes(path, buf.getvalue())


def _save_checkpoint(ctx: RunContext, c: Cell, model: VideoDiT) -> None:
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "suite": resolved_dict(c.suite), "block": c.spec.model_dump()}, buf)
    atomic_write_bytes(ctx.run_dir / "checkpoints" / f"{c.name}.pt", buf.getvalue())


def _roll_out(
    ctx: RunContext, ev: EvalSet, model: VideoDiT, diffusion: Diffusion, cell: str
) -> tuple[torch.Tensor, RolloutStats]:
    """Generate every evaluation clip (batched); noise depends only on the clip index."""
    r, fast = ctx.suite.rollout, FastPath.of(ctx.suite.train, ctx.device)
    step_model = torch.compile(model, dynamic=True) if fast.compile else model  # shapes grow with the state
    chunks, stats = [], []
    for i in range(0, r.clips, r.batch_size):
        gen, st = rollout_batch(
            model,
            diffusion,
            ev.frames,
            ev.actions,
            r,
            i,
            EVAL_NOISE_SEED,
            progress=ctx.progress,
            desc=f"rollout {cell}",
            step_model=step_model,
            bf16=fast.bf16,
        )
        chunks.append(gen)
        stats.append(st)
    total = RolloutStats(sum(s.seconds for s in stats), sum(s.frames for s in stats), stats[0].state_bytes)
    return torch.cat(chunks), total


def _common(ctx: RunContext, c: Cell, cfg: DiTConfig, impl: str, params: tuple[int, int]) -> dict[str, Any]:
    """The columns every metrics row of a cell carries (:data:`rad_bench.results.CELL_COLUMNS`)."""
    suite = c.suite
    return {
        **cell_columns(
            suite=suite.name,
            suite_version=suite.version,
            run=ctx.run_dir.name,
            block=c.label,
            block_name=c.spec.name,
            variant=c.variant,
            seed=c.seed,
            reference=c.reference,
            train_mode=suite.train.mode,
            lr=None if c.reference else train_cfg(c).lr,
            shift=suite.diffusion.shift,
            loss_frames=suite.train.loss_frames,
            prefetch_grad=suite.train.prefetch_grad,
            clean_prefix=suite.train.clean_prefix,
            memory_action=suite.model.memory_action,
            window=suite.model.window,
            attention=cfg.attention,
            split=suite.rollout.split,
            reach=cfg.reach,
            impl=impl,
            params_block=params[0],
            params_total=params[1],
            limited=ctx.limited,
            git_sha=ctx.git_sha,
        ),
        **dict(c.point),
    }  # fmt: skip  (then a column per sweep axis, by its dotted key: ``data.slots``)


def _score(
    ev: EvalSet, c: Cell, cfg: DiTConfig, generated: torch.Tensor
) -> tuple[list[dict[str, Any]], list[list[tuple[str, int | None]]]]:
    """Rows of every metric for ``generated`` (per frame, tagged from the context; and per set)."""
    r = c.suite.rollout
    tags = frame_tags(ev.places, r.context, reach_of(cfg))
    rows: list[dict[str, Any]] = []
    for m in c.suite.metrics:  # one line per metric: LPIPS and I3D take minutes on a busy CPU
        with phase(c.name, f"score {m}"):
            rows += score_frames(
                generated,
                ev.frames[:, r.context :],
                tags,
                metrics=[m],
                data=c.suite.data,
                scored=None if ev.scored is None else ev.scored[:, r.context :],
            )
            s = c.suite.settings_of(m) or SetSettings()  # a set metric's batches and buckets
            rows += score_sets(generated, ev.frames, metrics=[m], bucket=s.bucket, batches=s.batches)
    return rows, tags


def _write_scored(
    ctx: RunContext, ev: EvalSet, c: Cell, generated: torch.Tensor, cfg: DiTConfig, common: dict[str, Any]
) -> list[dict[str, Any]]:
    """Score ``generated``, write the cell's sample frames; the metrics rows, each with ``common`` first."""
    rows, tags = _score(ev, c, cfg, generated)
    _write_samples(ctx.run_dir / "samples" / f"{c.name}.npz", ev, generated, c.suite.rollout.context, tags)
    return [{**common, **row} for row in rows]


def _cell_stats(c: Cell, tstats: TrainStats, rstats: RolloutStats, peak: int, device: str) -> dict[str, Any]:
    """The cost of one learned cell: training, rollout speed, state size and peak memory."""
    return {
        "train_steps": tstats.steps,
        "train_step_s": tstats.step_s,
        "train_loss_final": tstats.final_loss,
        "rollout_frames_per_s": rstats.frames_per_s,
        "state_bytes_final": rstats.state_bytes[-1],
        "state_bytes_first": rstats.state_bytes[0],
        "state_growth": BLOCKS.get(c.spec.name).state_growth,
        "peak_memory_bytes": peak,
        "peak_memory_kind": peak_kind(device),
        **tstats.fast,
    }


def _write_cell(
    ctx: RunContext, c: Cell, stats: dict[str, Any], log: list, rows: list[dict[str, Any]], curve: list
) -> None:
    """A learned cell's train log, stats and metrics; metrics.csv last, as it marks the cell done."""
    cell_dir = ctx.run_dir / "cells" / c.name
    losses = [{"step": s, "loss": v} for s, v in log]
    atomic_write_text(cell_dir / "train_log.csv", csv_text(losses) if losses else "step,loss\n")
    if curve:  # the learning curve (train.eval_every), with the cell's block and seed for the report
        write_csv(
            cell_dir / CURVE_CSV,
            [
                {"block": c.label, "seed": c.seed, "variant": c.variant, **row}
                for row in curve_rows(curve, c.suite.leaderboard.sort_by)
            ],
        )
    write_json(cell_dir / "stats.json", stats)
    write_csv(cell_dir / METRICS_CSV, rows)


def train_cfg(c: Cell) -> TrainCfg:
    """The cell's training settings: the suite's, with the block's own learning rate when it names one."""
    lr = c.spec.lr
    return c.suite.train if lr is None else c.suite.train.model_copy(update={"lr": lr})


def run_cell(ctx: RunContext, c: Cell, data: Dataset) -> None:
    """Train, roll out, score and write one cell."""
    suite, cell = c.suite, c.name
    seed_everything(c.seed)
    model = make_model(suite, c.spec, data, ctx.device)
    impl = model.layers[0].memory.impl  # resolved before training: a forced, missing kernel fails now
    diffusion = Diffusion.of(suite.diffusion)
    key = training_key(suite, c.spec, c.seed)
    origin = on_main(lambda: find_trained(ctx.run_dir, key))
    if origin is not None:  # the same training as a finished cell: only the evaluation differs
        with phase(cell, f"load the identical training of {origin}"):
            tstats = load_trained(ctx.run_dir, origin, model)
    else:
        curve = evaluator(model, diffusion, data, suite) if suite.train.eval_every else None
        with phase(cell, f"train {suite.train.steps} steps"):
            tstats = train(
                model,
                diffusion,
                data,
                train_cfg(c),
                seed=c.seed,
                device=ctx.device,
                desc=f"train {cell}",
                progress=ctx.progress,
                checkpoint=train_checkpoint(ctx.run_dir, cell),
                cell=cell,
                evaluate=curve,
            )
    if not is_main():
        return  # rank 0 alone rolls out, scores and writes; the others wait at the cell's barrier
    _save_checkpoint(ctx, c, model)
    ev = eval_set_of(ctx, c, data)
    with phase(cell, f"roll out {suite.rollout.clips} clips"), peak_memory(ctx.device) as peak:
        generated, rstats = _roll_out(ctx, ev, model, diffusion, cell)
    common = _common(ctx, c, model.cfg, impl, (block_params(model), count_params(model)))
    rows = _write_scored(ctx, ev, c, generated, model.cfg, common)
    states = [dict(zip(STATE_COLUMNS, (c.label, c.seed, i, n))) for i, n in enumerate(rstats.state_bytes)]
    write_csv(ctx.run_dir / "cells" / cell / STATE_CSV, states)
    shared = {"train_key": key, "train_shared_from": origin or ""}
    _write_cell(
        ctx,
        c,
        {**common, **_cell_stats(c, tstats, rstats, peak[0], ctx.device), **shared},
        tstats.log,
        rows,
        [] if origin else tstats.curve,
    )  # a shared training's curve lives in its origin cell


def run_reference_cell(ctx: RunContext, c: Cell, data: Dataset) -> None:
    """A reference row (``copy_last``, ``recall_oracle``): no model, no training; its frames come
    from the context alone and are scored by the same code as every learned cell."""
    if not is_main():
        return
    ev, r = eval_set_of(ctx, c, data), c.suite.rollout
    generated = REFERENCES[c.spec.name](ev.frames, ev.places, r.context, r.horizon)
    cfg = model_config(c.suite, data)
    rows = _write_scored(ctx, ev, c, generated, cfg, _common(ctx, c, cfg, "none", (0, 0)))
    write_csv(ctx.run_dir / "cells" / c.name / METRICS_CSV, rows)
