"""The LSTM recurrence (Hochreiter & Schmidhuber 1997) over a sequence, gates in ``torch.nn.LSTM``
order (i, f, g, o), with one fused gate weight ``W: (4 d_h, d_in + d_h)`` on ``[x, h]``::

    i, f, g, o = split(W [x_t, h_(t-1)] + b)     c_t = sig(f) c_(t-1) + sig(i) tanh(g)     h_t = sig(o) tanh(c_t)

- :func:`lstm_ref`: the cell as written, one step per frame (:func:`lstm_cell`). The test oracle.
- :func:`lstm_scan`: the same function run by PyTorch's fused LSTM kernel (``torch.lstm``, what
  ``nn.LSTM`` calls) on the two halves of ``W``. A Python loop over frames is much slower, most of
  all with backward; ``rad-bench bench`` compares this scan with ``nn.LSTM``.

Shapes: ``x: (B, t, d_in)``, ``h, c: (B, d_h)``, ``weight: (4 d_h, d_in + d_h)``, ``bias: (4 d_h,)``.
"""

from __future__ import annotations

import torch
from torch import Tensor


def lstm_update(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """``(h, c)`` after one step from the gate pre-activations ``gates: (..., 4 d_h)`` and ``c``."""
    i, f, g, o = gates.chunk(4, dim=-1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    return torch.sigmoid(o) * torch.tanh(c), c


def lstm_cell(x: Tensor, h: Tensor, c: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor]:
    """One step: ``x: (B, d_in)``, ``h, c: (B, d_h)`` -> ``(h, c)``."""
    return lstm_update(torch.nn.functional.linear(torch.cat([x, h], dim=-1), weight, bias), c)


def lstm_ref(x: Tensor, h: Tensor, c: Tensor, weight: Tensor, bias: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The recurrence one frame at a time -> ``(hs: (B, t, d_h), h, c)``."""
    hs = []
    for t in range(x.shape[1]):
        h, c = lstm_cell(x[:, t], h, c, weight, bias)
        hs.append(h)
    return torch.stack(hs, dim=1) if hs else x.new_zeros(*x.shape[:2], h.shape[-1]), h, c


def lstm_scan(
    x: Tensor, h: Tensor, c: Tensor, weight: Tensor, bias: Tensor, training: bool = False
) -> tuple[Tensor, Tensor, Tensor]:
    """The recurrence by ``torch.lstm`` -> ``(hs: (B, t, d_h), h, c)``, ``t >= 1``: the fused weight splits
    into its input and hidden halves, the bias goes on the input side (the hidden-side bias is zero).

    The halves are column slices of ``weight``, so their rows are strided; cuDNN rejects such views
    ("view size is not compatible with input tensor's size and stride"), hence ``.contiguous()``:
    a copy that autograd differentiates, so the gradient still flows into the fused ``weight``.

    It runs in float32 with autocast off: under a bf16 autocast the fused kernels get inputs and
    states of different dtypes and refuse them (cuDNN: "Input and hidden tensors are not the same
    dtype", seen on the first H100 run; oneDNN on CPU: no LSTM primitive), and a recurrent state
    is better kept in float32 anyway (float64 stays float64: the oracle tests). ``hs`` comes back in
    that dtype; autocast casts it where it is used."""
    dt = torch.promote_types(torch.promote_types(x.dtype, weight.dtype), torch.float32)
    w_x, w_h = weight.to(dt).split([weight.shape[1] - h.shape[-1], h.shape[-1]], dim=1)
    params = [w_x.contiguous(), w_h.contiguous(), bias.to(dt), torch.zeros_like(bias, dtype=dt)]
    with torch.autocast(x.device.type, enabled=False):
        hs, h, c = torch.lstm(x.to(dt), (h[None].to(dt), c[None].to(dt)), params, True, 1, 0.0, training, False, True)
    return hs, h[0], c[0]
