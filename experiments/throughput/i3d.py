"""I3D feature time (FVD's network) on one thread: the network as the checkpoint lays it out against the one
:func:`rad_bench.metrics.i3d.i3d_net` serves (BatchNorm folded, 1x1 convolutions stacked, channels_last_3d;
issue 25), in alternating calls.

    python experiments/throughput/i3d.py [--videos 8] [--frames 16] [--repeats 3] [--layers 8]

Random clips at the smoke suite's 16 px, resized to 224 px as :func:`rad_bench.metrics.i3d.i3d_features` does;
prints the median seconds per call of each network and the largest feature difference between them. With
``--layers N``: then each network's N slowest layers (convolution units and max-pools, by input shape) in one
more call, and their share of it."""

from __future__ import annotations

import argparse
import statistics
import time
from collections import Counter

import torch

from rad_bench.metrics import i3d
from rad_bench.metrics.i3d import i3d_net, layer_by_layer_net, resize_clips


def layer_times(net: torch.nn.Module, clips: torch.Tensor) -> tuple[Counter[str], float]:
    """Seconds per layer (units by kernel and input shape, max-pools by kernel, stride and input layout) of one call,
    and the call's seconds."""
    spent: Counter[str] = Counter()
    pool = i3d.max_pool_same

    def timed_pool(x: torch.Tensor, kernel: tuple, stride: tuple) -> torch.Tensor:
        t0 = time.perf_counter()
        y = pool(x, kernel, stride)
        layout = "channels_last_3d" if x.is_contiguous(memory_format=torch.channels_last_3d) else "default layout"
        spent[f"max-pool {kernel} stride {stride} on {tuple(x.shape[1:])}, {layout}"] += time.perf_counter() - t0
        return y

    def before(unit: torch.nn.Module, args: tuple) -> None:
        unit.t0 = time.perf_counter()

    def after(unit: torch.nn.Module, args: tuple, out: torch.Tensor) -> None:
        shape = tuple(args[0].shape[1:])
        name = f"conv {unit.kernel} {shape[0]} -> {out.shape[1]} channels on {shape[1:]}"
        spent[name] += time.perf_counter() - unit.t0

    units = [m for m in net.modules() if isinstance(m, i3d.Unit3D)]
    hooks = [u.register_forward_pre_hook(before) for u in units] + [u.register_forward_hook(after) for u in units]
    i3d.max_pool_same = timed_pool
    try:
        t0 = time.perf_counter()
        with torch.no_grad():
            net(clips)
        total = time.perf_counter() - t0
    finally:
        i3d.max_pool_same = pool
        for h in hooks:
            h.remove()
    return spent, total


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--videos", type=int, default=8)
    p.add_argument("--frames", type=int, default=16)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--layers", type=int, default=0, help="then list each network's N slowest layers")
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
    for k, net in nets.items() if a.layers else ():
        spent, total = layer_times(net, clips)
        print(f"{k}: {total:.2f} s in one call, slowest layers:")
        for name, sec in spent.most_common(a.layers):
            print(f"  {sec:6.3f} s ({sec / total:4.0%})  {name}")


if __name__ == "__main__":
    main()
