"""Per-frame scoring of a rollout against ground truth, tagged by revisit status."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from rad_bench.metrics import get_metric
from rad_bench.tags import tag_frames


def score_rollout(
    generated: Tensor,  # (N, horizon, c, H, W) in [-1, 1]
    truth: Tensor,  # (N, horizon, c, H, W)
    places: Tensor,  # (N, context + horizon)
    *,
    context: int,
    reach: int,
    metrics: list[str],
) -> list[dict[str, Any]]:
    """One row per clip x frame x per-frame metric: ``clip, frame, tag, metric, value``.

    ``frame`` counts generated frames from 0 (the first frame after the context)."""
    n, h = generated.shape[:2]
    flat = lambda x: x.reshape(n * h, *x.shape[2:])  # noqa: E731
    values = {}
    for name in metrics:
        spec = get_metric(name)
        if spec.scope == "per_frame":
            with torch.no_grad():
                values[name] = spec.load()(flat(generated), flat(truth)).reshape(n, h)
    rows = []
    for clip in range(n):
        tags = tag_frames(places[clip].tolist(), context, reach)
        for frame in range(h):
            for name, v in values.items():
                rows.append(
                    {
                        "clip": clip,
                        "frame": frame,
                        "tag": tags[frame],
                        "metric": name,
                        "value": float(v[clip, frame]),
                    }
                )
    return rows
