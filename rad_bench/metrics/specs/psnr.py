"""``psnr``: peak signal-to-noise ratio per frame (:func:`rad_bench.metrics.frame.psnr`)."""

from rad_bench.metrics import declare

F = "rad_bench.metrics.frame"  # the implementation, imported when the metric is first computed
declare(
    "psnr",
    True,
    "per_frame",
    f"{F}:psnr",
    "peak signal-to-noise ratio, dB, data range 1",
    f"{F}:psnr_protocol",
    bounds=(None, 60.0),
    unit="dB",
)
