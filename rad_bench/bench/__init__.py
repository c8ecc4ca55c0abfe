"""Efficiency benchmark: rollout cost vs length, scans, training throughput, metric throughput.

    rad-bench bench [--quick] [--out results/bench] [--device auto|cpu|cuda]
    (also: make bench, python -m rad_bench.bench ...)

Every number comes from one run on one machine, so ratios never mix devices. Every CSV row has a
``device`` column and every file name but ``env.json`` and ``summary.md`` states the device
(``<section>-<device>.csv``): use a separate ``--out`` per machine. Sections, one module each:

1. ``rollout`` (:mod:`~rad_bench.bench.rollout`): each registered block in the ``smoke_all`` model
   (untrained), rolled out with :func:`rad_bench.rollout.rollout` for 1x, 4x and 16x the attention
   window after a fixed context. ``ms_per_frame`` is the time of one rollout step (one new frame for
   each of the ``batch`` clips: ``sampling_steps`` denoising calls + one commit), the context pass
   subtracted; state bytes are :meth:`DiTState.nbytes` after the last frame. Peak memory is
   ``torch.cuda.max_memory_allocated`` on CUDA; on CPU it is the growth of the process-wide peak RSS
   (0 = no new process peak).
2. ``scans`` (:mod:`~rad_bench.bench.scans`): Mamba2 chunked SSD vs its sequential recurrence, TTT
   dual vs primal form, the fused LSTM scan (``LSTMCell.scan``) vs ``torch.nn.LSTM``, forward (no
   grad) and forward+backward, at the widths of the ``smoke_all`` model; on CUDA also the
   ``mamba_ssm`` kernel when it imports.
3. ``train`` (:mod:`~rad_bench.bench.training`): steps/s and frames/s of :func:`rad_bench.train.train`
   per block, FLOPs per step (forward + backward, ``FlopCounterMode``: matmuls, convs and attention
   only) and their rate as a fraction of a measured float32 matmul rate.
4. ``modes`` (:mod:`~rad_bench.bench.training`): forward + backward time of one training batch of
   ``modes_len`` (32) frames for the recurrent blocks, trained ``chunk``-wise, ``frame``-wise with the
   state prefetch (with and without gradient through it) and by the naive window-after-window loop
   that defines it.
5. ``metrics`` (:mod:`~rad_bench.bench.metrics`): frames/s of PSNR, SSIM, LPIPS and I3D features
   (skipped with a note when the weight packages are missing).
6. ``steps`` (:mod:`~rad_bench.bench.steps`): each block's training step against ``none``'s at one torch thread,
   at the recall suite's size and the smoke size (``smoke_all``); target: no block slower than 2x.
7. ``suites`` (:mod:`~rad_bench.bench.suites`, CPU only): training steps per wall second of whole runs
   of a subset of ``suites/recall.yaml`` and ``suites/smoke.yaml`` as they were at commit a2ad65d, by that commit's
   code and by this checkout's, one after the other (15-20 minutes; the runs stay under ``--out/suites/``);
   target 2x. Needs a full git clone; otherwise a note.
8. ``gpu`` (:mod:`~rad_bench.bench.gpu`, CUDA only, ``gpu-cuda.csv``): training steps/s per block at
   the ``tiny`` and ``dit_s`` presets with the fast path, their MFU against a bf16 matmul peak measured
   in the same run, and the SSD kernel vs the chunked reference; on CPU a note in ``summary.md``.

On CUDA the rollout is also timed under bf16 autocast (rows with ``dtype = bf16-autocast``).
Outputs under ``--out``: ``{rollout,scans,train,modes,metrics,steps,suites}-<device>.csv``, ``env.json``,
``summary.md`` (:mod:`~rad_bench.bench.summary`: ratios with targets, PASS/MISS) and
``rollout_ms_per_frame-<device>.png``. ``--section NAME`` (repeatable) runs only the named sections
(``make gpu-check`` runs ``gpu`` alone: on an H100 every section at full sizes takes well over the
check's minutes, most of it compiling each block's training step).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from rad_bench.bench.common import FULL, QUICK, Bench, log, setup
from rad_bench.bench.gpu import bench_gpu
from rad_bench.bench.metrics import bench_metrics
from rad_bench.bench.rollout import bench_rollout
from rad_bench.bench.scans import bench_scans
from rad_bench.bench.steps import bench_steps
from rad_bench.bench.suites import bench_suites
from rad_bench.bench.summary import plot_rollout, summary_md
from rad_bench.bench.training import bench_modes, bench_train
from rad_bench.results import write_csv
from rad_bench.utils import atomic_write_bytes, atomic_write_text, env_info, resolve_device, write_json

SECTIONS = ("rollout", "scans", "train", "modes", "metrics", "steps", "suites")
ALL_SECTIONS = (*SECTIONS, "gpu")
RUNNERS: dict[str, Callable[[Bench], list[dict[str, Any]]]] = {
    "rollout": bench_rollout,
    "scans": bench_scans,
    "train": bench_train,
    "modes": bench_modes,
    "metrics": bench_metrics,
    "steps": bench_steps,
    "suites": bench_suites,
}


def run(
    out: Path,
    *,
    quick: bool = False,
    device: str = "auto",
    argv: list[str] | None = None,
    sections: tuple[str, ...] = ALL_SECTIONS,
) -> Path:
    """The ``sections`` (default: all) on ``device`` (``auto``: cuda when available) at full or ``quick``
    sizes; CSVs, ``env.json``, ``summary.md`` and the rollout figure into ``out``, which is returned."""
    unknown = sorted(set(sections) - set(ALL_SECTIONS))
    if unknown:
        raise ValueError(f"unknown bench section(s) {unknown}; choose from {list(ALL_SECTIONS)}")
    start = time.perf_counter()
    b = setup(resolve_device(device), QUICK if quick else FULL, out)
    env = {**env_info(b.device), "device_name": b.name, "quick": quick, "sizes": asdict(b.sizes)}
    env.update(sections=list(sections), argv=sys.argv if argv is None else argv)
    write_json(out / "env.json", env)
    log(f"{b.tag} ({b.name}), {torch.get_num_threads()} threads, blocks {[s.name for s in b.suite.blocks]}")
    results = {}
    for name in (s for s in SECTIONS if s in sections):
        log(f"== {name}")
        results[name] = RUNNERS[name](b)
        if results[name]:  # suites: none when the baseline is not in this checkout (a note says so)
            write_csv(out / f"{name}-{b.tag}.csv", results[name])
    if "gpu" in sections:
        log("== gpu")
        results["gpu"] = bench_gpu(b)  # CUDA only; on CPU a note in summary.md
        if results["gpu"]:
            write_csv(out / f"gpu-{b.tag}.csv", results["gpu"])
    if "rollout" in results:
        atomic_write_bytes(out / f"rollout_ms_per_frame-{b.tag}.png", plot_rollout(results["rollout"], b.name))
    atomic_write_text(out / "summary.md", summary_md(b, env, results, time.perf_counter() - start))
    log(f"wrote {out} in {time.perf_counter() - start:.0f} s")
    return out
