"""One look for every figure of every report: a block keeps its colour across figures and runs (a fixed
palette by block name; sweep points of one block share it and differ by marker), references are dashed and
drawn under the learned blocks, legends sit outside the data, chance is a dotted line."""

from __future__ import annotations

import zlib
from typing import Any

from matplotlib import colormaps
from matplotlib.colors import to_hex

from rad_bench.report.tables import label_base

BLOCK_COLORS = {  # the blocks the benchmark ships; others take a stable colour from their name
    "none": "#555555",
    "full_attn": "#2ca02c",
    "lstm_attn": "#d62728",
    "mamba2": "#9467bd",
    "ttt": "#1f77b4",
    "frame_stack": "#ff7f0e",
    "copy_last": "#8c564b",
    "recall_oracle": "#e377c2",
}
VARIANT_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")  # sweep points of one block


def block_color(label: str) -> str:
    """The colour of a block (``mamba2[slots=4]`` takes ``mamba2``'s), the same in every report."""
    base = label_base(str(label))
    if base in BLOCK_COLORS:
        return BLOCK_COLORS[base]
    others = colormaps["tab20"].colors
    return to_hex(others[zlib.crc32(base.encode()) % len(others)])


def line_styles(labels: list[str], references: set[str]) -> dict[str, dict[str, Any]]:
    """Matplotlib keyword arguments per label: the block's colour; a marker per sweep point when a block has
    several; references dashed, thinner and drawn underneath, learned blocks on top."""
    out: dict[str, dict[str, Any]] = {}
    seen: dict[str, int] = {}
    for label in sorted(map(str, labels)):
        base = label_base(label)
        k = seen[base] = seen.get(base, -1) + 1
        ref = label in references
        out[label] = {
            "color": block_color(label),
            "ls": "--" if ref else "-",
            "lw": 1.0 if ref else 1.6,
            "zorder": 1 if ref else 3,
            "marker": VARIANT_MARKERS[k % len(VARIANT_MARKERS)] if label != base else None,
            "label": f"{label} (ref)" if ref else label,
        }
    return out


def legend_outside(ax: Any, **kw: Any) -> None:
    """The legend to the right of the axes, so it never covers data."""
    handles, _ = ax.get_legend_handles_labels()
    if handles:
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False, **kw)


def chance_line(ax: Any, chances: list[float]) -> None:
    """What a model that remembers nothing scores, as a dotted line (one per level the rows state)."""
    for c in chances:
        ax.axhline(c, color="k", ls=":", lw=1, label=f"chance {c:.3g}", zorder=2)
