"""``none``: no memory beyond the shell's temporal window -- the baseline that forgets."""

from __future__ import annotations

import torch
from torch import Tensor

from rad_bench.block import MemoryBlock, State
from rad_bench.registry import register_block


@register_block("none")
class NoMemory(MemoryBlock):
    """Adds nothing: the layer sees only the last ``window`` frames through temporal attention.

    State: none. Cost per frame: zero. Everything older than the window is forgotten.
    """

    state_growth = "constant"
    reads_history = False  # the output never depends on earlier frames

    def forward(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        return torch.zeros_like(x), state

    def prefetch(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State, None]:
        return torch.zeros_like(x), state, None

    def read(self, x: Tensor, ctx: None, action: Tensor) -> Tensor:
        return torch.zeros_like(x)
