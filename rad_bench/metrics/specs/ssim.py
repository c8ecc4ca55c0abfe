"""``ssim``: structural similarity per frame (:func:`rad_bench.metrics.frame.ssim`)."""

from rad_bench.metrics import declare

F = "rad_bench.metrics.frame"  # the implementation, imported when the metric is first computed
declare(
    "ssim",
    True,
    "per_frame",
    f"{F}:ssim",
    "SSIM, Gaussian 11x11 window, sigma 1.5",
    f"{F}:ssim_protocol",
    bounds=(-1.0, 1.0),
)
