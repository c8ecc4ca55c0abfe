"""Revisit tagging from ground-truth places (never from pixels).

Each generated frame gets one tag:

- ``in_window``: its place was last seen fewer than ``reach`` frames earlier, so attention alone
  can still see it;
- ``revisit``: seen before, but only longer ago than that -- only memory can help;
- ``novel``: never seen before in the episode -- nothing to remember, the model must invent it.

``reach`` is the attention reach of the model, not just the window: each layer's temporal attention
looks ``window - 1`` frames back and stacked layers compound (frame t at layer 2 reads frame t-1,
whose layer-1 features read frame t-2, ...), so ``reach = depth * (window - 1) + 1``
(:attr:`rad_bench.model.dit.DiTConfig.reach`). Tagging by the bare window would count frames the
``none`` baseline can still reach as "revisits" and flatter it.

"Seen" counts every earlier frame of the episode, context and generated alike (the model has
produced or observed that view). Places are integer ids: equal ids mean the same view (a lattice
position for ``synthetic``; a cell and heading bin for 3-D environments).
"""

from __future__ import annotations

from collections.abc import Sequence

TAGS = ("in_window", "revisit", "novel")


def tag_frames(places: Sequence[int], start: int, reach: int) -> list[str]:
    """Tags for frames ``start .. len(places) - 1`` of one episode."""
    last_seen: dict[int, int] = {}
    tags = []
    for t, place in enumerate(places):
        if t >= start:
            if place not in last_seen:
                tags.append("novel")
            elif t - last_seen[place] < reach:
                tags.append("in_window")
            else:
                tags.append("revisit")
        last_seen[place] = t
    return tags
