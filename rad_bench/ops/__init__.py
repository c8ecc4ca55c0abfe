"""Kernel/reference pairs shared by blocks, and the choice between them.

Each op ``foo`` lives in ``rad_bench/ops/foo.py`` with ``foo_ref`` (pure PyTorch, paper-faithful,
the test oracle) and a fast path: a CUDA package's kernel imported lazily, or a fused PyTorch form.
Which path runs is asked for explicitly: a block is built with the suite key ``impl: auto|kernel|ref``
(:class:`rad_bench.model.dit.DiTConfig` ``impl``) and passes it to its ops; the environment variable
``RAD_BENCH_IMPL`` overrides it for the whole process and tests force a path with :func:`override_impl`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

IMPLS = ("auto", "kernel", "ref")
_override: str | None = None  # set only by override_impl (tests)


class KernelUnavailableError(RuntimeError):
    """``impl: kernel`` was requested but the CUDA package is missing."""


def check_impl(impl: str) -> str:
    """``impl`` if it is one of :data:`IMPLS`, else a ValueError naming the valid ones."""
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r} (check RAD_BENCH_IMPL / suite 'impl')")
    return impl


def requested_impl(requested: str = "auto") -> str:
    """The impl asked for: test override > ``RAD_BENCH_IMPL`` > ``requested`` (the suite's value)."""
    return check_impl(_override or os.environ.get("RAD_BENCH_IMPL") or requested)


def resolve_impl(requested: str, kernel_ok: bool, install_hint: str) -> str:
    """``kernel`` or ``ref`` for one op. ``kernel_ok``: the package imported and inputs are on CUDA."""
    impl = requested_impl(requested)
    if impl == "kernel" and not kernel_ok:
        raise KernelUnavailableError(f"impl=kernel requested but unavailable. {install_hint}")
    if impl == "auto":
        return "kernel" if kernel_ok else "ref"
    return impl


KERNEL_OPS = ("ssd",)  # the ops with a CUDA kernel path: each module's ``<op>_impl(device, requested)``


def check_kernels(device: str, requested: str = "auto") -> None:
    """Before any work: with ``kernel`` asked for (the suite's ``impl:`` or ``RAD_BENCH_IMPL``), every op with a
    kernel path must find its kernel on ``device``, else :class:`KernelUnavailableError` with the install hint."""
    if requested_impl(requested) != "kernel":
        return
    import importlib

    import torch

    for op in KERNEL_OPS:
        getattr(importlib.import_module(f"rad_bench.ops.{op}"), f"{op}_impl")(torch.device(device), requested)


@contextmanager
def override_impl(impl: str | None) -> Iterator[None]:
    """Force ``impl`` for every op inside the block (tests); ``None`` lifts the override."""
    global _override
    old, _override = _override, impl
    try:
        yield
    finally:
        _override = old
