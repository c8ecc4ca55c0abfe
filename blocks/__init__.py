"""Memory blocks. Every module in this folder registers its block on import (timm-style discovery:
:func:`rad_bench.registry.import_submodules`), so a new block is one new file here.

Modules must import cleanly on a CPU-only machine: optional CUDA kernels are imported lazily
inside ``try/except ImportError`` (see ``rad_bench/ops``).
"""

from rad_bench.registry import import_submodules

import_submodules(__name__)
