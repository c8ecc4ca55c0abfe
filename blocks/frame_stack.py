"""``frame_stack``: DIAMOND-style frame stacking -- the last k frames concatenated along channels."""

from __future__ import annotations

from typing import Any

import torch
from einops import rearrange
from torch import Tensor, nn

from rad_bench.block import MemoryBlock, State
from rad_bench.registry import register_block


@register_block("frame_stack")
class FrameStack(MemoryBlock):
    """Frame stacking as in DIAMOND (Alonso et al. 2024, https://arxiv.org/abs/2405.12399), which
    conditions its denoiser on the last few frames concatenated along channels: per spatial token,
    the block's inputs (``x`` plus the action embedding) of the last ``k`` frames, the current one
    included, are concatenated oldest first and mixed by ``Linear(k d -> d), GELU, Linear(d -> d)``
    with the last layer zero-initialised. ``k`` is independent of the shell's ``window``; frames
    before the clip start are zeros. A finite receptive field and no recurrence: anything older than
    ``k`` frames is forgotten. State: ``past: (b, k-1, n, d)`` the last k-1 inputs (zeros until
    seen) and ``t0: ()`` frames seen, constant size. Cost per frame: O(n k d^2).
    """

    state_growth = "constant"

    state_knob = "k"

    @classmethod
    def carried_bytes(cls, dim: int, heads: int, tokens: int, k: int = 4, **kwargs: Any) -> int:
        return 4 * tokens * (k - 1) * dim + 8  # the last k-1 inputs per token, and the frame counter

    def __init__(self, dim: int, *, heads: int = 4, impl: str = "auto", k: int = 4) -> None:
        super().__init__(dim, heads=heads, impl=impl)
        assert k >= 1, f"k must be >= 1, got {k}"
        self.k = k
        self.to_hidden = nn.Linear(k * dim, dim)
        self.act = nn.GELU()
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def init_state(self, batch: int, tokens: int, device: torch.device, dtype: torch.dtype) -> State:
        past = torch.zeros(batch, self.k - 1, tokens, self.dim, device=device, dtype=dtype)
        return {"past": past, "t0": torch.zeros((), dtype=torch.long, device=device)}

    def forward(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        b, t, n, d = x.shape
        if state is None:
            state = self.init_state(b, n, x.device, x.dtype)
        u = x + action[:, :, None]
        seq = torch.cat([state["past"], u], dim=1)  # (b, k-1+t, n, d); zeros stand in for missing frames
        # window i covers seq[i : i+k] = frames (i-k+1 .. i) of this call; unfold puts k last
        stack = rearrange(seq.unfold(1, self.k, 1), "b t n d k -> b t n (k d)")
        y = self.to_out(self.act(self.to_hidden(stack)))
        # a copy, not a view: the state must not pin the whole call's inputs in memory
        past = seq[:, seq.shape[1] - (self.k - 1) :].clone()
        return y, {"past": past, "t0": state["t0"] + t}

    def prefetch(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State, Tensor]:
        if state is None:
            state = self.init_state(x.shape[0], x.shape[2], x.device, x.dtype)
        y, new = self(x, state, action)
        return y, new, torch.cat([state["past"], x + action[:, :, None]], dim=1)  # clean inputs, padded

    def read(self, x: Tensor, ctx: Tensor, action: Tensor) -> Tensor:
        """Noisy frame i stacks the k-1 clean inputs before it with its own."""
        t, u = x.shape[1], (x + action[:, :, None])[..., None]
        past = ctx[:, : ctx.shape[1] - 1].unfold(1, self.k - 1, 1)[:, :t] if self.k > 1 else u[..., :0]
        stack = torch.cat([past, u], dim=-1)  # (b, t, n, d, k), oldest first
        return self.to_out(self.act(self.to_hidden(rearrange(stack, "b t n d k -> b t n (k d)"))))
