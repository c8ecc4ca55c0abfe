"""Token-level MQAR calibration (Zoology, Arora et al. 2023): the registered memory blocks, unchanged,
as the only sequence mixer of a tiny token model trained on multi-query associative recall. Shows
whether each block can learn recall at all, apart from the video model.

``python -m rad_bench.mqar suites/mqar.yaml --out DIR`` or :func:`run_mqar`. Modules: ``config``
(the suite), ``data`` (the sequences), ``model`` (the token model), ``train`` (training, scoring),
``report`` (CSV, table, figure), ``run`` (the suite and the lr sweep).
"""

from rad_bench.mqar.config import MQARConfig, load_mqar, validate_mqar
from rad_bench.mqar.data import make_mqar, mqar_batch, stream
from rad_bench.mqar.model import MQARModel
from rad_bench.mqar.run import run_mqar, sweep_lr

__all__ = ["MQARConfig", "MQARModel", "load_mqar", "make_mqar", "mqar_batch", "run_mqar", "stream", "sweep_lr",
           "validate_mqar"]  # fmt: skip
