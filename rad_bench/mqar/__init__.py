"""Token-level MQAR calibration (Zoology, Arora et al. 2023): the registered memory blocks, unchanged,
as the only sequence mixer of a tiny token model trained on multi-query associative recall. Shows
whether each block can learn recall at all, apart from the video model.

``rad-bench run suites/mqar.yaml`` runs a suite (``kind: mqar``; :mod:`rad_bench.token_run`, in the run folder
layout every suite shares); ``python -m rad_bench.mqar SUITE --out DIR --sweep-lr`` chooses learning rates.
Modules: ``config`` (the suite), ``data`` (the sequences), ``model`` (the token model), ``train`` (training,
scoring), ``report`` (table, figure), ``run`` (the lr sweep).
"""

from importlib import import_module
from typing import Any

_WHERE = {
    "MQARConfig": "config",
    "load_mqar": "config",
    "validate_mqar": "config",
    "make_mqar": "data",
    "mqar_batch": "data",
    "stream": "data",
    "MQARModel": "model",
    "sweep_lr": "run",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    """The package's names, each imported when first used: the suite config (rad_bench.mqar.config) loads no
    torch, so validating a token suite does not either."""
    if name not in _WHERE:
        raise AttributeError(f"module 'rad_bench.mqar' has no attribute {name!r}")
    return getattr(import_module(f"rad_bench.mqar.{_WHERE[name]}"), name)
