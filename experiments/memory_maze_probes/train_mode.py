"""RAD's chunk-wise against frame-wise training on Memory Maze (issue 29), on the frames both modes tag the same.

Chunk-wise cells attend only within their own chunk, so every generated frame is a revisit for them, while
frame-wise cells see the last frames through their sliding window (their ``in_window`` frames). A block's
chunk-wise cell against its frame-wise cell is therefore compared on the frames the frame-wise tagging calls
``revisit`` (a subset of the chunk-wise revisits: shown in the context only beyond any attention reach), per
seed and clip on the identical evaluation episodes, with the report's two-level bootstrap. Within a mode each
block is also paired with `none` trained in that mode on that mode's revisits (the leaderboard's column), and
chunk-wise with frame-wise on all generated frames (the window's frames included).

Usage: python experiments/memory_maze_probes/train_mode.py RUN  (RUN: a run of memory_maze_probes/train_mode.yaml)
Prints a markdown table.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from rad_bench.report.tables import bootstrap_ci

BLOCKS = ("none", "lstm_attn", "mamba2")


def per_clip(df: pd.DataFrame, block: str, mode: str, frames: pd.Index | None = None) -> pd.DataFrame:
    """Mean revisit PSNR per (seed, clip) of ``block[mode=mode]``: on its own revisit frames, or on ``frames``
    (a (seed, clip, frame) index) when given."""
    rows = df[df["block"] == f"{block}[mode={mode}]"].set_index(["seed", "clip", "frame"])["value"]
    if frames is None:
        tags = df[df["block"] == f"{block}[mode={mode}]"].set_index(["seed", "clip", "frame"])["tag"]
        rows = rows[tags == "revisit"]
    else:
        rows = rows.loc[rows.index.intersection(frames)]
    return rows.groupby(level=["seed", "clip"]).mean().unstack("clip")


def frame_frames(df: pd.DataFrame, block: str, tags: tuple[str, ...]) -> pd.Index:
    """The (seed, clip, frame) index of ``block[mode=frame]``'s generated frames tagged one of ``tags``."""
    sub = df[(df["block"] == f"{block}[mode=frame]") & df["tag"].isin(tags)]
    return pd.MultiIndex.from_frame(sub[["seed", "clip", "frame"]])


def line(a: str, b: str, d: pd.DataFrame, frames: str) -> str:
    mean, lo, hi = bootstrap_ci(d.to_numpy(dtype=float))
    star = " *" if lo > 0 or hi < 0 else ""
    return f"| {a} | {b} | {frames} | {mean:+.2f} [{lo:.2f}, {hi:.2f}]{star} |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    args = ap.parse_args()
    df = pd.read_csv(args.run / "metrics.csv", low_memory=False)
    df = df[(df["metric"] == "psnr") & (df["frame"] >= 0)]
    out = ["| A | B | frames | Δ psnr (dB, 95% CI) |", "|---|---|---|---|"]
    for mode in ("chunk", "frame"):
        for block in BLOCKS[1:]:
            d = per_clip(df, block, mode) - per_clip(df, "none", mode)
            out.append(line(f"{block}[mode={mode}]", f"none[mode={mode}]", d, f"{mode}-wise revisits"))
    for tags, frames in ((("revisit",), "frame-wise revisits"), (("revisit", "in_window", "novel"), "all")):
        for block in BLOCKS:
            common = frame_frames(df, block, tags)
            d = per_clip(df, block, "chunk", common) - per_clip(df, block, "frame", common)
            out.append(line(f"{block}[mode=chunk]", f"{block}[mode=frame]", d, frames))
    print("\n".join(out))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
