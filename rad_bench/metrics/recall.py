"""``recall_acc``: is the generated frame the right value? (the ``recall`` dataset's accuracy).

Both frames are classified by their nearest value rendering (pixel L2 over the whole view, against
all 32 renderings of :func:`rad_bench.data.recall.render_values` at the frame's size); a frame scores
1 when its class equals the target's. The target is an exact rendering, so its class is its true
value. Meaningful on frames that show a value (the ``recall`` query phase); a blank frame is
classified like any other.

Chance is 1/V for V = ``data.values`` (every row's protocol says ``chance=<number>``): every rendering
has the same norm, so a grey or blurred "average" guess is as close to one value as to another and
lands on a fixed class, right for 1 in V targets. With V < 32 a frame classified as a value that is
never drawn is simply wrong.
"""

from __future__ import annotations

import torch
from torch import Tensor

from rad_bench.data.recall import MAX_VALUES, render_values


def classify(x: Tensor) -> Tensor:
    """``(N, 3, H, W)`` in [-1, 1] -> ``(N,)`` index of the nearest value rendering (pixel L2)."""
    if x.ndim != 4 or x.shape[1] != 3 or x.shape[2] != x.shape[3]:
        raise ValueError(f"recall_acc needs square RGB frames (N, 3, H, W), got {tuple(x.shape)}")
    protos = render_values(x.shape[-1]).to(x.device, torch.float32).flatten(1)  # (32, 3 H W)
    return torch.cdist(x.float().flatten(1), protos).argmin(dim=1)


def recall_acc(pred: Tensor, target: Tensor) -> Tensor:
    """``(N,)`` 1.0 where ``pred`` shows the value of ``target``, else 0.0."""
    return (classify(pred) == classify(target)).float()


def recall_acc_protocol(**counts: object) -> str:
    """The protocol string of :func:`recall_acc` rows, with the exact chance level ``chance=<1/V>``:
    V from ``counts["data"]`` (the suite's ``data:`` section, passed by the runner), else the default 32."""
    data = counts.get("data")
    v = int(getattr(data, "values", MAX_VALUES))
    return f"nearest of {MAX_VALUES} value renderings, pixel L2; chance 1/V, V={v} (data.values): chance={1 / v:.6g}"
