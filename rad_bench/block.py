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
    state_knob: ClassVar[str | None] = None  # the constructor argument that sizes the carried state (if any)
    knob_decreases_state: ClassVar[bool] = False  # True where a larger knob means a smaller state (TTT's heads)

    @classmethod
    def carried_bytes(cls, dim: int, heads: int, tokens: int, **kwargs: Any) -> int | None:
        """Bytes of state carried between frames for one sample of ``tokens`` spatial tokens (float32 model),
        from the constructor arguments alone; what ``state_bytes(init_state(1, tokens, ...))`` measures (a
        test holds every block to it). None: the state grows with the frames seen (no fixed budget)."""
        return 0 if cls.state_growth == "constant" else None

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


def fit_state(cls: type[MemoryBlock], dim: int, heads: int, budget: int, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` with ``cls.state_knob`` set so the block carries as much state as fits in ``budget`` bytes per
    spatial token (and layer): the largest size (``hidden``, ``d_state``, ``k``), or the fewest heads that
    divide ``dim`` (TTT's ``inner_heads``). ValueError when no setting fits, or the state grows with time."""
    if cls.state_growth != "constant":
        raise ValueError("its state grows with the frames seen, so no fixed budget holds it")
    knob = cls.state_knob
    if knob is None:
        if (cls.carried_bytes(dim, heads, 1, **kwargs) or 0) <= budget:
            return dict(kwargs)
        raise ValueError(f"it carries a fixed {cls.carried_bytes(dim, heads, 1, **kwargs)} bytes per token")
    size = lambda v: cls.carried_bytes(dim, heads, 1, **{**kwargs, knob: v}) or 0  # noqa: E731
    if cls.knob_decreases_state:
        fits = [h for h in range(1, dim + 1) if dim % h == 0 and size(h) <= budget]
        best = min(fits) if fits else None
        smallest = size(dim)
    else:
        best, smallest = None, size(1)
        if smallest <= budget:
            lo, hi = 1, 2
            while size(hi) <= budget and hi < 2**20:
                lo, hi = hi, 2 * hi
            lo, hi = (hi, hi + 1) if size(hi) <= budget else (lo, hi)  # the cap itself fits: take it
            while hi - lo > 1:  # size(lo) fits, size(hi) does not
                mid = (lo + hi) // 2
                lo, hi = (mid, hi) if size(mid) <= budget else (lo, mid)
            best = lo
    if best is None:
        raise ValueError(f"no value of {knob} fits {budget} bytes per token (the smallest state is {smallest})")
    return {**kwargs, knob: best}


def budgeted_kwargs(cls: type[MemoryBlock], dim: int, heads: int, budget: int | None, kwargs: dict[str, Any]) -> dict:
    """``kwargs`` as a block is built under a state ``budget`` (video ``model.state_budget``, MQAR
    ``state_budget``): with the state knob fitted for a constant state; unchanged without a budget or for a
    growing state (full attention: the unbudgeted reference at every budget)."""
    if budget is None or cls.state_growth != "constant":
        return kwargs
    return fit_state(cls, dim, heads, budget, kwargs)
