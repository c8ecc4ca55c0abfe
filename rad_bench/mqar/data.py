"""MQAR sequences (multi-query associative recall; Zoology, Arora et al. 2023,
https://arxiv.org/abs/2312.04927, Sec. 3 and App. E).

A sequence writes K key-value pairs (keys distinct, drawn from the key vocabulary; values drawn
independently from the value vocabulary, so a value may repeat and chance is exactly 1/value_vocab),
fresh for every sequence, so nothing can be memorised across sequences. Then come the K keys again in
random order, at random positions of the query region (sorted, so the gap to the written pair grows
along the region); every other query-region step is the pad token. The target at a query step is its
key's value; every other target is ``IGNORE``. Every K of a suite shares one length ``seq_len``.

Token ids: ``0`` pad, ``1 .. key_vocab`` keys, ``key_vocab + 1 .. key_vocab + value_vocab`` values.
Inputs are ``(b, t, c)`` ids whose ``c`` embeddings the model sums:

- ``split`` (Zoology's layout, ``c = 1``): ``k1 v1 k2 v2 ... kK vK`` then the query region. The
  model must bind a value to the key one step before it, which needs a short-range shift (Zoology's
  short convolution, or attention with positions) before any recall.
- ``pair`` (``c = 2``): step i carries key i and value i together (``[k_i, v_i]``), a query step
  ``[k, pad]``. This is the token analogue of a video frame that shows a slot's place and its
  content at once, and it tests recall alone.

Streams: train draws from a ``numpy`` generator seeded ``(seed, 0)``, val and eval from ``(seed, 1, K)``
and ``(seed, 2, K)``: disjoint streams, the same stream for the same seed (so every block of a seed
is scored on the same eval sequences).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

PAD, IGNORE = 0, -100
SPLIT = {"train": 0, "val": 1, "eval": 2}


def stream(seed: int, split: str, k: int | None = None) -> np.random.Generator:
    """The generator of one split of one seed (and one K: val and eval draw each K on its own)."""
    return np.random.default_rng([seed, SPLIT[split]] + ([] if k is None else [k]))


def _distinct(rng: np.random.Generator, n: int, pool: int, k: int) -> np.ndarray:
    """``(n, k)`` draws without replacement from ``range(pool)``, one row at a time (argsort of noise)."""
    return np.argsort(rng.random((n, pool)), axis=1)[:, :k]


def make_mqar(
    rng: np.random.Generator, n: int, k: int, seq_len: int, key_vocab: int, value_vocab: int, layout: str = "pair"
) -> tuple[Tensor, Tensor]:
    """``n`` sequences with ``k`` pairs each: inputs ``(n, seq_len, c)`` and targets ``(n, seq_len)`` long."""
    keys = _distinct(rng, n, key_vocab, k) + 1
    values = rng.integers(0, value_vocab, size=(n, k)) + 1 + key_vocab
    order = _distinct(rng, n, k, k)  # which pair each query asks for
    write = k if layout == "pair" else 2 * k
    at = write + np.sort(_distinct(rng, n, seq_len - write, k), axis=1)  # query steps
    rows = np.arange(n)[:, None]
    c = 2 if layout == "pair" else 1
    x = np.full((n, seq_len, c), PAD, dtype=np.int64)
    y = np.full((n, seq_len), IGNORE, dtype=np.int64)
    if layout == "pair":
        x[:, :k, 0], x[:, :k, 1] = keys, values
    else:
        x[:, 0:write:2, 0], x[:, 1:write:2, 0] = keys, values
    x[rows, at, 0] = np.take_along_axis(keys, order, axis=1)
    y[rows, at] = np.take_along_axis(values, order, axis=1)
    return torch.from_numpy(x), torch.from_numpy(y)


def mqar_batch(
    rng: np.random.Generator, n: int, ks: list[int], seq_len: int, key_vocab: int, value_vocab: int, layout: str
) -> tuple[Tensor, Tensor]:
    """A training batch split as evenly as possible over ``ks`` (one length, so K mixes in a batch)."""
    parts = [
        make_mqar(rng, len(idx), k, seq_len, key_vocab, value_vocab, layout)
        for k, idx in zip(ks, np.array_split(np.arange(n), len(ks)))
        if len(idx)
    ]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
