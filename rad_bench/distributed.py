"""Distributed helpers for runs under ``torchrun`` (DDP): the process group, rank 0 as the one writer, barriers
and broadcasts. In a single process every helper is a no-op (rank 0 of 1). torch is imported lazily.
"""

from __future__ import annotations

import os
from typing import Any

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
