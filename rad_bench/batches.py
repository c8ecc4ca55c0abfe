"""Training batches in order, drawn in the step or ahead of it by a background thread.

A run draws every batch from one ``torch.Generator`` (:func:`rad_bench.train.train`), and a checkpoint
stores that generator's state so a resumed run draws the very next batch. Drawing ahead breaks the
naive version of this (the generator is already past batches not trained on yet), so the feed
records the generator's state right after each batch it draws and hands it out with the batch:
:meth:`BatchFeed.rng_state` is the state after the last batch *handed out*, whichever thread drew it.
The batches themselves are the same with and without the thread (``tests/test_train_fast.py``).

On CUDA the GPU then never waits for the Python data code (synthetic episodes are cropped on the
CPU); on CPU the thread would only compete with the step for the same cores, so ``train.prefetch_batches:
auto`` keeps CPU runs drawing in the step.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

_POLL_S = 0.05  # how often a blocked worker checks whether the feed was closed


class BatchFeed:
    """``count`` batches from ``draw()`` (which draws from ``g``), in order; with ``ahead`` drawn by a
    daemon thread one batch ahead of the consumer (a one-slot queue). Use as a context manager so the
    thread stops with the loop, also when the step raises."""

    def __init__(self, draw: Callable[[], Any], g: torch.Generator, count: int, *, ahead: bool) -> None:
        self.draw, self.g, self.count, self.ahead = draw, g, count, ahead
        self._state: Tensor = g.get_state()  # with a thread: after the last batch handed out
        self._queue: queue.Queue[tuple[Any, Tensor | None]] = queue.Queue(maxsize=1)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        if ahead and count > 0:
            self._thread = threading.Thread(target=self._work, name="rad-bench-batches", daemon=True)
            self._thread.start()

    def _put(self, item: tuple[Any, Tensor | None]) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def _work(self) -> None:
        try:
            for _ in range(self.count):
                if not self._put((self.draw(), self.g.get_state())):
                    return
        except BaseException as e:  # handed to the consumer, raised there with its own traceback
            self._put((e, None))

    def next(self) -> Any:
        """The next batch (drawn now, or taken from the thread, re-raising its error)."""
        if self._thread is None:
            return self.draw()
        batch, state = self._queue.get()
        if state is None:
            raise batch
        self._state = state
        return batch

    def rng_state(self) -> Tensor:
        """The generator's state right after the last batch handed out: what a checkpoint stores."""
        return self._state if self._thread is not None else self.g.get_state()

    def close(self) -> None:
        """Stop the thread (it may be blocked on a full queue or inside ``draw``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def __enter__(self) -> BatchFeed:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
