"""``lstm_attn``: RAD's memory block -- an LSTM per spatial token, read out by attention."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn

from rad_bench.block import MemoryBlock, State
from rad_bench.ops.lstm import lstm_cell, lstm_scan, lstm_update
from rad_bench.registry import register_block


class LSTMCell(nn.Module):
    """The LSTM cell's parameters (:mod:`rad_bench.ops.lstm`): one fused ``Linear(d_in + d_h -> 4 d_h)``
    on ``[x, h]`` holds all gate weights, in ``torch.nn.LSTM`` order (i, f, g, o). :meth:`step` is the
    literal cell (the test oracle); :meth:`scan` is the same function over a sequence, run by
    PyTorch's fused LSTM kernel (:func:`rad_bench.ops.lstm.lstm_scan`).
    """

    def __init__(self, dim_in: int, hidden: int) -> None:
        super().__init__()
        self.dim_in, self.hidden = dim_in, hidden
        self.to_gates = nn.Linear(dim_in + hidden, 4 * hidden)
        # forget-gate bias 1 (Jozefowicz et al. 2015): the memory starts by keeping, not erasing
        with torch.no_grad():
            self.to_gates.bias.zero_()
            self.to_gates.bias[hidden : 2 * hidden].fill_(1.0)

    def step(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
        """One step: ``x: (B, d_in)``, ``h, c: (B, d_h)`` -> ``(h, c)``."""
        return lstm_cell(x, h, c, self.to_gates.weight, self.to_gates.bias)

    def scan(self, x: Tensor, h: Tensor, c: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Sequence: ``x: (B, t, d_in)``, ``h, c: (B, d_h)`` -> ``(hs: (B, t, d_h), h, c)``."""
        return lstm_scan(x, h, c, self.to_gates.weight, self.to_gates.bias, self.training)


@register_block("lstm_attn")
class LSTMAttention(MemoryBlock):
    """RAD's memory (Chen et al. 2025, https://arxiv.org/abs/2511.12940): an LSTM whose hidden and
    cell states are the memory carried across frames, read out by attention; the action embedding is
    added to the block's input. The paper does not say along which axis its LSTM recurs, so we recur
    *per spatial token along time* (``(b n)`` independent sequences, like the shell's temporal
    attention): the state then keeps spatial detail (n vectors per layer, not one) and the recurrence
    is as parallel as the batch. Because camera motion moves content across positions, the read-out
    is not per token: per frame, the n tokens of the current input (queries) attend over the n hidden
    states ``h_t`` of that same frame (keys/values), multi-head, so each token can read memory from
    any position. No positional encoding in the read-out (the block does not know the frame's grid);
    queries match memory by content. The LSTM cell is hand-written (one fused gate Linear, forget
    bias 1) and checked against ``torch.nn.LSTM``. Output projection zero-initialised.
    State: ``h, c: ((b n), d_h)``, constant size. Cost per frame: O(n d d_h) for the gates,
    O(n^2 d) for the read-out attention, O(n d^2) projections.
    """

    state_growth = "constant"

    state_knob = "hidden"

    @classmethod
    def carried_bytes(cls, dim: int, heads: int, tokens: int, hidden: int | None = None, **kwargs: Any) -> int:
        return 4 * tokens * 2 * (hidden or dim)  # h and c per token

    def __init__(self, dim: int, *, heads: int = 4, impl: str = "auto", hidden: int | None = None) -> None:
        super().__init__(dim, heads=heads, impl=impl)
        assert dim % heads == 0, f"dim {dim} must be divisible by heads {heads}"
        self.hidden = hidden or dim
        self.cell = LSTMCell(dim, self.hidden)
        self.to_q = nn.Linear(dim, dim)
        self.to_kv = nn.Linear(self.hidden, 2 * dim)
        self.to_out = nn.Linear(dim, dim)
        nn.init.zeros_(self.to_out.weight)
        nn.init.zeros_(self.to_out.bias)

    def init_state(self, batch: int, tokens: int, device: torch.device, dtype: torch.dtype) -> State:
        h = torch.zeros(batch * tokens, self.hidden, device=device, dtype=dtype)
        return {"h": h, "c": h.clone()}

    def forward(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        b, t, n, d = x.shape
        if state is None:
            state = self.init_state(b, n, x.device, x.dtype)
        u = x + action[:, :, None]  # RAD feeds the action to the memory block directly
        hs, h, c = self.cell.scan(rearrange(u, "b t n d -> (b n) t d"), state["h"], state["c"])
        y = self.readout(u, rearrange(hs, "(b n) t e -> b t n e", b=b))
        return y, {"h": h, "c": c}

    def prefetch(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State, tuple[Tensor, Tensor]]:
        """The fused scan over the clean frames, plus the ``(h, c)`` entering every frame: ``h`` from the
        scan's outputs, ``c`` from its linear recurrence ``c_t = f_t c_(t-1) + i_t g_t`` (cheap,
        elementwise) with the gates recomputed in one batched matmul."""
        b, t, n, d = x.shape
        if state is None:
            state = self.init_state(b, n, x.device, x.dtype)
        u = rearrange(x + action[:, :, None], "b t n d -> (b n) t d")
        hs, h, c = self.cell.scan(u, state["h"], state["c"])
        h_in = torch.cat([state["h"][:, None], hs[:, :-1]], dim=1)  # (b n, t, d_h) entering each frame
        i, f, g, _ = self.cell.to_gates(torch.cat([u, h_in], dim=-1)).chunk(4, dim=-1)
        write, keep = torch.sigmoid(i) * torch.tanh(g), torch.sigmoid(f)
        cs = [state["c"]]
        for j in range(t - 1):
            cs.append(keep[:, j] * cs[-1] + write[:, j])
        y = self.readout(rearrange(u, "(b n) t d -> b t n d", b=b), rearrange(hs, "(b n) t e -> b t n e", b=b))
        return y, {"h": h, "c": c}, (h_in, torch.stack(cs, dim=1))

    def read(self, x: Tensor, ctx: tuple[Tensor, Tensor], action: Tensor) -> Tensor:
        """One cell step per frame, all frames at once, from the prefetched clean ``(h, c)``."""
        b = x.shape[0]
        u = x + action[:, :, None]
        h_in, c_in = ctx
        gates = self.cell.to_gates(torch.cat([rearrange(u, "b t n d -> (b n) t d"), h_in], dim=-1))
        h, _ = lstm_update(gates, c_in)
        return self.readout(u, rearrange(h, "(b n) t e -> b t n e", b=b))

    def readout(self, u: Tensor, hs: Tensor) -> Tensor:
        """Per frame, tokens ``u: (b, t, n, d)`` attend over that frame's memory ``hs: (b, t, n, d_h)``."""
        b = u.shape[0]
        q = rearrange(self.to_q(u), "b t n (h e) -> (b t) h n e", h=self.heads)
        k, v = rearrange(self.to_kv(hs), "b t n (two h e) -> two (b t) h n e", two=2, h=self.heads)
        y = F.scaled_dot_product_attention(q, k, v)  # no mask: all n memory slots of this frame
        return self.to_out(rearrange(y, "(b t) h n e -> b t n (h e)", b=b))
