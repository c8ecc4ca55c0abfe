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


def resolve_device(name: str) -> str:
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{name}' requested but CUDA is not available; use device: auto or cpu")
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


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


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
#                                   Distributed (torchrun)
# --------------------------------------------------------------------------------------------

DIST_TIMEOUT_S = 6 * 3600  # ranks > 0 wait at a barrier while rank 0 rolls out and scores a cell


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def is_main() -> bool:
    """True on rank 0 (and in a single process): the one process that logs and writes files."""
    return rank() == 0


def init_distributed(device: str) -> str:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1): NCCL on CUDA with
    ``cuda:LOCAL_RANK``, gloo on CPU. Returns this process's device; a no-op in a single process."""
    import datetime

    import torch
    import torch.distributed as dist

    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return device
    if device.startswith("cuda"):
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        backend = "nccl" if device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, timeout=datetime.timedelta(seconds=DIST_TIMEOUT_S))
    return device


def close_distributed() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def barrier() -> None:
    import torch
    import torch.distributed as dist

    if world_size() > 1:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (picklable objects: paths, flags, small lists)."""
    import torch.distributed as dist

    if world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def all_mean(x: Any) -> Any:
    """Mean of a tensor over ranks (a detached copy); the tensor itself in a single process."""
    import torch.distributed as dist

    if world_size() == 1:
        return x
    y = x.detach().clone()
    dist.all_reduce(y)
    return y / world_size()


# --------------------------------------------------------------------------------------------
#                                   Peak memory
# --------------------------------------------------------------------------------------------


def max_rss_bytes() -> int:
    """Peak resident set size of this process so far (Linux reports KiB, macOS bytes)."""
    import resource
    import sys

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss if sys.platform == "darwin" else rss * 1024


def peak_kind(device: str) -> str:
    """What :func:`peak_memory` measures on ``device`` (written next to every peak-memory number)."""
    return "cuda_max_allocated" if device.startswith("cuda") else "cpu_maxrss_growth_process_wide"


@contextlib.contextmanager
def peak_memory(device: str) -> Iterator[list[int]]:
    """Yields a one-item list that holds, on exit, the peak memory (bytes) of the enclosed code:
    ``torch.cuda.max_memory_allocated`` on CUDA; on CPU the growth of the process-wide peak RSS
    (0 when the code did not raise the process's peak)."""
    import torch

    out = [0]
    cuda = device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats(device)
    rss0 = max_rss_bytes()
    yield out
    out[0] = torch.cuda.max_memory_allocated(device) if cuda else max_rss_bytes() - rss0
