"""Memory blocks. Every module in this folder registers its block on import (timm-style discovery).

Modules must import cleanly on a CPU-only machine: optional CUDA kernels are imported lazily
inside ``try/except ImportError`` (see ``rad_bench/ops``).
"""

import importlib
import pkgutil

for _mod in pkgutil.iter_modules(__path__):
    if not _mod.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_mod.name}")
