"""SSD, the scan inside Mamba2 (Dao & Gu 2024, "Transformers are SSMs", https://arxiv.org/abs/2405.21060).

Three implementations of one recurrence, per head ``h`` with state ``S: (p, s)``::

    S_t = exp(dt_t * A) * S_{t-1} + dt_t * x_t ⊗ B_t        y_t = S_t · C_t

- :func:`ssd_ref`: the recurrence as written, one step per frame. The test oracle.
- :func:`ssd_chunked`: the chunked SSD algorithm (paper §6, Listing 1) in einsum with numbered
  steps. Same result, O(l / chunk) sequential depth instead of O(l).
- the ``mamba_ssm`` Triton kernel ``mamba_chunk_scan_combined``, imported lazily (CUDA only).

:func:`ssd` is the public entry point; :func:`ssd_impl` says which path it takes.

Shapes (the ``mamba_ssm`` layout, so both paths share one signature):
``x: (b, l, h, p)``, ``dt: (b, l, h)`` positive (already softplus'ed), ``A: (h,)`` negative,
``B, C: (b, l, g, s)`` with ``g`` groups shared by ``h // g`` consecutive heads (head ``i`` reads group
``i // (h // g)``, as in Mamba2; pass ``g = h`` for per-head ``B, C``), state ``(b, h, p, s)``.
The scan runs in float32 for half-precision inputs (float64 stays float64); ``y`` comes back in
``x.dtype`` and the final state in the scan dtype (float32, as the kernel returns it).

Also here: :func:`causal_conv1d_ref`, the short depthwise causal conv Mamba2 applies before the scan.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from torch import Tensor

from rad_bench.ops import resolve_impl

SSD_INSTALL_HINT = "pip install mamba-ssm causal-conv1d --no-build-isolation (CUDA machines only)"


def _load_kernel():
    """``mamba_chunk_scan_combined`` or ``None``. Lazy: importing mamba_ssm needs Triton and CUDA."""
    try:
        from mamba_ssm.ops.triton.ssd_combined import mamba_chunk_scan_combined
    except ImportError:
        return None
    return mamba_chunk_scan_combined


# --------------------------------------------------------------------------------------------
#                                   Helpers
# --------------------------------------------------------------------------------------------


def _heads(t: Tensor, h: int) -> Tensor:
    """``(b, l, g, s) -> (b, l, h, s)``: each group serves ``h // g`` consecutive heads."""
    g = t.shape[2]
    if h % g:
        raise ValueError(f"ngroups={g} must divide heads={h}")
    return repeat(t, "b l g s -> b l (g r) s", r=h // g)


def _prepare(x, dt, A, B, C, initial_state):
    """Upcast to (at least) float32, expand groups to heads, zero state if none: (x, dt, A, B, C, S0)."""
    b, _, h, p = x.shape
    f = torch.promote_types(x.dtype, torch.float32)  # bf16/fp16 -> fp32; float64 stays (an exact oracle)
    if initial_state is None:
        initial_state = torch.zeros(b, h, p, B.shape[-1], device=x.device, dtype=f)
    B, C = _heads(B.to(f), h), _heads(C.to(f), h)
    return x.to(f), dt.to(f), A.to(f), B, C, initial_state.to(f)


def segsum(a: Tensor) -> Tensor:
    """``a: (..., T) -> (..., T, T)`` with ``out[i, j] = a[j+1] + ... + a[i]`` for ``j <= i``, else -inf.

    ``exp(segsum(dt * A))`` is the 1-semiseparable decay mask L of the paper (eq. 4). Subtracting two
    cumsums would cancel catastrophically once the cumsum is large; summing a masked copy instead
    keeps every entry a sum of its own terms only. The -inf above the diagonal makes exp() exactly 0
    there (causality) and has zero gradient, unlike exp(big) * 0.
    """
    T = a.shape[-1]
    below = torch.ones(T, T, dtype=torch.bool, device=a.device).tril(-1)  # i > j
    terms = a[..., :, None].expand(*a.shape, T).masked_fill(~below, 0)  # terms[i, j] = a_i if i > j
    out = terms.cumsum(dim=-2)  # out[i, j] = sum_{j < k <= i} a_k
    causal = torch.ones(T, T, dtype=torch.bool, device=a.device).tril()
    return out.masked_fill(~causal, float("-inf"))


# --------------------------------------------------------------------------------------------
#                                   Reference recurrence
# --------------------------------------------------------------------------------------------


def ssd_ref(
    x: Tensor, dt: Tensor, A: Tensor, B: Tensor, C: Tensor, initial_state: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """The SSM recurrence one step at a time (paper eq. 1 with Mamba2's scalar-times-identity A).

    Returns ``y: (b, l, h, p)`` in ``x.dtype`` and the final state ``(b, h, p, s)`` in the scan dtype.
    """
    x32, dt, A, B, C, state = _prepare(x, dt, A, B, C, initial_state)
    decay = torch.exp(dt * A)  # (b, l, h): A-bar = exp(dt A) (zero-order hold); B-bar = dt B as in Mamba2
    ys = []
    for i in range(x.shape[1]):
        inject = torch.einsum("bh,bhp,bhs->bhps", dt[:, i], x32[:, i], B[:, i])  # dt x ⊗ B
        state = decay[:, i, :, None, None] * state + inject
        ys.append(torch.einsum("bhps,bhs->bhp", state, C[:, i]))
    y = torch.stack(ys, dim=1) if ys else x32.new_zeros(x.shape)
    return y.to(x.dtype), state


# --------------------------------------------------------------------------------------------
#                                   Chunked SSD (paper Listing 1)
# --------------------------------------------------------------------------------------------


def _to_chunks(t: Tensor, chunk: int) -> Tensor:
    """``(b, l, ...) -> (b, c, chunk, ...)``, zero-padding ``l`` up to a multiple of ``chunk``.

    Zero padding is exact: a padded step has ``dt = 0``, so its decay is exp(0) = 1 and it injects
    ``0 * x ⊗ B = 0``; the state passes through unchanged and the padded outputs are dropped.
    """
    pad = -t.shape[1] % chunk
    if pad:
        t = F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad))
    return rearrange(t, "b (c l) ... -> b c l ...", l=chunk)


def ssd_chunked(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int,
    initial_state: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """The SSD algorithm: the semiseparable matrix split into ``chunk_size`` blocks (paper §6).

    Diagonal blocks are small masked "attention" matmuls; off-diagonal blocks factor through the
    chunk-boundary states, which are passed along by a recurrence over chunks. Same result as
    :func:`ssd_ref` for any ``l`` (the last chunk is zero-padded). Returns ``(y, final_state)``.
    """
    length = x.shape[1]
    x32, dt, A, B, C, state0 = _prepare(x, dt, A, B, C, initial_state)
    chunk = max(1, min(chunk_size, length))  # a short sequence is one chunk; no padding beyond it
    X = _to_chunks(x32 * dt[..., None], chunk)  # (b, c, l, h, p): dt folded into the input
    B, C = _to_chunks(B, chunk), _to_chunks(C, chunk)  # (b, c, l, h, s)
    a = rearrange(_to_chunks(dt * A, chunk), "b c l h -> b h c l")  # log-decay per step
    a_cum = a.cumsum(dim=-1)  # (b, h, c, l): log-decay from chunk start to step l (inclusive)

    # 1. intra-chunk (diagonal blocks): y_i = sum_{j <= i} C_i·B_j exp(a_{j+1} + ... + a_i) X_j
    L = torch.exp(segsum(a))  # (b, h, c, l, l)
    y_diag = torch.einsum("bcihs,bcjhs,bhcij,bcjhp->bcihp", C, B, L, X)

    # 2. per-chunk states: each chunk's own input, decayed to its last step (zero state at entry).
    # The decay from step j to the chunk end is L's last row: exp(a_{j+1} + ... + a_end), no cancellation
    states = torch.einsum("bcjhs,bhcj,bcjhp->bchps", B, L[..., -1, :], X)

    # 3. inter-chunk state passing: S_c = exp(sum of chunk c's a) * S_{c-1} + states_c, from S_0
    entering, final_state = _pass_states(states, a_cum[..., -1], state0)  # state at each chunk start

    # 4. state -> output (off-diagonal blocks): the entering state decayed to step i, read by C_i
    y_off = torch.einsum("bcihs,bchps,bhci->bcihp", C, entering, torch.exp(a_cum))

    y = rearrange(y_diag + y_off, "b c l h p -> b (c l) h p")[:, :length]
    return y.to(x.dtype), final_state


def _pass_states(states: Tensor, chunk_decay: Tensor, state0: Tensor) -> tuple[Tensor, Tensor]:
    """Linear recurrence over chunk boundaries, solved in closed form as in Listing 1.

    ``states: (b, c, h, p, s)`` per-chunk contributions, ``chunk_decay: (b, h, c)`` each chunk's total
    log-decay, ``state0: (b, h, p, s)``. The recurrence S_c = exp(chunk_decay_c) S_{c-1} + states_c
    is itself a 1-semiseparable matrix over the c + 1 boundaries, so exp(segsum) gives it in one einsum
    (O(c^2) but tiny: c = l / chunk). Returns the state entering each chunk and the final state.
    """
    states = torch.cat([state0[:, None], states], dim=1)  # (b, c+1, h, p, s), boundary 0 = S_0
    decay = torch.exp(segsum(F.pad(chunk_decay, (1, 0))))  # (b, h, c+1, c+1)
    boundary = torch.einsum("bhzc,bchps->bzhps", decay, states)  # state after boundary z
    return boundary[:, :-1], boundary[:, -1]


# --------------------------------------------------------------------------------------------
#                                   Public entry point
# --------------------------------------------------------------------------------------------


def ssd_impl(device: torch.device, requested: str = "auto") -> str:
    """``kernel`` or ``ref``: which path :func:`ssd` takes for tensors on ``device``.

    ``ref`` means :func:`ssd_chunked` (pure PyTorch). Raises if ``kernel`` is forced but missing.
    """
    kernel_ok = torch.device(device).type == "cuda" and _load_kernel() is not None
    return resolve_impl(requested, kernel_ok, SSD_INSTALL_HINT)


def ssd(
    x: Tensor,
    dt: Tensor,
    A: Tensor,
    B: Tensor,
    C: Tensor,
    chunk_size: int,
    initial_state: Tensor | None = None,
    requested: str = "auto",
) -> tuple[Tensor, Tensor]:
    """The SSD scan, by the path :func:`ssd_impl` resolves. Returns ``(y, final_state)``."""
    if ssd_impl(x.device, requested) == "ref":
        return ssd_chunked(x, dt, A, B, C, chunk_size, initial_state)
    kernel = _load_kernel()
    if initial_state is not None:
        initial_state = initial_state.float().contiguous()
    args = (t.contiguous() for t in (x, dt, A, B, C))
    return kernel(*args, chunk_size, initial_states=initial_state, return_final_states=True)


# --------------------------------------------------------------------------------------------
#                                   Short causal conv
# --------------------------------------------------------------------------------------------


class _DepthwiseConv(torch.autograd.Function):
    """A valid depthwise conv over the last dim: ``F.conv1d`` forward, and a backward of a transposed conv (the
    input's gradient) and ``k`` products summed (the weight's). PyTorch's own backward of a depthwise
    ``conv1d`` on CPU costs tens of times its forward at Mamba2's sizes (256 rows x 160 channels x 12 steps, 4 taps);
    this one cuts forward + backward 2.6-3x (``experiments/throughput/levers.py --only conv``), with the same
    gradients up to the order of float32 sums."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(x, weight)
        ctx.has_bias = bias is not None
        return F.conv1d(x, weight[:, None], bias, groups=weight.shape[0])

    @staticmethod
    def backward(ctx, g: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:
        x, weight = ctx.saved_tensors
        c, k = weight.shape
        length = g.shape[-1]
        gx = F.conv_transpose1d(g, weight[:, None].to(g.dtype), groups=c) if ctx.needs_input_grad[0] else None
        gw = None
        if ctx.needs_input_grad[1]:
            gw = torch.stack([(g * x[..., i : i + length]).sum((0, 2)) for i in range(k)], dim=-1).to(weight.dtype)
        gb = g.sum((0, 2)) if ctx.has_bias and ctx.needs_input_grad[2] else None
        return gx, gw, gb


def depthwise_conv1d(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x: (b, c, L)``, ``weight: (c, k)``, ``bias: (c,)`` -> ``(b, c, L - k + 1)``: output ``i`` is
    ``sum_j x[..., i + j] * weight[:, j] + bias`` (``F.conv1d`` with ``groups = c``, no padding)."""
    return _DepthwiseConv.apply(x, weight, bias)


def causal_conv1d_ref(
    x: Tensor,
    weight: Tensor,
    bias: Tensor | None = None,
    conv_state: Tensor | None = None,
    activation: str | None = "silu",
) -> tuple[Tensor, Tensor]:
    """Depthwise causal conv over time with a carried tail, then ``activation`` (Mamba2's conv on xBC).

    ``x: (b, c, l)``, ``weight: (c, k)``, ``bias: (c,)``, ``conv_state: (b, c, k-1)``: the last
    ``k - 1`` inputs before ``x`` (zeros at the start of a clip). Returns ``y: (b, c, l)`` and the new
    tail, so a sequence split anywhere gives the same ``y`` as one call.

    No ``causal_conv1d`` fast path: with k = 4 taps this is one grouped ``F.conv1d``, far cheaper than
    the projections around it, and one path keeps step == forward exact.
    """
    b, c, _ = x.shape
    k = weight.shape[-1]
    if conv_state is None:
        conv_state = x.new_zeros(b, c, k - 1)
    full = torch.cat([conv_state.to(x.dtype), x], dim=-1)  # (b, c, k-1 + l)
    y = depthwise_conv1d(full, weight, bias)  # valid conv: output i sees inputs i..i+k-1
    tail = full[..., full.shape[-1] - (k - 1) :].clone()  # clone: don't keep `full` alive via a view
    if activation not in (None, "silu"):
        raise ValueError(f"activation must be None or 'silu', got {activation!r}")
    return (F.silu(y) if activation else y), tail
