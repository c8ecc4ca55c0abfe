"""The memory-block contract shared by every block in ``blocks/``.

A memory block is the swappable temporal mixer inside each layer of the video DiT
(:mod:`rad_bench.model.dit`). The shell owns normalisation, adaLN modulation, the gate and the
residual; the block only mixes along time, per spatial token or per frame as it documents.

Contract (checked for every registered block by ``tests/test_blocks_contract.py``):

- ``forward(x, state, action) -> (y, state)`` with ``x: (b, t, n, d)``, ``action: (b, t, d)``
  (the shell's action embedding), ``y`` like ``x``. ``state=None`` means "start of clip".
  State is a ``dict[str, Tensor]`` (or ``None`` for stateless blocks) and is *returned*, never
  mutated in place, so a caller can evaluate a frame and throw the new state away.
- causal: output at frame ``j`` depends on frames ``<= j`` only.
- one call over ``t`` frames == two calls over ``t1`` and ``t - t1`` frames with the state carried
  == ``t`` calls of :meth:`step`.
- the output projection is zero-initialised, so at step 0 every block computes the same
  function as the ``none`` baseline and differences come from learning.
- ``state_growth`` is ``"constant"`` or ``"linear"`` (in the number of frames seen).
- ``reads_history``: whether the output at frame ``j`` depends on the frames before ``j`` (False only
  for a block that adds nothing, like ``none``); the contract tests require a block that declares it
  to show it (in ``forward`` and in the frame-wise ``read``).
- constructor ``(dim, *, heads, impl, **kwargs)``: the model passes its width, its head count and the
  suite's ``impl`` (``auto|kernel|ref``, see :mod:`rad_bench.ops`); ``kwargs`` come from the suite's
  ``blocks[i].kwargs``. A block with kernels passes ``self.requested_impl`` to its ops.
- frame-wise training (RAD's state prefetch, :mod:`rad_bench.modes`): ``prefetch(clean, state, a)``
  runs over clean frames like ``forward`` and also returns a context ``ctx``; ``read(noisy, ctx, a)``
  then gives, for every frame ``t`` at once, what ``forward`` returns for the noisy frame ``t`` from
  the state reached after the clean frames ``< t``. The defaults below are that definition, run
  frame by frame (the oracle); blocks override both with a parallel form.
"""

from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from rad_bench.ops import check_impl

State = dict[str, Tensor] | None


class MemoryBlock(nn.Module, metaclass=ABCMeta):
    """Base class: subclasses implement :meth:`forward` and, if stateful, :meth:`init_state`."""

    name: ClassVar[str] = "?"
    state_growth: ClassVar[str] = "constant"
    reads_history: ClassVar[bool] = True

    def __init__(self, dim: int, *, heads: int = 4, impl: str = "auto") -> None:
        super().__init__()
        self.dim, self.heads, self.requested_impl = dim, heads, check_impl(impl)

    def init_state(self, batch: int, tokens: int, device: torch.device, dtype: torch.dtype) -> State:
        return None

    @abstractmethod
    def forward(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        """Mix ``x: (b, t, n, d)`` along time from ``state``; return ``(y, new_state)``."""

    def prefetch(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State, Any]:
        """``forward`` over clean frames, plus the context :meth:`read` needs: here, the state that
        enters each frame (a list, one ``forward`` call per frame)."""
        ys, entering = [], []
        for t in range(x.shape[1]):
            entering.append(state)
            y, state = self(x[:, t : t + 1], state, action[:, t : t + 1])
            ys.append(y)
        return torch.cat(ys, dim=1), state, entering

    def read(self, x: Tensor, ctx: Any, action: Tensor) -> Tensor:
        """``y[:, t] = forward(x[:, t:t+1], <state after the clean frames < t>)``, state discarded."""
        return torch.cat([self(x[:, t : t + 1], s, action[:, t : t + 1])[0] for t, s in enumerate(ctx)], dim=1)

    def step(self, x: Tensor, state: State, action: Tensor) -> tuple[Tensor, State]:
        """One frame: ``x: (b, n, d)``, ``action: (b, d)``. Defaults to ``forward`` with ``t = 1``."""
        y, state = self(x[:, None], state, action[:, None])
        return y[:, 0], state

    @property
    def impl(self) -> str:
        """Which implementation runs (``ref`` = pure PyTorch); blocks with kernels override it."""
        return "ref"


def state_bytes(state: State) -> int:
    """Bytes held by a block state (what must be kept between frames)."""
    if state is None:
        return 0
    return sum(v.numel() * v.element_size() for v in state.values() if isinstance(v, Tensor))
