"""Section 2, ``scans``: the fast form of each recurrence against its baseline on the same inputs,
forward and forward+backward, at the widths of the smoke_all model: Mamba2's chunked SSD vs its
sequential recurrence (and the ``mamba_ssm`` kernel on CUDA), TTT's dual vs primal form, and the
LSTM's fused scan vs ``torch.nn.LSTM``."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from rad_bench.bench.common import Bench, Timing, is_cuda, log, randn, timed
from rad_bench.build import model_config
from rad_bench.registry import BLOCKS

# (op, fast impl, baseline impl, min speedup of fast over baseline or None)
SCAN_PAIRS: tuple[tuple[str, str, str, float | None], ...] = (
    ("ssd", "chunked", "sequential", 5.0),
    ("ssd", "kernel", "chunked", None),
    ("ttt", "dual", "primal", 3.0),
    ("lstm", "LSTMCell.scan", "torch.nn.LSTM", 1.0),
)


def time_op(b: Bench, fn: Callable[..., Tensor], inputs: tuple[Tensor, ...], mode: str) -> Timing:
    """Seconds of each timed ``fn(*inputs)``: ``fwd`` without grad, ``fwd+bwd`` with ``.sum().backward()``
    and every floating-point input a leaf that requires grad."""
    if mode == "fwd":

        def call() -> None:
            with torch.no_grad():
                fn(*inputs)

    else:
        leaves = tuple(t.detach().requires_grad_() if t.is_floating_point() else t for t in inputs)

        def call() -> None:
            fn(*leaves).sum().backward()

    return timed(call, b.device, b.sizes.reps)


def scan_rows(
    b: Bench, op: str, impls: dict[str, Callable[..., Tensor]], inputs: tuple[Tensor, ...], length: int, config: str
) -> list[dict[str, Any]]:
    """Forward and forward+backward time of each implementation of one op on the same inputs."""
    rows, n = [], inputs[0].shape[0]
    for mode in ("fwd", "fwd+bwd"):
        for impl, fn in impls.items():
            t = time_op(b, fn, inputs, mode)
            rows.append(
                b.row(
                    op=op,
                    impl=impl,
                    mode=mode,
                    length=length,
                    rows=n,
                    config=config,
                    ms=1e3 * t.median,
                    ms_lo=1e3 * t.lo,
                    ms_hi=1e3 * t.hi,
                    reps=len(t.runs),
                )
            )
            log(f"scan {op} {impl:14s} {mode:7s} length {length}: {1e3 * t.median:.1f} ms")
    return rows


def ssd_inputs(b: Bench, length: int) -> tuple[tuple[Tensor, ...], int, str]:
    """Inputs shaped as in the smoke_all model's Mamba2 block (block defaults), and its chunk size."""
    defaults = {k: p.default for k, p in inspect.signature(BLOCKS.get("mamba2").__init__).parameters.items()}
    cfg = model_config(b.suite, b.data)
    e = defaults["expand"] * cfg.dim
    h, s, rows = cfg.heads, defaults["d_state"], b.sizes.scan_rows
    g = torch.Generator().manual_seed(0)
    x = randn(g, b.device, rows, length, h, e // h)
    bm, cm = (randn(g, b.device, rows, length, 1, s) for _ in "BC")  # one group of B, C (ngroups=1)
    dt = F.softplus(randn(g, b.device, rows, length, h) - 3.0)  # small steps: a long memory
    A = -torch.linspace(1.0, 16.0, h, device=b.device)
    chunk = defaults["chunk_size"]
    return (x, dt, A, bm, cm), chunk, f"heads={h} headdim={e // h} d_state={s} chunk={chunk}"


def bench_ssd(b: Bench) -> list[dict[str, Any]]:
    """Mamba2's chunked SSD vs its sequential recurrence (and the ``mamba_ssm`` kernel when it runs here)."""
    from rad_bench.ops.ssd import ssd, ssd_chunked, ssd_impl, ssd_ref

    inputs, chunk, config = ssd_inputs(b, b.sizes.ssd_len)
    impls: dict[str, Callable[..., Tensor]] = {
        "sequential": lambda *t: ssd_ref(*t)[0],
        "chunked": lambda *t: ssd_chunked(*t, chunk)[0],
    }
    if is_cuda(b.device) and ssd_impl(torch.device(b.device), b.suite.impl) == "kernel":
        impls["kernel"] = lambda *t: ssd(*t, chunk, requested="kernel")[0]
    elif is_cuda(b.device):
        b.notes.append("SSD kernel rows absent: mamba_ssm does not import here (or RAD_BENCH_IMPL=ref).")
    return scan_rows(b, "ssd", impls, inputs, b.sizes.ssd_len, config)


def bench_ttt(b: Bench, mini_batch: int = 16) -> list[dict[str, Any]]:
    """TTT-Linear's dual form vs its primal (per-token weights) form."""
    from rad_bench.ops.ttt import ttt_dual, ttt_init_state, ttt_primal_ref

    cfg = model_config(b.suite, b.data)
    h, e, rows, length = cfg.heads, cfg.dim // cfg.heads, b.sizes.scan_rows, b.sizes.ttt_len
    g = torch.Generator().manual_seed(0)
    q, k, v = (randn(g, b.device, rows, h, length, e) for _ in "qkv")
    eta = torch.sigmoid(randn(g, b.device, rows, h, length)) / e  # the block's eta, base_lr 1
    ln_w, ln_b = torch.ones(h, e, device=b.device), torch.zeros(h, e, device=b.device)
    w0 = {"w1": 0.02 * randn(g, b.device, rows, h, e, e), "b1": torch.zeros(rows, h, 1, e, device=b.device)}
    state = ttt_init_state(w0)
    impls: dict[str, Callable[..., Tensor]] = {
        name: (lambda *t, f=f: f(*t, ln_w, ln_b, state, mini_batch, "linear")[0])
        for name, f in (("primal", ttt_primal_ref), ("dual", ttt_dual))
    }
    config = f"inner=linear heads={h} head_dim={e} mini_batch={mini_batch}"
    return scan_rows(b, "ttt", impls, (q, k, v, eta), length, config)


def bench_lstm(b: Bench) -> list[dict[str, Any]]:
    """The fused LSTM scan that ``LSTMCell.scan`` runs (:func:`rad_bench.ops.lstm.lstm_scan`) vs ``nn.LSTM``."""
    from rad_bench.ops.lstm import lstm_scan

    d = model_config(b.suite, b.data).dim
    rows, length = b.sizes.lstm_rows, b.sizes.lstm_len
    gates, ref = torch.nn.Linear(2 * d, 4 * d).to(b.device), torch.nn.LSTM(d, d, batch_first=True).to(b.device)
    h0 = torch.zeros(rows, d, device=b.device)
    x = randn(torch.Generator().manual_seed(0), b.device, rows, length, d)
    impls: dict[str, Callable[..., Tensor]] = {
        "torch.nn.LSTM": lambda t: ref(t, (h0[None], h0[None]))[0],
        "LSTMCell.scan": lambda t: lstm_scan(t, h0, h0, gates.weight, gates.bias, training=True)[0],
    }
    return scan_rows(b, "lstm", impls, (x,), length, f"d_in={d} hidden={d}")


def bench_scans(b: Bench) -> list[dict[str, Any]]:
    """Rows of every scan pair (:data:`SCAN_PAIRS`)."""
    return bench_ssd(b) + bench_ttt(b) + bench_lstm(b)
