"""TTT-Linear / TTT-MLP layers: the hidden state is a model trained online on the sequence.

Sun et al. 2024, "Learning to (Learn at Test Time): RNNs with Expressive Hidden States",
https://arxiv.org/abs/2407.04620. Per head (width ``e``) the state is the inner model's weights ``W``:

- ``f(x; W) = x + LN(g(x; W))`` with ``g = x W1 + b1`` (``"linear"``) or
  ``g = gelu(x W1 + b1) W2 + b2`` (``"mlp"``, hidden ``4 e``); LN has learnable weight/bias per head
  that the inner loop does not update (paper Sec. 2.7, "LN and residual").
- self-supervised loss of token ``t``: ``l_t(W) = 1/2 ||f(k_t; W) - v_t||^2``, i.e. ``LN(g(k_t))``
  reconstructs ``v_t - k_t``. The 1/2 follows the official code (the gradient is the residual);
  any constant factor is absorbed in the learning rate.
- mini-batch TTT (Sec. 2.5): gradients of all tokens of a mini-batch are taken at the weights ``W_mb``
  at its start, and ``W_t = W_{t-1} - eta_t grad l_t(W_mb)``; the output is ``z_t = f(q_t; W_t)``.

Mini-batches are counted from the start of the clip, so a call may begin or end inside one. The state
carries both ``W`` (after the last token seen) and ``W_mb`` (where the current mini-batch takes its
gradients) plus ``pos`` (tokens already in it), which makes any split of a sequence into calls exact.

``ttt_primal_ref`` is the oracle (autograd, per-token weights materialised); ``ttt_dual`` is the
dual form used by the block (hand-derived gradients, causal masked matmuls, no per-token weights).

Shapes: ``q, k, v: (B, h, t, e)``, ``eta: (B, h, t)``, ``ln_w, ln_b: (h, e)``; state tensors
``w1: (B, h, e, f)``, ``b1: (B, h, 1, f)`` and for mlp ``w2: (B, h, f, e)``, ``b2: (B, h, 1, e)``
(``f = e`` for linear, ``4 e`` for mlp), their ``*_mb`` twins, ``pos: ()`` long.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

INNERS = ("linear", "mlp")
WEIGHTS = {"linear": ("w1", "b1"), "mlp": ("w1", "b1", "w2", "b2")}
LN_EPS = 1e-6  # as the official implementation


def check_inner(inner: str) -> str:
    if inner not in INNERS:
        raise ValueError(f"ttt inner model must be one of {INNERS}, got {inner!r}")
    return inner


def ttt_init_state(weights: dict[str, Tensor]) -> dict[str, Tensor]:
    """State at the start of a clip from initial weights ``{"w1": (B, h, e, f), ...}``."""
    state = dict(weights)
    state.update({f"{k}_mb": w for k, w in weights.items()})
    state["pos"] = torch.zeros((), dtype=torch.long, device=weights["w1"].device)
    return state


# --------------------------------------------------------------------------------------------
#                                   Inner model pieces
# --------------------------------------------------------------------------------------------


def _ln(z: Tensor, ln_w: Tensor, ln_b: Tensor) -> Tensor:
    # ln_w/ln_b: (h, e) -> (h, 1, e) broadcasts over (B, h, t, e)
    return F.layer_norm(z, z.shape[-1:], eps=LN_EPS) * ln_w[:, None] + ln_b[:, None]


def _ln_bwd(z: Tensor, gy: Tensor, ln_w: Tensor) -> Tensor:
    """dL/dz for y = LN(z) * w + b given gy = dL/dy, row by row (derived by hand).

    With xh = (z - mu) / s and gh = gy * w: dL/dz = (gh - mean(gh) - xh * mean(gh * xh)) / s.
    """
    mu = z.mean(-1, keepdim=True)
    s = torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + LN_EPS)
    xh = (z - mu) / s
    gh = gy * ln_w[:, None]
    return (gh - gh.mean(-1, keepdim=True) - xh * (gh * xh).mean(-1, keepdim=True)) / s


def _gelu_grad(x: Tensor) -> Tensor:
    # d/dx [x Phi(x)] = Phi(x) + x phi(x) for the exact (erf) GELU
    cdf = 0.5 * (1.0 + torch.erf(x / math.sqrt(2.0)))
    return cdf + x * torch.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def inner_forward(x: Tensor, w: dict[str, Tensor], ln_w: Tensor, ln_b: Tensor) -> Tensor:
    """f(x; W) = x + LN(g(x; W)); ``x: (..., r, e)`` against weights ``(..., e, f)``."""
    g = x @ w["w1"] + w["b1"]
    if "w2" in w:
        g = F.gelu(g) @ w["w2"] + w["b2"]
    return x + _ln(g, ln_w, ln_b)


def _chunks(t: int, pos: int, mini_batch: int) -> Iterator[tuple[int, int]]:
    """(start, end) of the pieces of ``t`` tokens that lie in one mini-batch, the first one
    completing the mini-batch already ``pos`` tokens in."""
    start = 0
    while start < t:
        end = min(t, start + mini_batch - pos)
        yield start, end
        start, pos = end, 0


def _split(state: dict[str, Tensor], inner: str) -> tuple[dict, dict, int]:
    names = WEIGHTS[inner]
    return {k: state[k] for k in names}, {k: state[f"{k}_mb"] for k in names}, int(state["pos"])


def _run(step, q, k, v, eta, state, mini_batch: int, inner: str, pieces: list | None = None):
    """Drive ``step(q, k, v, eta, cur, mb) -> (z, cur)`` over mini-batch pieces; update the state.
    ``pieces`` (if given) receives ``(start, end, cur, mb)``: each piece's weights on entry."""
    cur, mb, pos = _split(state, check_inner(inner))
    zs = []
    for s, e in _chunks(q.shape[2], pos, mini_batch):
        if pieces is not None:
            pieces.append((s, e, cur, mb))
        z, cur = step(q[:, :, s:e], k[:, :, s:e], v[:, :, s:e], eta[:, :, s:e], cur, mb)
        zs.append(z)
        pos += e - s
        if pos == mini_batch:  # mini-batch complete: the next one takes gradients here
            mb, pos = cur, 0
    new = dict(cur)
    new.update({f"{n}_mb": w for n, w in mb.items()})
    new["pos"] = torch.full_like(state["pos"], pos)
    return (torch.cat(zs, dim=2) if zs else q.clone()), new


# --------------------------------------------------------------------------------------------
#                                   Primal form (oracle)
# --------------------------------------------------------------------------------------------


def _token_grads(
    k: Tensor, v: Tensor, mb: dict[str, Tensor], ln_w: Tensor, ln_b: Tensor, create_graph: bool
) -> list[dict[str, Tensor]]:
    """One autograd gradient per token of the loss l_s(W_mb), ``k, v: (B, h, m, e)``."""
    with torch.enable_grad():
        ws = {n: w if w.requires_grad else w.detach().requires_grad_() for n, w in mb.items()}
        grads = []
        for s in range(k.shape[2]):
            # weights are per (B, h), so summing the loss over them keeps the gradients separate
            z = inner_forward(k[:, :, s : s + 1], ws, ln_w, ln_b)
            loss = 0.5 * (z - v[:, :, s : s + 1]).square().sum()
            g = torch.autograd.grad(loss, list(ws.values()), create_graph=create_graph)
            grads.append(dict(zip(ws, g, strict=True)))
    return grads


def ttt_primal_ref(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    eta: Tensor,
    ln_w: Tensor,
    ln_b: Tensor,
    state: dict[str, Tensor],
    mini_batch: int,
    inner: str,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Mini-batch TTT, primal form: ``(z: (B, h, t, e), new_state)``.

    Per mini-batch piece: 1. gradient of each token's loss at ``W_mb`` (autograd), 2. per-token
    weights ``W_t = W - cumsum_{s<=t} eta_s grad_s`` materialised, 3. ``z_t = f(q_t; W_t)``.
    Differentiable w.r.t. its inputs when grad mode is on (``create_graph``).
    """
    create_graph = torch.is_grad_enabled()

    def step(q, k, v, eta, cur, mb):
        grads = _token_grads(k, v, mb, ln_w, ln_b, create_graph)
        w_t = {}
        for n, w in cur.items():
            g = torch.stack([gr[n] for gr in grads], dim=2)  # (B, h, m, ...)
            w_t[n] = w[:, :, None] - torch.cumsum(eta[..., None, None] * g, dim=2)
        z = inner_forward(q[..., None, :], w_t, ln_w[:, None], ln_b[:, None])[..., 0, :]
        return z, {n: w[:, :, -1] for n, w in w_t.items()}

    return _run(step, q, k, v, eta, state, mini_batch, inner)


# --------------------------------------------------------------------------------------------
#                                   Dual form
# --------------------------------------------------------------------------------------------


def _causal(a_q: Tensor, a_k: Tensor, eta: Tensor) -> Tensor:
    """tril_{t>=s}(eta_s (a_q,t . a_k,s + 1)): (B, h, m, m). The +1 is the bias, whose "input" is 1."""
    return torch.tril((a_q @ a_k.transpose(-1, -2) + 1.0) * eta[..., None, :])


def _update(w: Tensor, b: Tensor, a: Tensor, gz: Tensor, eta: Tensor) -> tuple[Tensor, Tensor]:
    """W - sum_s eta_s a_s^T gz_s and b - sum_s eta_s gz_s over the piece (end-of-piece weights)."""
    eg = eta[..., None] * gz
    return w - a.transpose(-1, -2) @ eg, b - eg.sum(dim=2, keepdim=True)


def _target_grad(z: Tensor, k: Tensor, v: Tensor, ln_w: Tensor, ln_b: Tensor) -> Tensor:
    # l = 1/2 ||LN(z) - (v - k)||^2, so dl/dLN(z) is the residual; then back through LN by hand
    return _ln_bwd(z, _ln(z, ln_w, ln_b) - (v - k), ln_w)


def _dual_linear(q, k, v, eta, cur, mb, ln_w, ln_b):
    # 1. dl_s/dZ_s at W_mb for every token of the piece: (B, h, m, e)
    gz = _target_grad(k @ mb["w1"] + mb["b1"], k, v, ln_w, ln_b)
    # 2. q_t W_t = q_t W - sum_{s<=t} eta_s (q_t . k_s) gz_s  (paper Sec. 2.7, "dual form")
    zq = q @ cur["w1"] + cur["b1"] - _causal(q, k, eta) @ gz
    w1, b1 = _update(cur["w1"], cur["b1"], k, gz, eta)
    return q + _ln(zq, ln_w, ln_b), {"w1": w1, "b1": b1}


def _dual_mlp(q, k, v, eta, cur, mb, ln_w, ln_b):
    # 1. forward and hand-written backward of both layers at W_mb
    z1 = k @ mb["w1"] + mb["b1"]  # (B, h, m, 4e)
    a1 = F.gelu(z1)
    g2 = _target_grad(a1 @ mb["w2"] + mb["b2"], k, v, ln_w, ln_b)  # (B, h, m, e)
    g1 = (g2 @ mb["w2"].transpose(-1, -2)) * _gelu_grad(z1)  # (B, h, m, 4e)
    # 2. each layer as in the linear dual form; layer 2's input for query t is gelu of
    #    layer 1 under W1_t, so the causal matrix pairs a(q_t) with a(k_s)
    aq = F.gelu(q @ cur["w1"] + cur["b1"] - _causal(q, k, eta) @ g1)
    zq = aq @ cur["w2"] + cur["b2"] - _causal(aq, a1, eta) @ g2
    w1, b1 = _update(cur["w1"], cur["b1"], k, g1, eta)
    w2, b2 = _update(cur["w2"], cur["b2"], a1, g2, eta)
    return q + _ln(zq, ln_w, ln_b), {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def ttt_dual(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    eta: Tensor,
    ln_w: Tensor,
    ln_b: Tensor,
    state: dict[str, Tensor],
    mini_batch: int,
    inner: str,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Mini-batch TTT, dual form: same result as :func:`ttt_primal_ref` without per-token weights.

    Cost per mini-batch piece of ``m`` tokens: O(m e f) matmuls plus O(m^2 (e + f)) for the causal
    terms; memory O(e f) per head, never O(m e f).
    """
    step_fn = _dual_mlp if inner == "mlp" else _dual_linear

    def step(q, k, v, eta, cur, mb):
        return step_fn(q, k, v, eta, cur, mb, ln_w, ln_b)

    return _run(step, q, k, v, eta, state, mini_batch, inner)


# --------------------------------------------------------------------------------------------
#                                   Frame-wise training: read from the clean state
# --------------------------------------------------------------------------------------------


def ttt_dual_prefetch(
    q: Tensor,
    k: Tensor,
    v: Tensor,
    eta: Tensor,
    ln_w: Tensor,
    ln_b: Tensor,
    state: dict[str, Tensor],
    mini_batch: int,
    inner: str,
) -> tuple[Tensor, dict[str, Tensor], tuple]:
    """:func:`ttt_dual` over clean tokens, plus what :func:`ttt_dual_read` needs: the clean ``k, v, eta``
    and every mini-batch piece's weights on entry (``W`` and ``W_mb``), never per-token weights."""
    pieces: list = []
    step_fn = _dual_mlp if inner == "mlp" else _dual_linear
    z, new = _run(lambda *a: step_fn(*a, ln_w, ln_b), q, k, v, eta, state, mini_batch, inner, pieces)
    return z, new, (k, v, eta, pieces)


def _grads_at(k: Tensor, v: Tensor, mb: dict[str, Tensor], ln_w: Tensor, ln_b: Tensor) -> list[Tensor]:
    """Per token, ``dl/dZ`` of each layer at ``W_mb`` (linear: [g1]; mlp: [g1, g2]) and the layer-2 input."""
    z1 = k @ mb["w1"] + mb["b1"]
    if "w2" not in mb:
        return [_target_grad(z1, k, v, ln_w, ln_b)]
    a1 = F.gelu(z1)
    g2 = _target_grad(a1 @ mb["w2"] + mb["b2"], k, v, ln_w, ln_b)
    return [(g2 @ mb["w2"].transpose(-1, -2)) * _gelu_grad(z1), g2, a1]


def ttt_dual_read(q: Tensor, k: Tensor, v: Tensor, eta: Tensor, ln_w: Tensor, ln_b: Tensor, ctx: tuple) -> Tensor:
    """For every (noisy) token ``t`` at once: ``f(q_t; W_t)`` where ``W_t`` is one TTT step on token ``t``
    from the weights the *clean* tokens ``< t`` left (``ctx`` from :func:`ttt_dual_prefetch`).

    In the dual form that is the clean piece's causal sum with the noisy queries, made strict
    (``s < t``), plus the noisy token's own gradient term on the diagonal, both at the piece's ``W_mb``."""
    ck, cv, ceta, pieces = ctx
    out = []
    for s, e, cur, mb in pieces:
        sl = slice(s, e)
        qn, kn, vn, en = q[:, :, sl], k[:, :, sl], v[:, :, sl], eta[:, :, sl]
        clean, own = _grads_at(ck[:, :, sl], cv[:, :, sl], mb, ln_w, ln_b), _grads_at(kn, vn, mb, ln_w, ln_b)

        def layer(a_q: Tensor, a_k: Tensor, a_own: Tensor, g: Tensor, g_own: Tensor, w: Tensor, b: Tensor) -> Tensor:
            hist = torch.tril((a_q @ a_k.transpose(-1, -2) + 1.0) * ceta[:, :, sl, None].transpose(-1, -2), -1)
            self_term = (en * ((a_q * a_own).sum(-1) + 1.0))[..., None] * g_own
            return a_q @ w + b - hist @ g - self_term

        zq = layer(qn, ck[:, :, sl], kn, clean[0], own[0], cur["w1"], cur["b1"])
        if "w2" in cur:
            aq = F.gelu(zq)
            zq = layer(aq, clean[2], own[2], clean[1], own[1], cur["w2"], cur["b2"])
        out.append(qn + _ln(zq, ln_w, ln_b))
    return torch.cat(out, dim=2) if out else q.clone()
