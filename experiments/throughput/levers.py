"""Single-op timings behind docs/throughput.md's "Levers measured" (issue 25), one torch thread.

    python experiments/throughput/levers.py [--only rope,conv,matmul,attention,alloc,mlp_step,bf16,small_ops_step]

Each part prints milliseconds (median of 5 timed batches of calls) for the form in use and the alternatives it was
weighed against, at the sizes of the smoke suite's model (16 clips x 12 frames x 16 tokens, width 64, 4 heads):
- ``rope``: 2-D RoPE forward and forward+backward, the chunk-negate-concatenate form, a ``flip`` of a view, and
  the form in :func:`rad_bench.model.layers.apply_rope_2d`.
- ``conv``: Mamba2's depthwise causal conv, ``F.conv1d`` against :func:`rad_bench.ops.ssd.depthwise_conv1d`.
- ``matmul``: the MLP's first projection at 384, 385 (what parameter matching gives ``none``), 392 units.
- ``attention``: spatial attention (768 heads of 16 x 16), SDPA against its math backend and a hand-written one.
- ``alloc``: an elementwise product into a new 6 MB tensor against into an existing one.
- ``mlp_step``: whole training steps of ``none`` at ``suites/smoke.yaml``'s size with its matched MLP width and
  with that width rounded down to a multiple of 8 (3 x 10 steps each).
- ``bf16``: ATen's CPU capability, then matmuls in float32 against bfloat16 at the MLP's shapes and at 2048^3 (whole
  steps under bf16 autocast: ``steps.py SUITE --set train.precision=bf16``).
- ``small_ops_step``: whole training steps of ``none`` and ``mamba2`` at ``suites/recall.yaml``'s size, the model as
  it is against the two small ops that its profile ranks highest written with their own backward (the tanh-GELU
  as ``x * sigmoid(2u)``, RoPE's rotation), alternating, 3 x 20 steps each; first the rewrites' largest difference
  from the ops they stand for.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from dataclasses import replace

import torch
import torch.nn.functional as F

from rad_bench.model import layers
from rad_bench.model.layers import apply_rope_2d, rope_2d
from rad_bench.ops.ssd import depthwise_conv1d


def ms(fn: Callable[[], object], calls: int = 20) -> float:
    fn()
    runs = []
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append((time.perf_counter() - t) / calls * 1e3)
    return statistics.median(runs)


def fwd_bwd(fn: Callable[[], torch.Tensor]) -> tuple[float, float]:
    with torch.no_grad():
        forward = ms(fn)
    return forward, ms(lambda: fn().sum().backward())


def show(what: str, times: tuple[float, float]) -> None:
    print(f"{what:32s} fwd {times[0]:.3f} ms, fwd+bwd {times[1]:.3f} ms")


def halves(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x.chunk(2, dim=-1)
    return x * cos + torch.cat([-x2, x1], dim=-1) * sin


def rope() -> None:
    cos, sin = rope_2d(4, 16, torch.device("cpu"))
    x = torch.randn(192, 4, 16, 16, requires_grad=True)

    def old(x):
        return torch.cat([halves(x[..., :8], cos[:, :8], sin[:, :8]), halves(x[..., 8:], cos[:, 8:], sin[:, 8:])], -1)

    def flipped(x):
        s = sin.unflatten(-1, (2, 2, 4))
        signed = torch.cat([-s[..., :1, :], s[..., 1:, :]], -2).flatten(-3)
        return x * cos + x.unflatten(-1, (2, 2, 4)).flip(-2).flatten(-3) * signed

    for name, f in (("chunk-negate-cat", old), ("flip", flipped), ("in use", lambda x: apply_rope_2d(x, cos, sin))):
        assert torch.equal(f(x), old(x))
        show(f"rope {name}", fwd_bwd(lambda f=f: f(x)))


def conv() -> None:
    x, w, b = (torch.randn(*s, requires_grad=True) for s in ((256, 160, 15), (160, 4), (160,)))
    show("conv F.conv1d", fwd_bwd(lambda: F.conv1d(x, w[:, None], b, groups=160)))
    show("conv depthwise_conv1d", fwd_bwd(lambda: depthwise_conv1d(x, w, b)))


def matmul() -> None:
    x = torch.randn(3072, 64)
    for n in (384, 385, 392):
        w, b = torch.randn(n, 64), torch.randn(n)
        print(f"matmul 3072 x 64 x {n}: {ms(lambda w=w, b=b: F.linear(x, w, b)):.2f} ms")


def attention() -> None:
    from torch.nn.attention import SDPBackend, sdpa_kernel

    q, k, v = (torch.randn(192, 4, 16, 16, requires_grad=True) for _ in range(3))

    def math_backend():
        with sdpa_kernel(SDPBackend.MATH):
            return F.scaled_dot_product_attention(q, k, v)

    forms = {
        "sdpa": lambda: F.scaled_dot_product_attention(q, k, v),
        "sdpa math backend": math_backend,
        "by hand": lambda: ((q @ k.transpose(-1, -2)) * 0.25).softmax(-1) @ v,
    }
    for name, f in forms.items():
        show(f"attention {name}", fwd_bwd(f))


def alloc() -> None:
    y, w = torch.randn(256, 160, 12, 3), torch.randn(160, 1, 3)
    out = torch.empty_like(y)
    new, into = ms(lambda: y * w, 50), ms(lambda: torch.mul(y, w, out=out), 50)
    print(f"alloc: y * w into a new tensor {new:.2f} ms, into an existing one {into:.2f} ms")


def mlp_step() -> None:
    from rad_bench import build
    from rad_bench.config import load_suite
    from rad_bench.model.diffusion import Diffusion
    from rad_bench.train import train
    from rad_bench.utils import seed_everything

    suite = load_suite("suites/smoke.yaml", ["train.eval_every=0", "train.compile=off", "data.episodes=16"])
    data, diffusion = build.make_dataset(suite, seed=0), Diffusion.of(suite.diffusion)
    (spec,) = [s for s in suite.blocks if s.name == "none"]
    matched = build.matched_config
    for rounded in (False, True):

        def width(*args, rounded=rounded):
            cfg = matched(*args)
            return replace(cfg, mlp_hidden=cfg.mlp_hidden // 8 * 8) if rounded else cfg

        build.matched_config = width
        try:
            seed_everything(0)
            model = build.make_model(suite, spec, data, "cpu")
        finally:
            build.matched_config = matched
        cfg = lambda n: suite.train.model_copy(update={"steps": n})  # noqa: E731
        train(model, diffusion, data, cfg(3), seed=0, device="cpu", progress=False)
        runs = [train(model, diffusion, data, cfg(10), seed=0, device="cpu", progress=False).step_s for _ in range(3)]
        width = model.layers[0].mlp.net[0].out_features
        print(f"mlp_step none, MLP {width} units: " + ", ".join(f"{r * 1e3:.1f}" for r in sorted(runs)) + " ms/step")


def bf16() -> None:
    print(f"bf16: ATen CPU capability {torch.backends.cpu.get_cpu_capability()}")
    for m, k, n in ((3072, 64, 385), (1024, 64, 641), (2048, 2048, 2048)):
        a, b = torch.randn(m, k), torch.randn(k, n)
        a16, b16 = a.bfloat16(), b.bfloat16()
        calls = 3 if m == 2048 else 20
        f32, f16 = ms(lambda a=a, b=b: a @ b, calls), ms(lambda a=a16, b=b16: a @ b, calls)
        flop = 2 * m * k * n / 1e6
        print(
            f"bf16: matmul {m} x {k} x {n}: float32 {f32:.2f} ms ({flop / f32:.0f} GFLOP/s), bfloat16 {f16:.2f} ms "
            f"({flop / f16:.0f} GFLOP/s)"
        )


class _GeluTanh(torch.autograd.Function):
    """``0.5 x (1 + tanh(u)) = x sigmoid(2u)``, ``u = sqrt(2/pi) (x + 0.044715 x^3)``: one sigmoid, no tanh."""

    @staticmethod
    def forward(ctx, x):
        c = 2 * (2 / torch.pi) ** 0.5
        s = torch.sigmoid_((x * x).mul_(0.044715).add_(1.0).mul_(x).mul_(c))
        ctx.save_for_backward(x, s)
        return x * s

    @staticmethod
    def backward(ctx, g):
        x, s = ctx.saved_tensors
        c = 2 * (2 / torch.pi) ** 0.5
        du = (x * x).mul_(3 * 0.044715 * c).add_(c)
        return g * (1 - s).mul_(s).mul_(x).mul_(du).add_(s)


class _Rotate(torch.autograd.Function):
    """``x cos + swap(x) signed``; its gradient ``g cos + swap(g signed)`` (a half swap is its own inverse)."""

    @staticmethod
    def forward(ctx, x, cos, signed, groups):
        ctx.save_for_backward(cos, signed)
        ctx.groups = groups
        return x * cos + _swap(x, groups) * signed

    @staticmethod
    def backward(ctx, g):
        cos, signed = ctx.saved_tensors
        return g * cos + _swap(g * signed, ctx.groups), None, None, None


def _swap(x: torch.Tensor, groups: int) -> torch.Tensor:
    v = x.unflatten(-1, (groups, 2, x.shape[-1] // (2 * groups)))
    return torch.cat([v[..., 1:, :], v[..., :1, :]], dim=-2).flatten(-3)


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, groups: int) -> torch.Tensor:
    s = sin.unflatten(-1, (groups, 2, sin.shape[-1] // (2 * groups)))
    return _Rotate.apply(x, cos, torch.cat([-s[..., :1, :], s[..., 1:, :]], dim=-2).flatten(-3), groups)


def small_ops_step() -> None:
    from rad_bench import build
    from rad_bench.config import load_suite
    from rad_bench.model.diffusion import Diffusion
    from rad_bench.train import train
    from rad_bench.utils import seed_everything

    torch.manual_seed(0)
    x = torch.randn(4, 641, dtype=torch.float64, requires_grad=True)
    cos, sin = rope_2d(2, 16, x.device)
    y = torch.randn(8, 4, 4, 16, requires_grad=True)  # the tables are float32, and so is the op's arithmetic
    gelu = (_GeluTanh.apply(x) - F.gelu(x, approximate="tanh")).abs().max().item()
    g = torch.randn_like(y)
    (ours,) = torch.autograd.grad(_rotate(y, cos, sin, 2), y, g)
    (theirs,) = torch.autograd.grad(apply_rope_2d(y, cos, sin), y, g)
    rope = (_rotate(y, cos, sin, 2) - apply_rope_2d(y, cos, sin)).abs().max().item()
    print(f"small_ops_step: rewrites against the ops: gelu {gelu:.1e} (float64), rope {rope:.1e} (float32)")
    print(
        f"small_ops_step: gradients: gelu passes gradcheck {torch.autograd.gradcheck(_GeluTanh.apply, (x[:1, :8],))}, "
        f"rope {(ours - theirs).abs().max().item():.1e} from autograd's"
    )
    suite = load_suite("suites/recall.yaml", ["train.eval_every=0", "train.compile=off"])
    data, diffusion = build.make_dataset(suite, seed=0), Diffusion.of(suite.diffusion)
    rotate, cfg = layers._rotate, lambda n: suite.train.model_copy(update={"steps": n})
    for name in ("none", "mamba2"):
        for rewritten in (False, True, False, True):
            (spec,) = [s for s in suite.blocks if s.name == name]
            seed_everything(0)
            model = build.make_model(suite, spec, data, "cpu")
            if rewritten:
                layers._rotate = _rotate
                for m in model.modules():
                    if isinstance(m, torch.nn.GELU) and m.approximate == "tanh":
                        m.forward = _GeluTanh.apply
            try:
                train(model, diffusion, data, cfg(5), seed=0, device="cpu", progress=False)
                runs = [train(model, diffusion, data, cfg(20), seed=0, device="cpu", progress=False) for _ in range(3)]
            finally:
                layers._rotate = rotate
            form = "rewritten" if rewritten else "as is"
            times = ", ".join(f"{r.step_s * 1e3:.1f}" for r in sorted(runs, key=lambda r: r.step_s))
            print(f"small_ops_step {name:6s} {form:9s}: {times} ms/step", flush=True)


PARTS = {
    "rope": rope,
    "conv": conv,
    "matmul": matmul,
    "attention": attention,
    "alloc": alloc,
    "mlp_step": mlp_step,
    "bf16": bf16,
    "small_ops_step": small_ops_step,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", default=",".join(PARTS))
    a = p.parse_args()
    torch.set_num_threads(1)
    for name in a.only.split(","):
        PARTS[name]()


if __name__ == "__main__":
    main()
