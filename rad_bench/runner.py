"""``run_suite``: expand blocks x seeds, then train, roll out, score and write each cell.

Layout of a run folder ``results/<suite>/<YYYYmmdd-HHMM>-<sha7>/``::

    suite.resolved.yaml  argv.txt  env.json
    cells/<block>-s<seed>/metrics.csv, stats.json, train_log.csv   (written when the cell is done)
    checkpoints/<block>-s<seed>.pt                                 (git-ignored)
    checkpoints/<block>-s<seed>.train.pt   (resumable training state; deleted once the cell is done)
    locks/<block>-s<seed>.lock             (held while a process computes the cell)
    samples/<block>-s<seed>.npz                                    (frames for strips)
    metrics.csv  efficiency.csv  leaderboard.csv  leaderboard.md  figures/

A finished cell is never recomputed: rerunning with ``--resume`` (or ``--run-dir``) skips cells
whose ``metrics.csv`` exists, and a cell killed mid-training continues from its last
``train.checkpoint_every`` checkpoint with identical results. Several processes may share one run
folder: each cell is computed by whichever takes its lock first. Under ``torchrun`` rank 0 picks
the folder, rolls out, scores and writes; every rank trains (DDP). Every file is written
atomically (temp file + rename).
"""

from __future__ import annotations

import csv
import glob
import io
import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml
from filelock import FileLock, Timeout

from rad_bench import report
from rad_bench.config import BlockSpec, Suite, SuiteError, data_config, resolved_dict, variants
from rad_bench.data import Dataset, EvalSet
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import PRESETS, DiTConfig, VideoDiT, block_params, build_model, count_params, matched_config
from rad_bench.modes import attention_for
from rad_bench.ops import set_suite_impl
from rad_bench.reference import REFERENCES
from rad_bench.registry import BLOCKS, DATASETS
from rad_bench.rollout import RolloutStats, rollout
from rad_bench.score import frame_tags, score_frames, score_sets
from rad_bench.tags import Reach
from rad_bench.train import train
from rad_bench.utils import (
    atomic_write_bytes,
    atomic_write_text,
    barrier,
    broadcast_object,
    env_info,
    git_sha,
    init_distributed,
    is_main,
    peak_kind,
    peak_memory,
    resolve_device,
    seed_everything,
    world_size,
    write_json,
)

EVAL_NOISE_SEED = 1234  # rollout noise is identical for every block and seed


@dataclass
class RunContext:
    suite: Suite
    run_dir: Path
    device: str
    limited: bool
    progress: bool
    git_sha: str
    eval_set: EvalSet | None = None


# --------------------------------------------------------------------------------------------
#                                   Run folder
# --------------------------------------------------------------------------------------------


def _resolved_yaml(suite: Suite, limited: bool) -> str:
    d = resolved_dict(suite)
    d["limited"] = limited
    return yaml.safe_dump(d, sort_keys=False)


def _latest_matching(root: Path, text: str) -> Path | None:
    for d in sorted(root.glob("*/"), reverse=True):
        f = d / "suite.resolved.yaml"
        if f.is_file() and f.read_text() == text:
            return d
    return None


def prepare_run_dir(suite: Suite, run_dir: Path | None, resume: bool, limited: bool, results_root: Path) -> Path:
    """Pick (or create) the run folder; refuse to mix results of a different suite into it."""
    text = _resolved_yaml(suite, limited)
    suite_root = results_root / suite.name
    if run_dir is None and resume:
        run_dir = _latest_matching(suite_root, text)
    if run_dir is None:
        run_dir = suite_root / f"{time.strftime('%Y%m%d-%H%M%S')}-{git_sha(short=True)}"
    existing = run_dir / "suite.resolved.yaml"
    if existing.is_file() and existing.read_text() != text:
        raise SuiteError(
            f"{run_dir}: holds results of a different suite configuration (see {existing}); "
            "use a new --run-dir or restore the same suite and overrides"
        )
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(existing, text)
    return run_dir


def _start_run_dir(
    suite: Suite, run_dir: Path | None, resume: bool, limited: bool, results_root: Path, argv: list[str] | None,
    device: str,
) -> Path:  # fmt: skip
    run_dir = prepare_run_dir(suite, run_dir, resume, limited, results_root)
    atomic_write_text(run_dir / "argv.txt", " ".join(argv if argv is not None else sys.argv) + "\n")
    write_json(run_dir / "env.json", env_info(device))
    return run_dir


def _on_main(fn: Callable[[], Any]) -> Any:
    """``fn()`` computed on rank 0 and broadcast, so every rank agrees (e.g. on the timestamped run
    folder); a SuiteError raised there is raised on every rank."""
    out = None
    if is_main():
        try:
            out = fn()
        except SuiteError as e:
            out = e
    out = broadcast_object(out)
    if isinstance(out, SuiteError):
        raise out
    return out


# --------------------------------------------------------------------------------------------
#                                   Building
# --------------------------------------------------------------------------------------------


def model_config(suite: Suite, data: Dataset) -> DiTConfig:
    m = suite.model
    preset = dict(PRESETS[m.preset])
    overrides = {k: v for k, v in {"dim": m.dim, "depth": m.depth, "heads": m.heads}.items() if v is not None}
    preset.update(overrides)
    return DiTConfig(
        frame_size=data.frame_size,
        channels=data.channels,
        patch=m.patch,
        window=m.window,
        action_dim=data.action_dim,
        mlp_ratio=m.mlp_ratio,
        attention=attention_for(suite.train.mode),
        memory_action=m.memory_action,
        **preset,  # type: ignore[arg-type]
    )


def make_dataset(suite: Suite, seed: int) -> Dataset:
    cls = DATASETS.get(suite.data["name"])
    return cls(data_config(suite), seed=seed)


def _count(cfg: DiTConfig, spec: BlockSpec) -> int:
    with torch.device("meta"):  # count without allocating
        return count_params(build_model(cfg, BLOCKS.get(spec.name), spec.kwargs))


def make_model(suite: Suite, spec: BlockSpec, data: Dataset, device: str) -> VideoDiT:
    """The suite's DiT with ``spec`` in its memory slot; with ``model.match_params`` the MLP width is
    set so every block of the suite has the parameter count of the largest one (within ~1%)."""
    cfg = model_config(suite, data)
    if cfg.frame_size % cfg.patch or (cfg.dim // cfg.heads) % 4:
        raise SuiteError(
            f"model: frame_size {cfg.frame_size} must be a multiple of patch {cfg.patch} and "
            f"dim/heads ({cfg.dim}/{cfg.heads}) a multiple of 4 (2-D RoPE)"
        )
    if suite.model.match_params:
        target = max(_count(cfg, s) for s in suite.blocks)
        cfg = matched_config(cfg, target, _count(cfg, spec))
    return build_model(cfg, BLOCKS.get(spec.name), spec.kwargs).to(device)


# --------------------------------------------------------------------------------------------
#                                   One cell: train, roll out, score, write
# --------------------------------------------------------------------------------------------


def _csv_text(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def _to_uint8(x: torch.Tensor) -> np.ndarray:
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 1, 3, 4, 2).numpy()


def _write_samples(
    path: Path, ev: EvalSet, generated: torch.Tensor, context: int, tags: list[list[tuple[str, int | None]]],
    clips: int = 4,
) -> None:  # fmt: skip
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


def train_checkpoint(run_dir: Path, cell: str) -> Path:
    """The resumable mid-training state of ``cell``; deleted once the cell's metrics.csv exists."""
    return run_dir / "checkpoints" / f"{cell}.train.pt"


def _roll_out(ctx: RunContext, model: VideoDiT, diffusion: Diffusion, cell: str) -> tuple[torch.Tensor, RolloutStats]:
    """Generate every evaluation clip (batched); noise depends only on the clip index."""
    ev, r = ctx.eval_set, ctx.suite.rollout
    assert ev is not None
    chunks, stats = [], []
    for i in range(0, r.clips, r.batch_size):
        gen, st = rollout(
            model, diffusion, ev.frames[i : i + r.batch_size], ev.actions[i : i + r.batch_size],
            context=r.context, horizon=r.horizon, sampling_steps=r.sampling_steps,
            g=torch.Generator().manual_seed(EVAL_NOISE_SEED + i), progress=ctx.progress, desc=f"rollout {cell}",
        )  # fmt: skip
        chunks.append(gen)
        stats.append(st)
    total = RolloutStats(sum(s.seconds for s in stats), sum(s.frames for s in stats), stats[0].state_bytes)
    return torch.cat(chunks), total


def _write_cell(
    ctx: RunContext, cell: str, common: dict[str, Any], stats: dict[str, Any], log: list, rows: list[dict[str, Any]]
) -> None:
    cell_dir = ctx.run_dir / "cells" / cell
    atomic_write_text(
        cell_dir / "train_log.csv", _csv_text([{"step": s, "loss": v} for s, v in log]) if log else "step,loss\n"
    )
    write_json(cell_dir / "stats.json", {**common, **stats})
    atomic_write_text(cell_dir / "metrics.csv", _csv_text([{**common, **row} for row in rows]))  # last: marks done


@dataclass(frozen=True)
class Cell:
    """One block at one sweep point and one seed: the unit that is trained, scored and resumed."""

    suite: Suite  # the suite with this cell's sweep values applied
    spec: BlockSpec
    seed: int
    variant: str  # e.g. "mode=chunk"; "" without a sweep
    reference: bool = False  # a reference row (rad_bench.reference): scored, never trained

    @property
    def label(self) -> str:
        """The leaderboard's ``block`` column: the block's display name plus its sweep values."""
        return f"{self.spec.display}[{self.variant}]" if self.variant else self.spec.display

    @property
    def name(self) -> str:
        return f"{self.label}-s{self.seed}"


def expand_cells(suite: Suite) -> list[Cell]:
    """Seeds x (sweep points x blocks, then the reference rows), seed-major so one seed's data is
    loaded once. Reference rows cannot depend on a sweep (data and rollout are never swept), so
    they are scored once per seed, at the suite's unswept settings."""
    refs = [BlockSpec(name=name) for name in REFERENCES]
    return [
        cell
        for seed in suite.seeds
        for cell in (
            *(Cell(vs, spec, seed, label) for label, vs in variants(suite) for spec in suite.blocks),
            *(Cell(suite, spec, seed, "", reference=True) for spec in refs),
        )
    ]


def reach_of(cfg: DiTConfig) -> Reach:
    """The attention reach the revisit tags use: the sliding reach, or the chunk for chunk attention."""
    return Reach(cfg.reach, cfg.window if cfg.attention == "chunk" else None)


def _common(ctx: RunContext, c: Cell, cfg: DiTConfig, impl: str, params: tuple[int, int]) -> dict[str, Any]:
    """The columns every metrics row of a cell carries (learned and reference cells alike, in one order)."""
    suite = c.suite
    return {
        "suite": suite.name, "suite_version": suite.version, "run": ctx.run_dir.name, "block": c.label,
        "block_name": c.spec.name, "variant": c.variant, "seed": c.seed, "reference": c.reference,
        "train_mode": suite.train.mode, "prefetch_grad": suite.train.prefetch_grad,
        "clean_prefix": suite.train.clean_prefix, "memory_action": suite.model.memory_action,
        "window": suite.model.window, "attention": cfg.attention, "reach": cfg.reach, "impl": impl,
        "params_block": params[0], "params_total": params[1], "limited": ctx.limited, "git_sha": ctx.git_sha,
    }  # fmt: skip


def _score(
    ctx: RunContext, c: Cell, cfg: DiTConfig, generated: torch.Tensor
) -> tuple[list[dict[str, Any]], list[list[tuple[str, int | None]]]]:
    """Rows of every metric for ``generated`` (per frame, tagged from the context; and per set)."""
    ev, r = ctx.eval_set, c.suite.rollout
    assert ev is not None
    tags = frame_tags(ev.places, r.context, reach_of(cfg))
    rows = score_frames(generated, ev.frames[:, r.context :], tags, metrics=c.suite.metrics)
    rows += score_sets(generated, ev.frames, metrics=c.suite.metrics, bucket=r.fvd_bucket, batches=r.fvd_batches)
    return rows, tags


def run_cell(ctx: RunContext, c: Cell, data: Dataset) -> None:
    """Train, roll out, score and write one cell."""
    suite, spec, seed, cell, r = c.suite, c.spec, c.seed, c.name, c.suite.rollout
    seed_everything(seed)
    model = make_model(suite, spec, data, ctx.device)
    impl = model.layers[0].memory.impl  # resolved before training: a forced, missing kernel fails now
    diffusion = Diffusion(suite.diffusion.levels, suite.diffusion.prediction)
    tstats = train(model, diffusion, data, suite.train, seed=seed, device=ctx.device, desc=f"train {cell}",
                   progress=ctx.progress, checkpoint=train_checkpoint(ctx.run_dir, cell), cell=cell)  # fmt: skip
    if not is_main():
        return  # rank 0 alone rolls out, scores and writes; the others wait at the cell's barrier
    _save_checkpoint(ctx, c, model)

    with peak_memory(ctx.device) as peak:
        generated, rstats = _roll_out(ctx, model, diffusion, cell)
    rows, tags = _score(ctx, c, model.cfg, generated)
    assert ctx.eval_set is not None
    _write_samples(ctx.run_dir / "samples" / f"{cell}.npz", ctx.eval_set, generated, r.context, tags)

    common = _common(ctx, c, model.cfg, impl, (block_params(model), count_params(model)))
    stats = {
        "train_steps": tstats.steps, "train_step_s": tstats.step_s, "train_loss_final": tstats.final_loss,
        "rollout_frames_per_s": rstats.frames_per_s, "state_bytes_final": rstats.state_bytes[-1],
        "state_bytes_first": rstats.state_bytes[0], "state_growth": BLOCKS.get(spec.name).state_growth,
        "peak_memory_bytes": peak[0], "peak_memory_kind": peak_kind(ctx.device),
    }  # fmt: skip
    state_rows = [
        {"block": c.label, "seed": seed, "frame": i, "state_bytes": n} for i, n in enumerate(rstats.state_bytes)
    ]
    atomic_write_text(ctx.run_dir / "cells" / cell / "state.csv", _csv_text(state_rows))
    _write_cell(ctx, cell, common, stats, tstats.log, rows)


def run_reference_cell(ctx: RunContext, c: Cell, data: Dataset) -> None:
    """A reference row (``copy_last``, ``recall_oracle``): no model, no training; its frames come
    from the context alone and are scored by the same code as every learned cell."""
    if not is_main():
        return
    ev, r = ctx.eval_set, c.suite.rollout
    assert ev is not None
    generated = REFERENCES[c.spec.name](ev.frames, ev.places, r.context, r.horizon)
    cfg = model_config(c.suite, data)
    rows, tags = _score(ctx, c, cfg, generated)
    _write_samples(ctx.run_dir / "samples" / f"{c.name}.npz", ev, generated, r.context, tags)
    common = _common(ctx, c, cfg, "none", (0, 0))
    atomic_write_text(ctx.run_dir / "cells" / c.name / "metrics.csv", _csv_text([{**common, **row} for row in rows]))


# --------------------------------------------------------------------------------------------
#                                   Suite
# --------------------------------------------------------------------------------------------


def _concat_csv(files: list[Path]) -> str:
    """The CSV files of the cells one after the other, under the first one's header."""
    return "".join(f.read_text() if i == 0 else f.read_text().split("\n", 1)[1] for i, f in enumerate(files))


def _combine(run_dir: Path) -> None:
    atomic_write_text(run_dir / "metrics.csv", _concat_csv(sorted((run_dir / "cells").glob("*/metrics.csv"))))
    states = sorted((run_dir / "cells").glob("*/state.csv"))
    if states:  # state bytes after each generated frame, per cell (the efficiency figure)
        atomic_write_text(run_dir / "state.csv", _concat_csv(states))
    stats = [json.loads(f.read_text()) for f in sorted((run_dir / "cells").glob("*/stats.json"))]
    if stats:
        atomic_write_text(run_dir / "efficiency.csv", _csv_text(stats))


def _lock(run_dir: Path, name: str) -> FileLock:
    (run_dir / "locks").mkdir(parents=True, exist_ok=True)
    return FileLock(str(run_dir / "locks" / f"{name}.lock"))


def _stale_temp_files(run_dir: Path, cell: str) -> list[Path]:
    """Temp files a process killed mid-write left for ``cell`` (safe to delete under its lock)."""
    pattern = f".{glob.escape(cell)}.*.tmp"  # names like "none[mode=chunk]-s0" hold glob brackets
    return [
        *(run_dir / "checkpoints").glob(pattern),
        *(run_dir / "samples").glob(pattern),
        *(run_dir / "cells" / cell).glob(".*.tmp"),
    ]


@contextmanager
def _claimed(ctx: RunContext, cell: str, wait: bool) -> Iterator[str]:
    """Hold ``locks/<cell>.lock`` while the cell runs, so processes sharing a run folder never
    compute a cell twice. Rank 0 takes the lock and every rank gets its verdict: ``run``, ``done``
    (finished by another process) or ``busy`` (held by another process and ``wait`` is False).
    The OS drops the lock of a killed process, so a waiting process then runs the cell itself."""
    lock, status = _lock(ctx.run_dir, cell), None
    if is_main():
        try:
            lock.acquire(timeout=-1 if wait else 0)
            status = "done" if (ctx.run_dir / "cells" / cell / "metrics.csv").is_file() else "run"
        except Timeout:
            status = "busy"
    status = broadcast_object(status)
    try:
        if status == "run" and is_main():
            for tmp in _stale_temp_files(ctx.run_dir, cell):
                tmp.unlink(missing_ok=True)
        yield status
    finally:
        if lock.is_locked:
            lock.release()


def _run_locked(ctx: RunContext, cell: str, job: Callable[[], None], *, wait: bool) -> bool:
    """Run ``job`` (one cell) under the cell's lock unless it is done; False if another process holds it."""
    with _claimed(ctx, cell, wait) as status:
        if status == "busy":
            return False
        if status == "run":
            if is_main():
                print(f"rad-bench: running cell {cell}", file=sys.stderr)
            job()
            if is_main():
                train_checkpoint(ctx.run_dir, cell).unlink(missing_ok=True)  # metrics.csv now marks it done
            barrier()
    return True


def run_suite(
    suite: Suite,
    *,
    run_dir: Path | None = None,
    resume: bool = False,
    limit_steps: int | None = None,
    results_root: Path = Path("results"),
    progress: bool = True,
    argv: list[str] | None = None,
) -> Path:
    """Run every block x seed cell of ``suite`` not already done; return the run folder."""
    limited = limit_steps is not None and limit_steps < suite.train.steps
    if limited:
        suite = suite.model_copy(update={"train": suite.train.model_copy(update={"steps": limit_steps})})
    device = init_distributed(resolve_device(suite.device))  # cuda:LOCAL_RANK under torchrun
    if suite.train.batch_size % world_size():
        raise SuiteError(f"train.batch_size ({suite.train.batch_size}) must be a multiple of the {world_size()} "
                         "torchrun processes: each draws the global batch and trains on its slice")  # fmt: skip
    set_suite_impl(suite.impl)
    run_dir = _on_main(lambda: _start_run_dir(suite, run_dir, resume, limited, results_root, argv, device))
    ctx = RunContext(suite, run_dir, device, limited, progress and is_main(), git_sha())
    cells = expand_cells(suite)
    done = _on_main(lambda: {c.name for c in cells if (run_dir / "cells" / c.name / "metrics.csv").is_file()})
    todo = [c for c in cells if c.name not in done]  # rank 0's view: every rank walks the same list
    if is_main():
        print(f"rad-bench: {run_dir} ({len(todo)} of {len(cells)} cells to run)", file=sys.stderr)
    pending: list[tuple[str, Callable[[], None]]] = []  # cells another process held when we reached them
    datasets: dict[int, Dataset] = {}
    for c in todo:
        if c.seed not in datasets:
            datasets = {c.seed: make_dataset(suite, c.seed)}  # one seed's training data in memory at a time
        if ctx.eval_set is None:
            ctx.eval_set = datasets[c.seed].eval_set(suite.rollout.clips, suite.rollout.context, suite.rollout.horizon)
        run = run_reference_cell if c.reference else run_cell
        if not _run_locked(ctx, c.name, lambda c=c, run=run: run(ctx, c, datasets[c.seed]), wait=False):
            pending.append((c.name, lambda c=c, run=run: run(ctx, c, make_dataset(suite, c.seed))))
    for cell, job in pending:  # wait for the other process; run the cell if it died meanwhile
        _run_locked(ctx, cell, job, wait=True)
    if is_main():
        with _lock(run_dir, "combine"):  # concurrent runs finishing together write the same files in turn
            _combine(run_dir)
            report.write(run_dir, sort_by=suite.leaderboard.sort_by)
    barrier()
    return run_dir
