"""I3D feature time (FVD's network) on one thread, as loaded and with its weights in ``channels_last_3d`` (issue 25).

    python experiments/throughput/i3d.py [--videos 8] [--frames 16] [--repeats 2]

Random clips at the smoke suite's 16 px, resized to 224 px inside :func:`rad_bench.metrics.i3d.i3d_features`;
prints seconds per call of each layout and the largest feature difference between them."""

from __future__ import annotations

import argparse
import time

import torch

from rad_bench.metrics.i3d import i3d_features, i3d_net


def timed(videos: torch.Tensor, repeats: int) -> tuple[float, torch.Tensor]:
    """Median seconds of ``repeats`` calls, and the features."""
    times, feats = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        feats = i3d_features(videos)
        times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2], torch.as_tensor(feats)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--repeats", type=int, default=2)
    a = p.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    videos = torch.rand(a.videos, a.frames, 3, 16, 16, generator=g) * 2 - 1
    i3d_features(videos[:1])  # load the weights outside the timing
    plain, f0 = timed(videos, a.repeats)
    i3d_net("cpu").to(memory_format=torch.channels_last_3d)
    last, f1 = timed(videos, a.repeats)
    diff = (f1 - f0).abs().max().item()
    saved = 1 - last / plain
    print(f"{a.videos} videos x {a.frames} frames, one thread: as loaded {plain:.2f} s, channels_last_3d {last:.2f} s")
    print(f"({saved:.0%} less), largest feature difference {diff:.1e}")


if __name__ == "__main__":
    main()
