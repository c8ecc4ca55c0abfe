"""Limits of what a suite may ask of this machine, whatever its kind (video or token): the memory its
allocations need together, and the worker processes it may start. Each is checked before any work and refused
with a :class:`~rad_bench.suitefile.SuiteError` naming the field and the fix (how many values a suite may
expand to and how deep it may nest are :mod:`rad_bench.suitefile`'s, checked as it is read). Torch-free.
"""

from __future__ import annotations

import os

from rad_bench.suitefile import SuiteError


def machine_memory() -> int | None:
    """Bytes of physical memory of this machine (None where the OS does not say)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_memory(need: dict[str, float], where: str, fix: str = "{field}") -> None:
    """Refuse a suite whose named allocations (bytes, a lower bound each) cannot fit this machine's memory
    together; the message names the largest and says what to lower: ``fix`` with ``{field}`` standing for
    the largest one's name."""
    have, total = machine_memory(), sum(need.values())
    if not have or total <= have:
        return
    field, most = max(need.items(), key=lambda kv: kv[1])
    raise SuiteError(
        f"{where}: needs at least {total / 2**30:,.0f} GiB ({most / 2**30:,.0f} GiB of it for {field}) and this "
        f"machine has {have / 2**30:.0f} GiB; lower {fix.format(field=field)}"
    )


def check_workers(workers: int, where: str) -> int:
    """``workers`` if this machine has a core for each (each is a process with a thread at least); else an
    error naming the cores. Cluster jobs (``--launcher``) do not run here and are not counted."""
    cores = os.cpu_count() or 1
    if workers > cores:
        raise SuiteError(
            f"{where}: {workers} worker processes on a machine with {cores} cores; use at most {cores} "
            "(or --launcher slurm to run cells elsewhere)"
        )
    return workers
