"""``full_attn``: causal temporal attention over the whole history (growing KV cache)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from rad_bench.block import MemoryBlock, State
from rad_bench.registry import register_block


@register_block("full_attn")
class FullAttention(MemoryBlock):
    """Per spatial token, attend causally to that token in *every* earlier frame.

    The upper bound on recall that does not fit long rollouts: the KV cache grows by one frame per
    frame. The action embedding is added to the input of q/k so retrieval can key on where the
    camera is (RAD feeds the action to the memory block directly). No positional encoding: memory
    is read by content and place, and the causal mask orders it; RoPE's fast-rotating channels
    would make a view seen 100 frames ago harder to match than one seen 5 frames ago.

    State: ``k, v: (b n, h, T, d/h)`` for all T frames seen.
    Cost per frame: O(T n d) attention + O(n d^2) projections.
    """

    state_growth = "linear"

    def __init__(self, dim: int, *, heads: int = 4, impl: str = "auto") -> None:
        super().__init__(dim, heads=heads, impl=impl)
        self.to_qkv = nn.Linear(dim, 3 * dim)
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def init_state(self, batch: int, tokens: int, device: torch.device, dtype: torch.dtype) -> State:
        e = self.dim // self.heads
        empty = torch.zeros(batch * tokens, self.heads, 0, e, device=device, dtype=dtype)
        return {"k": empty, "v": empty.clone()}

    def forward(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        b, t, n, d = x.shape
        if state is None:
            state = self.init_state(b, n, x.device, x.dtype)
        q, k, v = self._qkv(x, action)
        k, v = torch.cat([state["k"], k], dim=2), torch.cat([state["v"], v], dim=2)
        past = k.shape[2] - t
        # new frame i sees every cached frame and the new frames j <= i
        mask = torch.ones(t, k.shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
        y = self.to_out(rearrange(y, "(b n) h t e -> b t n (h e)", b=b))
        return y, {"k": k, "v": v}

    def _qkv(self, x: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Per spatial token ``(b n)``: q, k, v of every frame, with the action added to the input."""
        q, k, v = rearrange(
            self.to_qkv(x + action[:, :, None]), "b t n (three h e) -> three (b n) h t e", three=3, h=self.heads
        )
        return q, k, v

    def prefetch(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State, State]:
        y, new = self(x, state, action)
        return y, new, new  # the whole clean history; `read` masks what each frame may see

    def read(self, x: Tensor, ctx: State, action: Tensor) -> Tensor:
        """Noisy frame i sees the cached frames, the clean frames j < i and itself."""
        assert ctx is not None
        b, t, n, d = x.shape
        q, k, v = self._qkv(x, action)
        past = ctx["k"].shape[2] - t
        clean = torch.ones(t, ctx["k"].shape[2], dtype=torch.bool, device=x.device).tril(diagonal=past - 1)
        own = torch.eye(t, dtype=torch.bool, device=x.device)
        mask = torch.cat([clean, own], dim=1)
        y = F.scaled_dot_product_attention(
            q, torch.cat([ctx["k"], k], dim=2), torch.cat([ctx["v"], v], dim=2), attn_mask=mask
        )
        return self.to_out(rearrange(y, "(b n) h t e -> b t n (h e)", b=b))
