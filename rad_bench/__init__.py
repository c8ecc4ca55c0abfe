"""rad-bench: memory blocks in autoregressive video diffusion world models, compared fairly.

Light on import (the report needs no torch); heavy names are loaded on first use.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "load_suite": "rad_bench.config",
    "run_suite": "rad_bench.runner",
    "build_model": "rad_bench.model.dit",
    "list_blocks": "rad_bench.registry",
    "get_block": "rad_bench.registry",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'rad_bench' has no attribute {name!r}")
