"""Kernel/reference pairs shared by blocks, and the choice between them.

Each op ``foo`` lives in ``rad_bench/ops/foo.py`` with ``foo_ref`` (pure PyTorch, paper-faithful,
the test oracle) and, where a CUDA package provides one, a fast path imported lazily. Which path
runs is resolved once: the suite key ``impl: auto|kernel|ref``, overridden globally by the
environment variable ``RAD_BENCH_IMPL``. Tests force a path with :func:`override_impl`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

IMPLS = ("auto", "kernel", "ref")
_override: str | None = None
_suite_impl = "auto"


class KernelUnavailableError(RuntimeError):
    """``impl: kernel`` was requested but the CUDA package is missing."""


def set_suite_impl(impl: str) -> None:
    """The suite's ``impl`` key; called once by the runner before models are built."""
    global _suite_impl
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r}")
    _suite_impl = impl


def requested_impl(default: str = "auto") -> str:
    """The impl asked for: test override > ``RAD_BENCH_IMPL`` > explicit argument > suite value."""
    impl = _override or os.environ.get("RAD_BENCH_IMPL") or (default if default != "auto" else _suite_impl)
    if impl not in IMPLS:
        raise ValueError(f"impl must be one of {IMPLS}, got {impl!r} (check RAD_BENCH_IMPL / suite 'impl')")
    return impl


def resolve_impl(requested: str, kernel_ok: bool, install_hint: str) -> str:
    """``kernel`` or ``ref`` for one op. ``kernel_ok``: the package imported and inputs are on CUDA."""
    impl = requested_impl(requested)
    if impl == "kernel" and not kernel_ok:
        raise KernelUnavailableError(f"impl=kernel requested but unavailable. {install_hint}")
    if impl == "auto":
        return "kernel" if kernel_ok else "ref"
    return impl


@contextmanager
def override_impl(impl: str | None) -> Iterator[None]:
    global _override
    old, _override = _override, impl
    try:
        yield
    finally:
        _override = old
