"""Small shared helpers: seeding, devices, environment records, atomic writes, RNG state, torchrun ranks."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import random
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def seed_everything(seed: int) -> None:
    import numpy as np
    import torch

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class DeviceUnavailableError(RuntimeError):
    """The suite asks for a device this machine does not have."""


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceUnavailableError(
            f"field 'device': '{name}' requested but CUDA is not available here; set device: auto or cpu"
        )
    return name


def git_sha(short: bool = False) -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return out[:7] if short else out


def env_info(device: str) -> dict[str, Any]:
    import torch

    from rad_bench.distributed import world_size

    info = {
        "git_sha": git_sha(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "torch_threads": torch.get_num_threads(),
        "world_size": world_size(),  # torchrun processes (DDP), 1 without
    }
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(device)
    return info


def _umask() -> int:
    mask = os.umask(0)  # the only portable way to read it is to set it; put it straight back
    os.umask(mask)
    return mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; a result file gets the usual mode
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


class OutsideError(ValueError):
    """A path under a run or report folder resolves outside it (a symlink); the message names it and the fix."""


def check_tree(root: Path) -> None:
    """Every symlink under ``root`` (``root`` itself may be one) must resolve inside it, so that every path
    written under a run or report folder, whatever its subfolder, lands inside it: checked when a run starts
    or resumes and before a report writes. A dangling link counts by where it points."""
    top = root.resolve()
    for folder, dirs, files in os.walk(root):  # followlinks=False: a symlinked folder is listed, not entered
        for name in (*dirs, *files):
            path = Path(folder) / name
            if path.is_symlink() and not path.resolve().is_relative_to(top):
                raise OutsideError(
                    f"{path}: is a symlink to {path.resolve()}, outside {top}, so files written there would land "
                    "elsewhere; remove the symlink (or copy what it points to into the folder)"
                )


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


# --------------------------------------------------------------------------------------------
#                                   RNG state (for training checkpoints)
# --------------------------------------------------------------------------------------------


def rng_state() -> dict[str, Any]:
    """torch (CPU and current CUDA device), numpy and python ``random`` states as tensors and
    numbers only, so a checkpoint holding them loads with ``torch.load(..., weights_only=True)``."""
    import numpy as np
    import torch

    _, keys, pos, has_gauss, gauss = np.random.get_state()
    version, internal, gauss_next = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "gauss": float(gauss),
        },
        "python": {
            "version": int(version),
            "internal": torch.tensor(internal, dtype=torch.int64),
            "has_gauss_next": gauss_next is not None,
            "gauss_next": float(gauss_next or 0.0),
        },
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Inverse of :func:`rng_state`."""
    import numpy as np
    import torch

    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    gauss_next = p["gauss_next"] if p["has_gauss_next"] else None
    random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state(state["cuda"])


# --------------------------------------------------------------------------------------------
#                                   Peak memory
# --------------------------------------------------------------------------------------------


def rss_bytes() -> int | None:
    """Current resident set size of this process (Linux ``/proc/self/statm``); None where unreadable."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


def _release_free_heap() -> None:
    """Hand freed heap pages back to the OS (glibc ``malloc_trim``) so that the RSS at the start of a
    measurement is the live memory, not what earlier work left cached in the allocator."""
    import ctypes
    import ctypes.util
    import gc

    gc.collect()
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the measurement is then an underestimate
        pass


def peak_kind(device: str) -> str:
    """What :func:`peak_memory` measures on ``device`` (written next to every peak-memory number)."""
    if device.startswith("cuda"):
        return "cuda_max_allocated"
    return "cpu_rss_growth_sampled_5ms" if rss_bytes() is not None else "cpu_unmeasured"


@contextlib.contextmanager
def _rss_peak(out: list[float], interval: float = 0.005) -> Iterator[None]:
    """Sample this process's RSS every ``interval`` s in a thread; ``out[0]`` = the peak's growth over
    the RSS at entry. The process-wide peak RSS (getrusage) cannot be used: it is usually set by
    training, so the rollout after it would always read 0."""
    import threading

    _release_free_heap()
    start = rss_bytes() or 0
    peak, stop = [start], threading.Event()

    def sample() -> None:
        while not stop.wait(interval):
            peak[0] = max(peak[0], rss_bytes() or 0)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        out[0] = max(peak[0], rss_bytes() or 0) - start


@contextlib.contextmanager
def peak_memory(device: str) -> Iterator[list[float]]:
    """Yields a one-item list that holds, on exit, the peak memory (bytes) of the enclosed code:
    ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the growth of the RSS above its value at
    entry, sampled every 5 ms; NaN where neither can be measured (never a default 0)."""
    import torch

    out: list[float] = [float("nan")]
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
        yield out
        out[0] = torch.cuda.max_memory_allocated(device)
    elif rss_bytes() is None:
        yield out
    else:
        with _rss_peak(out):
            yield out


# --------------------------------------------------------------------------------------------
#                                   Third-party noise
# --------------------------------------------------------------------------------------------

# Printed to stderr by `import gym` (a dependency of memory-maze and crafter) on every run: the user
# cannot act on it (rad-bench pins those environments), so it is dropped; all other output stays.
_UNACTIONABLE = (
    "Gym has been unmaintained since 2022",
    "Please upgrade to Gymnasium",
    "Users of this version of Gym",
    "See the migration guide at",
)


def import_quietly(module: str) -> Any:
    """``importlib.import_module(module)`` with the third-party notices in :data:`_UNACTIONABLE`
    removed from what it prints to stderr (everything else is passed through)."""
    import importlib
    import io
    import sys

    buf = io.StringIO()
    try:
        with contextlib.redirect_stderr(buf):
            return importlib.import_module(module)
    finally:
        kept = [line for line in buf.getvalue().splitlines(True) if not line.startswith(_UNACTIONABLE)]
        sys.stderr.write("".join(kept))


def set_threads(threads: int | None) -> None:
    """Use ``threads`` CPU threads for torch (None: torch's default, one per core); then, once, say
    so if the machine is already busy: on a shared 2-core machine torch's threads compete with the
    other work and a run can take ten times longer with no other sign of why."""
    import sys

    import torch

    if threads is not None:
        torch.set_num_threads(threads)
    cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load > cores and torch.get_num_threads() > 1:
        print(
            f"rad-bench: this machine is busy (load {load:.1f} on {cores} cores) and torch uses "
            f"{torch.get_num_threads()} thread(s); if other jobs share it, try --threads 1 (or OMP_NUM_THREADS=1)",
            file=sys.stderr,
        )


@contextlib.contextmanager
def phase(cell: str, what: str) -> Iterator[None]:
    """One line on stderr when a phase of a cell ends, with its wall time (``rad-bench: none-s0:
    train done in 41.2 s``): long phases without a bar (scoring with I3D, LPIPS) never look hung."""
    import sys
    import time

    start = time.perf_counter()
    print(f"rad-bench: {cell}: {what} ...", file=sys.stderr, flush=True)
    yield
    print(f"rad-bench: {cell}: {what} done in {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
