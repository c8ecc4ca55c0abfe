"""I3D feature time (FVD's network) on one thread: the network as the checkpoint lays it out against the one
:func:`rad_bench.metrics.i3d.i3d_net` serves (BatchNorm folded, 1x1 convolutions stacked, channels_last_3d;
issue 25), in alternating calls.

    python experiments/throughput/i3d.py [--videos 8] [--frames 16] [--repeats 3]

Random clips at the smoke suite's 16 px, resized to 224 px as :func:`rad_bench.metrics.i3d.i3d_features` does;
prints the median seconds per call of each network and the largest feature difference between them."""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from rad_bench.metrics.i3d import i3d_net, layer_by_layer_net, resize_clips


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    a = p.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    clips = resize_clips(torch.rand(a.videos, a.frames, 3, 16, 16, generator=g) * 2 - 1)
    nets = {"layer by layer": layer_by_layer_net("cpu"), "i3d_net": i3d_net("cpu")}
    times: dict[str, list[float]] = {k: [] for k in nets}
    feats = {}
    with torch.no_grad():
        for net in nets.values():  # warm-up (first-call allocations), outside the timing
            net(clips[:1])
        for _ in range(a.repeats):
            for k, net in nets.items():
                t0 = time.perf_counter()
                feats[k] = net(clips)
                times[k].append(time.perf_counter() - t0)
    before, after = (statistics.median(times[k]) for k in nets)
    diff = (feats["i3d_net"] - feats["layer by layer"]).abs().max().item()
    scale = feats["layer by layer"].abs().max().item()
    print(f"{a.videos} videos x {a.frames} frames, one thread, median of {a.repeats}:")
    print(f"  layer by layer {before:.2f} s, i3d_net {after:.2f} s ({after / before:.2f}x the time)")
    print(f"  largest feature difference {diff:.1e} (features up to {scale:.1f})")


if __name__ == "__main__":
    main()
