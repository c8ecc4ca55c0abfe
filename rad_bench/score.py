"""Scoring of a rollout against ground truth: per-frame metrics tagged by revisit status, and set
metrics (FVD) per horizon bucket. Every row carries the metric's protocol string
(:meth:`rad_bench.metrics.MetricSpec.protocol`: each metric declares its own)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from rad_bench.dataconfig import DataConfig
from rad_bench.metrics import get_metric
from rad_bench.tags import Reach, tag_frames_with_gap


def _guarded(name: str, fn: Callable[[], Any]) -> tuple[Any, str]:
    """``(fn(), "")``, or ``(None, "<error>")`` if the metric fails: a metric error must never
    discard a trained cell, so the failure is recorded in that metric's rows instead."""
    try:
        return fn(), ""
    except Exception as e:  # noqa: BLE001 -- any metric failure becomes a recorded NaN row
        print(f"rad-bench: metric {name} failed ({type(e).__name__}: {e}); recorded as NaN", file=sys.stderr)
        return None, f"{type(e).__name__}: {e}"[:300]


def frame_tags(places: Tensor, context: int, reach: Reach) -> list[list[tuple[str, int | None]]]:
    """``(tag, gap)`` per generated frame of every clip, from the context's ground-truth places."""
    return [tag_frames_with_gap(p.tolist(), context, reach) for p in places]


def score_frames(
    generated: Tensor,  # (N, horizon, c, H, W) in [-1, 1]
    truth: Tensor,  # (N, horizon, c, H, W)
    tags: list[list[tuple[str, int | None]]],  # (tag, gap) per clip and generated frame (frame_tags)
    *,
    metrics: list[str],
    data: DataConfig | None = None,
    scored: Tensor | None = None,
) -> list[dict[str, Any]]:
    """One row per clip x frame x per-frame metric: ``clip, frame, tag, gap, metric, value, protocol,
    error``. ``frame`` counts generated frames from 0 (the first frame after the context); ``gap`` is
    the frames since the place was last shown in the context (empty for novel frames). ``data`` (the
    suite's typed ``data:`` config) is passed to each metric's protocol (``recall_acc`` takes its chance
    level from it). ``scored`` (``(N, horizon)`` bool, :attr:`rad_bench.data.EvalSet.scored`) adds a
    ``scored`` column (1/0): the leaderboard leaves the 0 rows out."""
    n, h = generated.shape[:2]
    flat = lambda x: x.reshape(n * h, *x.shape[2:])  # noqa: E731
    rows = []
    for name in metrics:
        spec = get_metric(name)
        if spec.scope != "per_frame":
            continue
        with torch.no_grad():
            v, error = _guarded(name, lambda: spec.load()(flat(generated), flat(truth)).reshape(n, h))
        proto = spec.protocol(data=data) if data is not None else spec.protocol()
        for clip in range(n):
            for frame, (tag, gap) in enumerate(tags[clip]):
                rows.append(
                    {
                        "clip": clip,
                        "frame": frame,
                        "tag": tag,
                        "gap": gap,
                        "metric": name,
                        "value": float("nan") if v is None else float(v[clip, frame]),
                        "protocol": proto,
                        "error": error,
                    }
                )
                if scored is not None:
                    rows[-1]["scored"] = int(scored[clip, frame])
    return rows


def score_sets(
    generated: Tensor,  # (N, horizon, c, H, W)
    episodes: Tensor,  # (N, context + horizon, c, H, W) ground truth
    *,
    metrics: list[str],
    bucket: int | None,
    batches: int = 1,
) -> list[dict[str, Any]]:
    """Set metrics, TECO's recipe: clips split into ``batches`` equal batches (``clip`` = batch index,
    ``tag = "all"``), one value per batch, so the leaderboard shows mean ± stderr over batches.

    ``frame = -1``: the whole episode with the context replaced by ground truth, against the
    ground-truth episode. With ``bucket``, also one row per bucket of ``bucket`` generated frames
    (``frame`` = bucket start); a trailing shorter bucket is dropped so every value in a table comes
    from clips of the same length."""
    n, h = generated.shape[:2]
    context = episodes.shape[1] - h
    fake = torch.cat([episodes[:, :context], generated], dim=1)
    spans = [(-1, 0, context + h)]
    if bucket:
        spans += [(s - context, s, s + bucket) for s in range(context, context + h - bucket + 1, bucket)]
    size = n // batches
    rows = []
    for name in metrics:
        spec = get_metric(name)
        if spec.scope != "set":
            continue
        fn = spec.load()
        for batch in range(batches):
            clips = slice(batch * size, (batch + 1) * size)
            for frame, lo, hi in spans:
                value, error = _guarded(name, lambda: fn(episodes[clips, lo:hi], fake[clips, lo:hi]))
                rows.append(
                    {
                        "clip": batch,
                        "frame": frame,
                        "tag": "all",
                        "gap": None,
                        "metric": name,
                        "value": float("nan") if value is None else float(value),
                        "protocol": spec.protocol(
                            videos=size, frames=hi - lo, context_gt=context if frame == -1 else 0
                        ),
                        "error": error,
                    }
                )
    return rows
