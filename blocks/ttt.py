"""``ttt``: Test-Time Training layer (TTT-Linear / TTT-MLP) run along time per spatial token."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from rad_bench.block import MemoryBlock, State
from rad_bench.ops.ttt import WEIGHTS, check_inner, ttt_dual, ttt_dual_prefetch, ttt_dual_read, ttt_init_state
from rad_bench.registry import register_block


@register_block("ttt")
class TTTBlock(MemoryBlock):
    """Per spatial token, the memory is a small model trained online on that token's past frames.

    TTT layer of Sun et al. 2024 (https://arxiv.org/abs/2407.04620): each head keeps inner weights
    ``W`` and takes one gradient step per frame on ``1/2 ||f(k; W) - v||^2`` with a learned
    per-token rate ``eta = base_lr * sigmoid(theta_lr x) / e``, then reads out ``f(q; W)``. ``inner``
    picks ``f``: ``"linear"`` (TTT-Linear) or ``"mlp"`` (TTT-MLP, hidden ``4 e``), both with the
    paper's LN + residual. The initial ``W0`` and the LN are learnable outer parameters; the frame
    sequence of each token is folded into a batch row, ``(b, t, n, d) -> ((b n), t, d)``. The action
    embedding is added to the input before the projections (RAD feeds the action to the memory
    block directly). Output: post-LN, GELU gate (``gate=True``), zero-initialised ``to_out``. Not
    included: the official code's learnable in-mini-batch position scaling of ``eta``.

    Mini-batches of ``mini_batch`` frames are counted from the start of the clip; gradients inside
    one are taken at its start weights (the paper's mini-batch TTT, computed in the dual form of
    :func:`rad_bench.ops.ttt.ttt_dual`). A call boundary may fall inside a mini-batch, so the state
    carries the current weights ``W``, the mini-batch start weights ``W_mb`` and the position ``pos``
    in it; one call, any split into calls, and frame-by-frame steps then give identical outputs.

    State (``e = d / h``, ``f = e`` linear or ``4 e`` mlp, kept in at least float32 because it
    accumulates updates over the whole rollout): ``w1, w1_mb: (b n, h, e, f)``,
    ``b1, b1_mb: (b n, h, 1, f)``, mlp also ``w2, w2_mb: (b n, h, f, e)``, ``b2, b2_mb: (b n, h, 1, e)``,
    ``pos: ()``. Cost per frame: O(n d^2) projections + O(n h e f) inner step + O(n d mini_batch)
    for the causal dual-form terms.
    """

    state_growth = "constant"
    state_knob, knob_decreases_state = "inner_heads", True

    @classmethod
    def carried_bytes(
        cls, dim: int, heads: int, tokens: int, inner: str = "linear", inner_heads: int | None = None, **kwargs: Any
    ) -> int:
        h = inner_heads or heads
        e = dim // h
        f = e if inner == "linear" else 4 * e
        weights = h * (e * f + f) + (h * (f * e + e) if inner == "mlp" else 0)  # w1, b1 (and w2, b2)
        return 4 * tokens * 2 * weights + 8  # the weights and their mini-batch start, and the position

    def __init__(
        self,
        dim: int,
        *,
        heads: int = 4,
        impl: str = "auto",
        inner: str = "linear",
        mini_batch: int = 4,
        base_lr: float = 1.0,
        gate: bool = True,
        inner_heads: int | None = None,
    ) -> None:
        heads = inner_heads or heads  # the inner model's heads: more heads, narrower (and fewer) weights
        super().__init__(dim, heads=heads, impl=impl)
        self.inner = check_inner(inner)
        if dim % heads:
            raise ValueError(f"ttt: dim {dim} must be divisible by heads {heads}")
        if mini_batch < 1:
            raise ValueError(f"ttt: mini_batch must be >= 1, got {mini_batch}")
        self.mini_batch, self.base_lr = mini_batch, base_lr
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_lr = nn.Linear(dim, heads)  # theta_lr: one learning-rate gate per head
        self.w0 = self._init_inner(heads, dim // heads, inner)
        self.ln_w = nn.Parameter(torch.ones(heads, dim // heads))
        self.ln_b = nn.Parameter(torch.zeros(heads, dim // heads))
        self.post_norm = nn.LayerNorm(dim)
        self.to_gate = nn.Linear(dim, dim) if gate else None
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    @staticmethod
    def _init_inner(h: int, e: int, inner: str) -> nn.ParameterDict:
        # W0: N(0, 0.02) weights and zero biases, as the official implementation
        f = e if inner == "linear" else 4 * e
        w0 = {"w1": 0.02 * torch.randn(h, e, f), "b1": torch.zeros(h, 1, f)}
        if inner == "mlp":
            w0.update(w2=0.02 * torch.randn(h, f, e), b2=torch.zeros(h, 1, e))
        return nn.ParameterDict({k: nn.Parameter(w0[k]) for k in WEIGHTS[inner]})

    def init_state(self, batch: int, tokens: int, device: torch.device, dtype: torch.dtype) -> State:
        acc = torch.promote_types(dtype, torch.float32)
        rows = batch * tokens
        weights = {k: w.to(device, acc).expand(rows, *w.shape) for k, w in self.w0.items()}
        return ttt_init_state(weights)

    def forward(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        b, t, n, d = x.shape
        if state is None:
            state = self.init_state(b, n, x.device, x.dtype)
        h, qkve = self._project(x, action, state["w1"].dtype)
        z, state = ttt_dual(*qkve, *self._ln(state["w1"].dtype), state, self.mini_batch, self.inner)
        return self._output(z, h, x.dtype, b), state

    def prefetch(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State, tuple]:
        b, t, n, d = x.shape
        if state is None:
            state = self.init_state(b, n, x.device, x.dtype)
        h, qkve = self._project(x, action, state["w1"].dtype)
        z, state, ctx = ttt_dual_prefetch(*qkve, *self._ln(state["w1"].dtype), state, self.mini_batch, self.inner)
        return self._output(z, h, x.dtype, b), state, ctx

    def read(self, x: Tensor, ctx: tuple, action: Tensor) -> Tensor:
        acc = ctx[0].dtype
        h, qkve = self._project(x, action, acc)
        return self._output(ttt_dual_read(*qkve, *self._ln(acc), ctx), h, x.dtype, x.shape[0])

    def _project(self, x: Tensor, action: Tensor, acc: torch.dtype) -> tuple[Tensor, tuple[Tensor, ...]]:
        """Token rows ``h: ((b n), t, d)`` and the inner model's ``q, k, v, eta`` in the state's dtype."""
        h = rearrange(x + action[:, :, None], "b t n d -> (b n) t d")
        q, k, v = rearrange(self.to_qkv(h), "r t (three h e) -> three r h t e", three=3, h=self.heads)
        # paper's learnable inner learning rate: eta_t = base_lr * sigmoid(theta_lr x_t) / e
        eta = self.base_lr * torch.sigmoid(rearrange(self.to_lr(h), "r t h -> r h t")) / q.shape[-1]
        return h, tuple(u.to(acc) for u in (q, k, v, eta))

    def _ln(self, acc: torch.dtype) -> tuple[Tensor, Tensor]:
        """The inner model's LN weight and bias in the state's accumulation dtype."""
        return self.ln_w.to(acc), self.ln_b.to(acc)

    def _output(self, z: Tensor, h: Tensor, dtype: torch.dtype, b: int) -> Tensor:
        y = self.post_norm(rearrange(z, "r h t e -> r t (h e)").to(dtype))
        if self.to_gate is not None:
            y = y * F.gelu(self.to_gate(h), approximate="tanh")
        y = self.to_out(y)
        return rearrange(y, "(b n) t d -> b t n d", b=b)
