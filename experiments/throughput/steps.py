"""Training-step time per block for one suite, eager and compiled, at 1 or 2 threads (issue 25).

    python experiments/throughput/steps.py suites/recall.yaml --threads 1 --steps 30 [--compile] [--profile N]

Times ``rad_bench.train.train`` as the runner calls it (the suite's model, data and diffusion, first sweep point),
after ``--warmup`` untimed steps (which include compiling); prints seconds per step per block. ``--profile N``
records N steps under ``torch.profiler`` and prints one markdown row per block: milliseconds per step of self CPU
time in each class of op (matmul, attention, elementwise, norm, layout and copies, optimizer, other); with
``--top K`` also the K ops with the most self CPU time, with their input shapes."""

from __future__ import annotations

import argparse
import sys
import time

import torch

from rad_bench.build import make_dataset, make_model
from rad_bench.config import load_suite
from rad_bench.model.diffusion import Diffusion
from rad_bench.train import train
from rad_bench.utils import seed_everything

CATEGORIES = ("matmul", "attention", "elementwise", "norm", "layout", "optimizer", "other")
_MATMUL = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear")
_LAYOUT = (
    "aten::copy_",
    "aten::cat",
    "aten::stack",
    "aten::clone",
    "aten::contiguous",
    "aten::empty",
    "aten::fill_",
    "aten::zero_",
    "aten::zeros",
    "aten::ones",
    "aten::index",
    "aten::slice",
    "aten::view",
    "aten::as_strided",
    "aten::t",
    "aten::transpose",
    "aten::permute",
    "aten::reshape",
    "aten::expand",
    "aten::select",
    "aten::unsqueeze",
    "aten::squeeze",
    "aten::split",
    "aten::chunk",
    "aten::narrow",
    "aten::_to_copy",
    "aten::to",
    "aten::unbind",
    "aten::resize_",
    "aten::empty_strided",
    "aten::new_zeros",
    "aten::detach",
)


def category(name: str) -> str:
    """The time class of one profiler op (self CPU time; autograd wrappers count as "other")."""
    if name.startswith("Optimizer") or "adam" in name.lower() or "_foreach" in name:
        return "optimizer"
    if "scaled_dot_product" in name or "softmax" in name:
        return "attention"
    if name in _MATMUL:
        return "matmul"
    if "norm" in name or name in ("aten::var", "aten::var_mean", "aten::std", "aten::rsqrt"):
        return "norm"
    if name in _LAYOUT:
        return "layout"
    if name.startswith("aten::"):
        return "elementwise"
    return "other"


def categories(prof, steps: int) -> dict[str, float]:
    """Milliseconds per step of self CPU time in each of CATEGORIES."""
    out = dict.fromkeys(CATEGORIES, 0.0)
    for e in prof.key_averages():
        out[category(e.key)] += e.self_cpu_time_total / 1000 / steps
    return out


def print_top(prof, steps: int, k: int) -> None:
    """The ``k`` (op, input shapes) pairs with the most self CPU time: ms per step and calls per step."""
    rows = sorted(prof.key_averages(group_by_input_shape=True), key=lambda e: -e.self_cpu_time_total)[:k]
    for e in rows:
        shapes = ", ".join(str(tuple(s)) for s in e.input_shapes if s)
        ms, calls = e.self_cpu_time_total / 1000 / steps, e.count / steps
        print(f"    {ms:6.2f} ms  {calls:5.1f} calls  {e.key:40s} {shapes[:90]}")


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("suite")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--warmup", type=int, default=5)
    p.add_argument("--compile", action="store_true")
    p.add_argument("--blocks", default="")
    p.add_argument("--profile", type=int, default=0)
    p.add_argument("--set", action="append", default=[])
    p.add_argument("--repeats", type=int, default=3, help="timed runs of --steps: median and range")
    p.add_argument("--top", type=int, default=0, help="with --profile: list the K ops with the most self time")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    sets = [*a.set, "train.eval_every=0", f"train.compile={'on' if a.compile else 'off'}"]
    suite = load_suite(a.suite, sets)
    data = make_dataset(suite, seed=0)
    diffusion = Diffusion.of(suite.diffusion)
    if a.profile:
        print("| block | ms/step (profiled) | " + " | ".join(CATEGORIES) + " |")
        print("|---" * (len(CATEGORIES) + 2) + "|")
    for spec in suite.blocks:
        if a.blocks and spec.name not in a.blocks.split(","):
            continue
        seed_everything(0)
        model = make_model(suite, spec, data, "cpu")
        steps = lambda n: train(  # noqa: E731
            model, diffusion, data, suite.train.model_copy(update={"steps": n}), seed=0, device="cpu", progress=False
        )
        t0 = time.perf_counter()
        steps(a.warmup)
        warm = time.perf_counter() - t0
        if a.profile:
            from torch.profiler import ProfilerActivity, profile

            with profile(activities=[ProfilerActivity.CPU], record_shapes=a.top > 0) as prof:
                st = steps(a.profile)
            cells = " | ".join(f"{v:.0f}" for v in categories(prof, a.profile).values())
            print(f"| {spec.display} | {st.step_s * 1000:.0f} | {cells} |", flush=True)
            if a.top:
                print_top(prof, a.profile, a.top)
            continue
        runs = sorted(steps(a.steps).step_s * 1000 for _ in range(a.repeats))
        print(
            f"{spec.display:12s} median {runs[len(runs) // 2]:7.1f} ms/step (range {runs[0]:.1f} .. {runs[-1]:.1f}, "
            f"{a.repeats} x {a.steps} steps); first {a.warmup} steps (compiling, if on) {warm:6.1f} s",
            flush=True,
        )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
