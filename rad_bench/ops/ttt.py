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


def _per_head(w: Tensor, z: Tensor) -> Tensor:
    """``(h, e)`` shaped to broadcast over ``z: (B, h, ..., e)``."""
    return w.reshape(w.shape[0], *([1] * (z.dim() - 3)), w.shape[-1])


def _ln(z: Tensor, ln_w: Tensor, ln_b: Tensor) -> Tensor:
    # ln_w/ln_b: (h, e), per head, broadcast over (B, h, ..., e)
    return F.layer_norm(z, z.shape[-1:], eps=LN_EPS) * _per_head(ln_w, z) + _per_head(ln_b, z)


def _ln_bwd(z: Tensor, gy: Tensor, ln_w: Tensor) -> Tensor:
    """dL/dz for y = LN(z) * w + b given gy = dL/dy, row by row (derived by hand).

    With xh = (z - mu) / s and gh = gy * w: dL/dz = (gh - mean(gh) - xh * mean(gh * xh)) / s.
    """
    mu = z.mean(-1, keepdim=True)
    s = torch.sqrt(z.var(-1, unbiased=False, keepdim=True) + LN_EPS)
    xh = (z - mu) / s
    gh = gy * _per_head(ln_w, z)
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


def _run(step, q, k, v, eta, state, mini_batch: int, inner: str):
    """Drive ``step(q, k, v, eta, cur, mb) -> (z, cur)`` over mini-batch pieces; update the state."""
    cur, mb, pos = _split(state, check_inner(inner))
    zs = []
    for s, e in _chunks(q.shape[2], pos, mini_batch):
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
        z = inner_forward(q[..., None, :], w_t, ln_w, ln_b)[..., 0, :]
        return z, {n: w[:, :, -1] for n, w in w_t.items()}

    return _run(step, q, k, v, eta, state, mini_batch, inner)


# --------------------------------------------------------------------------------------------
#                                   Dual form
# --------------------------------------------------------------------------------------------
#
# Only the weights are sequential: each mini-batch takes its gradients at the weights the previous one left.
# So the loop over mini-batches computes just those gradients and the end-of-mini-batch weights; the outputs
# (the causal dual-form terms) are then computed for every mini-batch at once. The tokens are laid out as
# ``(B, h, P, m, e)``: ``P`` mini-batches of ``m`` tokens, padded with ``pos`` tokens at the front (the part of
# the first mini-batch an earlier call already took) and up to ``m - 1`` at the end. Padding tokens have
# ``eta = 0``, so they add nothing to any causal sum or update; their outputs are dropped.


def _pieces(x: Tensor, pos: int, m: int) -> Tensor:
    """``(B, h, t, ...) -> (B, h, P, m, ...)`` with ``pos`` zero tokens in front and zeros after the last."""
    t = x.shape[2]
    count = -(-(pos + t) // m)
    back = count * m - pos - t
    if pos or back:
        pad = [0, 0] * (x.dim() - 3) + [pos, back]
        x = F.pad(x, pad)
    return x.reshape(*x.shape[:2], count, m, *x.shape[3:])


def _tokens(x: Tensor, pos: int, t: int) -> Tensor:
    """Inverse of :func:`_pieces`: ``(B, h, P, m, e) -> (B, h, t, e)``."""
    return x.flatten(2, 3)[:, :, pos : pos + t]


def _causal(a_q: Tensor, a_k: Tensor, eta: Tensor, diagonal: int = 0) -> Tensor:
    """tril_{t>=s}(eta_s (a_q,t . a_k,s + 1)): (..., m, m). The +1 is the bias, whose "input" is 1.
    ``diagonal=-1`` makes it strict (``s < t``)."""
    return torch.tril((a_q @ a_k.transpose(-1, -2) + 1.0) * eta[..., None, :], diagonal)


def _update(w: Tensor, b: Tensor, a: Tensor, gz: Tensor, eta: Tensor) -> tuple[Tensor, Tensor]:
    """W - sum_s eta_s a_s^T gz_s and b - sum_s eta_s gz_s over the piece (end-of-piece weights)."""
    eg = eta[..., None] * gz
    return w - a.transpose(-1, -2) @ eg, b - eg.sum(dim=-2, keepdim=True)


def _target_grad(z: Tensor, target: Tensor, ln_w: Tensor, ln_b: Tensor) -> Tensor:
    # l = 1/2 ||LN(z) - (v - k)||^2, so dl/dLN(z) is the residual; then back through LN by hand
    return _ln_bwd(z, _ln(z, ln_w, ln_b) - target, ln_w)


def _grads_at(k: Tensor, target: Tensor, mb: dict[str, Tensor], ln_w: Tensor, ln_b: Tensor) -> list[Tensor]:
    """Per token, ``dl/dZ`` of each layer at ``W_mb`` (linear: [g1]; mlp: [g1, g2]) and the layer-2 input
    (mlp: a1), for the reconstruction ``target = v - k``."""
    z1 = k @ mb["w1"] + mb["b1"]
    if "w2" not in mb:
        return [_target_grad(z1, target, ln_w, ln_b)]
    a1 = F.gelu(z1)
    g2 = _target_grad(a1 @ mb["w2"] + mb["b2"], target, ln_w, ln_b)
    return [(g2 @ mb["w2"].transpose(-1, -2)) * _gelu_grad(z1), g2, a1]


def _advance(cur: dict[str, Tensor], k: Tensor, grads: list[Tensor], eta: Tensor) -> dict[str, Tensor]:
    """The weights after one mini-batch piece: each layer steps on its own input (k, or a1 for layer 2)."""
    w1, b1 = _update(cur["w1"], cur["b1"], k, grads[0], eta)
    if "w2" not in cur:
        return {"w1": w1, "b1": b1}
    w2, b2 = _update(cur["w2"], cur["b2"], grads[2], grads[1], eta)
    return {"w1": w1, "b1": b1, "w2": w2, "b2": b2}


def _stack(ws: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    return {n: torch.stack([w[n] for w in ws], dim=2) for n in ws[0]}


def _scan(k: Tensor, v: Tensor, eta: Tensor, ln_w: Tensor, ln_b: Tensor, state: dict[str, Tensor], m: int, inner: str):
    """The sequential part: per mini-batch piece its weights on entry (``W``, ``W_mb``) and the gradient
    terms at ``W_mb``, stacked over pieces (``(B, h, P, ...)``), and the new state."""
    cur, mb, pos = _split(state, check_inner(inner))
    t = k.shape[2]
    kp, targets, ep = _pieces(k, pos, m), _pieces(v - k, pos, m), _pieces(eta, pos, m)
    curs, mbs, grads = [], [], []
    for p in range(kp.shape[2]):
        g = _grads_at(kp[:, :, p], targets[:, :, p], mb, ln_w, ln_b)
        curs.append(cur), mbs.append(mb), grads.append(g)
        cur = _advance(cur, kp[:, :, p], g, ep[:, :, p])
        mb = cur  # a piece that ends the call without ending its mini-batch: restored below
    end = (pos + t) % m
    new = dict(cur)
    new.update({f"{n}_mb": w for n, w in (mbs[-1] if end else cur).items()})
    new["pos"] = torch.full_like(state["pos"], end)
    stacked = [torch.stack([g[i] for g in grads], dim=2) for i in range(len(grads[0]))]
    return (kp, ep, stacked, _stack(curs), _stack(mbs), pos), new


def _outputs(q: Tensor, ctx: tuple, ln_w: Tensor, ln_b: Tensor) -> Tensor:
    """``f(q_t; W_t)`` for every token of the scanned pieces at once (paper Sec. 2.7, "dual form"):
    ``q_t W_t = q_t W - sum_{s<=t} eta_s (q_t . k_s) gz_s`` per layer; layer 2's input for query t is gelu of
    layer 1 under W1_t, so its causal matrix pairs a(q_t) with a(k_s)."""
    kp, ep, grads, cur, _, pos = ctx
    qp = _pieces(q, pos, kp.shape[3])
    zq = qp @ cur["w1"] + cur["b1"] - _causal(qp, kp, ep) @ grads[0]
    if "w2" in cur:
        aq = F.gelu(zq)
        zq = aq @ cur["w2"] + cur["b2"] - _causal(aq, grads[2], ep) @ grads[1]
    return q + _ln(_tokens(zq, pos, q.shape[2]), ln_w, ln_b)


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
    terms; memory O(e f) per head and piece, never O(m e f).
    """
    z, new, _ = ttt_dual_prefetch(q, k, v, eta, ln_w, ln_b, state, mini_batch, inner)
    return z, new


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
    """:func:`ttt_dual` over clean tokens, plus what :func:`ttt_dual_read` needs: the clean tokens' gradient
    terms and every mini-batch piece's weights on entry (``W`` and ``W_mb``), never per-token weights."""
    if q.shape[2] == 0:
        return q.clone(), dict(state), ()
    ctx, new = _scan(k, v, eta, ln_w, ln_b, state, mini_batch, inner)
    return _outputs(q, ctx, ln_w, ln_b), new, ctx


def ttt_dual_read(q: Tensor, k: Tensor, v: Tensor, eta: Tensor, ln_w: Tensor, ln_b: Tensor, ctx: tuple) -> Tensor:
    """For every (noisy) token ``t`` at once: ``f(q_t; W_t)`` where ``W_t`` is one TTT step on token ``t``
    from the weights the *clean* tokens ``< t`` left (``ctx`` from :func:`ttt_dual_prefetch`).

    In the dual form that is the clean piece's causal sum with the noisy queries, made strict
    (``s < t``), plus the noisy token's own gradient term on the diagonal, both at the piece's ``W_mb``."""
    if not ctx:
        return q.clone()
    ck, ceta, clean, cur, mb, pos = ctx
    m = ck.shape[3]
    qn, kn, en = _pieces(q, pos, m), _pieces(k, pos, m), _pieces(eta, pos, m)
    own = _grads_at(kn, _pieces(v - k, pos, m), mb, ln_w, ln_b)

    def layer(a_q: Tensor, a_k: Tensor, a_own: Tensor, g: Tensor, g_own: Tensor, w: Tensor, b: Tensor) -> Tensor:
        self_term = (en * ((a_q * a_own).sum(-1) + 1.0))[..., None] * g_own
        return a_q @ w + b - _causal(a_q, a_k, ceta, -1) @ g - self_term

    zq = layer(qn, ck, kn, clean[0], own[0], cur["w1"], cur["b1"])
    if "w2" in cur:
        zq = layer(F.gelu(zq), clean[2], own[2], clean[1], own[1], cur["w2"], cur["b2"])
    return q + _ln(_tokens(zq, pos, q.shape[2]), ln_w, ln_b)
