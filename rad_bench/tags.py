"""Revisit tagging from the ground truth the model was given (never from pixels, never from its
own output).

A rollout conditions on ``context`` ground-truth frames and then generates the rest. Each generated
frame ``t`` gets one tag from the *context* frames that show its place:

- ``in_window``: one of them is still within attention's reach of ``t``, so attention alone can
  restore the view;
- ``revisit``: the place was shown in the context, but only beyond the reach: only memory can help;
- ``novel``: the place never appears in the context: nothing to remember, the model must invent it.

Generated frames never count as "shown": their content is the model's own guess, so a retrace whose
previous (generated) frame shows the same place is still a revisit if the only ground truth of that
place lies beyond the reach. Each frame also carries its ``gap``: frames since the place was last
shown in the context (``None`` for novel frames), the x-axis of the retrieval (memory decay) curve.

Reach, per attention mode (:attr:`rad_bench.model.dit.DiTConfig.reach`):

- ``sliding`` windows: each layer looks ``window - 1`` frames back and stacked layers compound
  (frame t at layer 2 reads frame t-1, whose layer-1 features read t-2, ...), so context frame
  ``s`` is reachable from ``t`` iff ``t - s < depth * (window - 1) + 1``. Tagging by the bare window
  would count frames the ``none`` baseline can still reach as revisits and flatter it.
- ``chunk`` attention (non-overlapping chunks of ``window`` frames at absolute positions, causal
  inside, blind to earlier chunks): stacking layers never crosses a chunk boundary, so ``s`` is
  reachable iff ``s // window == t // window``.

Places are integer ids: equal ids mean the same view (a lattice position for ``synthetic``; a cell
and heading bin for 3-D environments).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

TAGS = ("in_window", "revisit", "novel")


@dataclass(frozen=True)
class Reach:
    """Which earlier frames attention can still see from a frame."""

    frames: int  # sliding: depth * (window - 1) + 1
    chunk: int | None = None  # chunk attention: the chunk length (the window); ``frames`` is then unused

    def sees(self, s: int, t: int) -> bool:
        """Can frame ``t`` read frame ``s <= t`` through attention alone?"""
        if self.chunk is not None:
            return s // self.chunk == t // self.chunk
        return t - s < self.frames


def tag_frames_with_gap(places: Sequence[int], context: int, reach: Reach) -> list[tuple[str, int | None]]:
    """``(tag, gap)`` for generated frames ``context .. len(places) - 1`` of one episode; ``places``
    covers the whole episode, context first."""
    shown_at: dict[int, list[int]] = {}
    for s in range(context):
        shown_at.setdefault(places[s], []).append(s)
    out: list[tuple[str, int | None]] = []
    for t in range(context, len(places)):
        seen = shown_at.get(places[t])
        if not seen:
            out.append(("novel", None))
            continue
        tag = "in_window" if any(reach.sees(s, t) for s in seen) else "revisit"
        out.append((tag, t - seen[-1]))
    return out


def tag_frames(places: Sequence[int], context: int, reach: Reach | int) -> list[str]:
    """Tags only; an int ``reach`` means sliding-window attention with that reach."""
    r = reach if isinstance(reach, Reach) else Reach(int(reach))
    return [tag for tag, _ in tag_frames_with_gap(places, context, r)]
