"""Check of the issue's calculation: at which noise levels does a noisy recall frame still show its own value?

At level k the frame is ``sqrt(ab) x0 + sqrt(1 - ab) eps``; the best guess of its value from the frame alone is
the nearest scaled rendering (the likelihood is Gaussian, the 32 values equally likely). Where that guess is
right, the window already has the answer and memory cannot lower the loss; where it fails, only memory can.
Prints, per shift: the last level where the frame alone identifies its value at least half the time, the share
of uniformly drawn training levels beyond it, and how many of 10 sampler steps start beyond it (even and snr
level spacing).

    python experiments/recall_recipe/visibility.py
"""

from __future__ import annotations

import torch

from rad_bench.data.recall import render_values
from rad_bench.model.diffusion import Diffusion


def accuracy(ab: float, n: int = 1000, size: int = 16) -> float:
    protos = render_values(size).flatten(1)
    g = torch.Generator().manual_seed(0)
    v = torch.randint(0, len(protos), (n,), generator=g)
    x = ab**0.5 * protos[v] + (1 - ab) ** 0.5 * torch.randn(n, protos.shape[1], generator=g)
    return float((torch.cdist(x, ab**0.5 * protos).argmin(1) == v).float().mean())


def main() -> None:
    print("shift | last level the frame alone identifies | training levels beyond | sampler steps beyond (even / snr)")
    for shift in (1.0, 2.0, 4.0, 8.0):
        d = Diffusion(1000, "x0", shift)
        levels = torch.arange(0, 1001, 5)  # every 5th level: the boundary to within 5 levels
        acc = torch.tensor([accuracy(float(d.alpha_bar[k])) for k in levels])
        visible = int(levels[(acc >= 0.5).nonzero().max()])
        beyond = float((torch.arange(1, 1001) > visible).float().mean())
        steps = [sum(k > visible for k in Diffusion(1000, "x0", shift, s).schedule(10)[:-1]) for s in ("even", "snr")]
        print(f"{shift:g} | {visible} | {beyond:.0%} | {steps[0]} / {steps[1]}")


if __name__ == "__main__":
    main()
