"""Reference rows that bound the learned blocks, scored by the same code, with no training.

- ``copy_last``: every generated frame is the last context frame. A learned block that scores
  below it has learned nothing useful about the rollout.
- ``recall_oracle``: each generated frame is the most recent context frame that shows the same
  ground-truth place (the last context frame for a novel place): a perfect memory of the context
  with no rendering skill. The distance from a block to it is what memory could still gain.

Both only read the context and the ground-truth place ids, exactly what a rollout is given
(``places`` of generated frames come from the ground truth, as for the revisit tags).
"""

from __future__ import annotations

import torch
from torch import Tensor


def copy_last(frames: Tensor, places: Tensor, context: int, horizon: int) -> Tensor:
    """``(N, horizon, c, H, W)``: the last context frame repeated."""
    return frames[:, context - 1 : context].expand(-1, horizon, *frames.shape[2:]).clone()


def recall_oracle(frames: Tensor, places: Tensor, context: int, horizon: int) -> Tensor:
    """``(N, horizon, c, H, W)``: per generated frame, the latest context frame of its place."""
    ctx_places = places[:, :context]  # (N, context)
    target = places[:, context : context + horizon]  # (N, horizon)
    match = ctx_places[:, None, :] == target[:, :, None]  # (N, horizon, context)
    index = torch.arange(context).expand_as(match)
    latest = torch.where(match, index, -1).amax(dim=-1)  # -1 where the place is novel
    latest = torch.where(latest < 0, context - 1, latest)
    return torch.stack([frames[i, latest[i]] for i in range(frames.shape[0])])


REFERENCES = {"copy_last": copy_last, "recall_oracle": recall_oracle}  # = rad_bench.results.REFERENCE_NAMES
