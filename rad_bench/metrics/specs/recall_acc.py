"""``recall_acc``: the ``recall`` dataset's accuracy per frame (:func:`rad_bench.metrics.recall.recall_acc`)."""

from rad_bench.metrics import declare

F = "rad_bench.metrics.recall"  # the implementation, imported when the metric is first computed
declare(
    "recall_acc",
    True,
    "per_frame",
    f"{F}:recall_acc",
    "value recalled (nearest rendering), chance 1/V",
    f"{F}:recall_acc_protocol",
    bounds=(0.0, 1.0),
)
