"""The token model of the MQAR calibration: a registered memory block, unchanged, as the only mixer.

``embed -> L x [x + block(norm(x)), x + mlp(norm(x))] -> norm -> head``. The block sees one token
per step: ``x: (b, t, d) -> (b, t, n=1, d)``, a fresh ``init_state(b, 1)`` per sequence and an all-zero
action (the video shell's action embedding has no counterpart here). Nothing else in the model mixes
steps (no attention, no convolution in the shell), so ``none`` can only guess: chance accuracy is the
point of that row. The block's output projection is zero-initialised by the block contract, so every
model starts as the ``none`` model; the residual path keeps the gradient to the block non-zero.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from rad_bench.block import State, state_bytes


class MixerLayer(nn.Module):
    """Pre-norm residual block mixer, then a pre-norm residual MLP (GELU, ``mlp_ratio * d`` hidden)."""

    def __init__(self, mixer: nn.Module, dim: int, mlp_ratio: float) -> None:
        super().__init__()
        hidden = int(mlp_ratio * dim)
        self.norm1, self.mixer = nn.LayerNorm(dim), mixer
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> tuple[Tensor, State]:
        b, t, d = x.shape
        state = self.mixer.init_state(b, 1, x.device, x.dtype)
        # one token per step: the block's n axis is 1; the zero action adds nothing to its input
        y, state = self.mixer(self.norm1(x)[:, :, None], state, x.new_zeros(b, t, d))
        x = x + y[:, :, 0]
        return x + self.mlp(self.norm2(x)), state


class MQARModel(nn.Module):
    """Token ids ``(b, t, c)`` -> logits ``(b, t, vocab)``; the ``c`` embeddings of a step are summed."""

    def __init__(
        self,
        block_cls: type,
        *,
        vocab: int,
        dim: int,
        heads: int,
        layers: int,
        mlp_ratio: float = 2.0,
        seq_len: int | None = None,
        block_kwargs: dict | None = None,
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        # optional learned absolute positions (per-step, no mixing): what Zoology's attention has
        self.pos = nn.Parameter(0.02 * torch.randn(seq_len, dim)) if seq_len else None
        self.layers = nn.ModuleList(
            MixerLayer(block_cls(dim, heads=heads, **(block_kwargs or {})), dim, mlp_ratio) for _ in range(layers)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)

    def forward(self, x: Tensor, states: list[State] | None = None) -> Tensor:
        """Logits for ids ``x: (b, t, c)``; pass a list as ``states`` to collect each layer's final state."""
        h = self.embed(x).sum(dim=2)
        if self.pos is not None:
            h = h + self.pos[: h.shape[1]]
        for layer in self.layers:
            h, state = layer(h)
            if states is not None:
                states.append(state)
        return self.head(self.norm(h))


def model_state_bytes(model: MQARModel, x: Tensor) -> int:
    """Bytes of the blocks' states after reading ``x`` (all layers): what must be kept per sequence."""
    states: list[State] = []
    with torch.no_grad():
        model(x, states)
    return sum(state_bytes(s) for s in states)


def param_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())
