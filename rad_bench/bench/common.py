"""What every benchmark section shares: the sizes (full and ``--quick``), the :class:`Bench` context
(device, suite, data, diffusion), timing, logging and autocast helpers, and :func:`setup`."""

from __future__ import annotations

import contextlib
import platform
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from rad_bench.build import make_dataset
from rad_bench.config import Suite, load_suite
from rad_bench.data import Dataset
from rad_bench.model.diffusion import Diffusion

SUITE = Path(__file__).resolve().parents[2] / "suites" / "smoke_all.yaml"  # blocks: all
FP32, BF16 = "float32", "bf16-autocast"


@dataclass(frozen=True)
class Sizes:
    """How much work each section does; ``None`` means "the suite's value"."""

    clips: int | None  # rollout batch
    sampling_steps: int | None
    reps: int  # timed repetitions after one warm-up: the median and the spread (min .. max) are reported
    ssd_len: int
    ttt_len: int
    lstm_len: int
    scan_rows: int  # independent sequences (the b*n rows of a block)
    lstm_rows: int
    train_batch: int | None
    train_warmup: int
    train_steps: int
    matmul_n: int
    metric_frames: int
    i3d_clips: int
    modes_len: int = 32  # clip length of the training-mode comparison
    lengths: tuple[int, ...] = (1, 4, 16)  # rollout lengths in windows
    episodes: int = 16  # training worlds to generate (only sampled from here)


# full: about 2 min on 2 CPU cores at 2 repetitions (measured: 122 s at one thread), 5 now; quick: ~15 s, a
# smoke test of every path
FULL = Sizes(
    clips=None,
    sampling_steps=None,
    reps=5,
    ssd_len=1024,
    ttt_len=1024,
    lstm_len=256,
    scan_rows=16,
    lstm_rows=256,
    train_batch=None,
    train_warmup=2,
    train_steps=5,
    matmul_n=2048,
    metric_frames=256,
    i3d_clips=4,
)
QUICK = Sizes(
    clips=1,
    sampling_steps=1,
    reps=1,
    ssd_len=256,
    ttt_len=64,
    lstm_len=64,
    scan_rows=16,
    lstm_rows=64,
    train_batch=4,
    train_warmup=1,
    train_steps=2,
    matmul_n=512,
    metric_frames=32,
    i3d_clips=1,
    modes_len=8,
)


@dataclass
class Bench:
    """What every section needs: the device, the sizes, the suite and its data."""

    device: str
    sizes: Sizes
    suite: Suite
    data: Dataset
    diffusion: Diffusion
    name: str  # device model name
    out: Path = Path("results/bench")  # the bench's output folder (section 7 runs its suites under it)
    notes: list[str] = field(default_factory=list)

    @property
    def tag(self) -> str:
        """``cpu`` or ``cuda``: the device in file names and the ``device`` column."""
        return torch.device(self.device).type

    def row(self, **values: Any) -> dict[str, Any]:
        return {"device": self.tag, "device_name": self.name, **values}


_T0 = time.perf_counter()


def log(msg: str) -> None:
    print(f"[bench {time.perf_counter() - _T0:6.1f}s] {msg}", file=sys.stderr, flush=True)


def is_cuda(device: str) -> bool:
    return torch.device(device).type == "cuda"


def sync(device: str) -> None:
    if is_cuda(device):
        torch.cuda.synchronize(device)


@dataclass(frozen=True)
class Timing:
    """Seconds of each timed repetition of one call: its median and its spread (fastest, slowest)."""

    runs: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.runs)

    @property
    def lo(self) -> float:
        return min(self.runs)

    @property
    def hi(self) -> float:
        return max(self.runs)

    def minus(self, seconds: float) -> Timing:
        """Every repetition less a fixed cost (e.g. a rollout's context pass), kept above zero."""
        return Timing(tuple(max(r - seconds, 1e-9) for r in self.runs))

    def scaled(self, factor: float) -> Timing:
        return Timing(tuple(r * factor for r in self.runs))


def timed(fn: Callable[[], Any], device: str, reps: int) -> Timing:
    """``reps`` timed calls of ``fn`` after one untimed warm-up call."""
    fn()
    runs = []
    for _ in range(reps):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        runs.append(time.perf_counter() - t)
    return Timing(tuple(runs))


def time_best(fn: Callable[[], Any], device: str, reps: int) -> float:
    """Seconds of the fastest of ``reps`` calls of ``fn`` after a warm-up: for a peak, where the best is the
    quantity; comparisons use :func:`timed` and its spread."""
    return timed(fn, device, reps).lo


def device_name(device: str) -> str:
    if is_cuda(device):
        return torch.cuda.get_device_name(device)
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def autocast(device: str, dtype: str) -> contextlib.AbstractContextManager:
    if dtype == FP32:
        return contextlib.nullcontext()
    return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)


def randn(g: torch.Generator, device: str, *shape: int) -> Tensor:
    """Standard normal numbers drawn on the CPU by ``g`` (the same on every device), moved to ``device``."""
    return torch.randn(*shape, generator=g).to(device)


def setup(device: str, sizes: Sizes, out: Path = Path("results/bench")) -> Bench:
    """The smoke_all suite (every registered block), its dataset and diffusion, on ``device``, writing to ``out``."""
    suite = load_suite(SUITE, [f"data.episodes={sizes.episodes}"])
    diffusion = Diffusion.of(suite.diffusion)
    return Bench(device, sizes, suite, make_dataset(suite, seed=0), diffusion, device_name(device), out)
