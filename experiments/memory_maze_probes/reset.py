"""Where does a memory block's gain over `none` come from? (issue 29). Each finished learned cell of a run is rolled
out twice on the same evaluation episodes with the same noise as the run: as in the run, and with its memory
block's state reset once the context is committed (``rollout(after_context=...)``: the window's KV cache is
kept, so the model still sees the last context frames as `none` does; the memory then holds only what it
stores of its own generated frames). The difference, per seed and clip, is what the memory carried over from
the context; a gain over `none` that survives the reset was not recall of the context.

Prints per block: PSNR as run and with the reset (in-window and revisit frames, tagged as the run tags them),
and the paired difference as run minus reset with its two-level bootstrap 95% interval (seeds, then clips).

Usage: python experiments/memory_maze_probes/reset.py results/memory_maze/<run> [--split test|validation]
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from rad_bench.build import reach_of
from rad_bench.model.dit import DiTState
from rad_bench.report.tables import bootstrap_ci
from rad_bench.results import REFERENCE_NAMES
from rad_bench.reuse import FinishedCell, load_cell
from rad_bench.rollout import EVAL_NOISE_SEED, rollout
from rad_bench.rundir import cell_done
from rad_bench.score import frame_tags, score_frames


def scores(done: FinishedCell, reset: bool) -> pd.DataFrame:
    """PSNR per clip and tag of one rollout of a finished cell (mean over the clip's frames of that tag)."""
    r, ev, model = done.suite.rollout, done.eval_set, done.model

    def fresh_memory(state: DiTState, batch: int) -> DiTState:
        mem = model.init_state(batch, torch.device("cpu")).mem
        return DiTState(t0=state.t0, kv=state.kv, mem=mem, last=state.last)

    out = []
    for i in range(0, r.clips, r.batch_size):
        gen, _ = rollout(
            model, done.diffusion, ev.frames[i : i + r.batch_size], ev.actions[i : i + r.batch_size],
            context=r.context, horizon=r.horizon, sampling_steps=r.sampling_steps,
            g=torch.Generator().manual_seed(EVAL_NOISE_SEED + i), progress=False,
            after_context=fresh_memory if reset else None,
        )  # fmt: skip
        out.append(gen)
    generated = torch.cat(out)
    tags = frame_tags(ev.places, r.context, reach_of(model.cfg))
    rows = pd.DataFrame(score_frames(generated, ev.frames[:, r.context :], tags, metrics=["psnr"]))
    return rows.groupby(["clip", "tag"])["value"].mean().unstack("tag")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--split", default="test", choices=["test", "validation"])
    args = ap.parse_args()
    cells = sorted(p.name for p in (args.run / "cells").iterdir() if cell_done(args.run, p.name))
    learned = [c for c in cells if not c.startswith((*REFERENCE_NAMES, "none-"))]
    print(f"{args.run}, {args.split} episodes: PSNR (dB) as run / with the memory reset after the context\n")
    print("| block | seeds | in_window as run | in_window reset | revisit as run | revisit reset | "
          "Δ revisit (run - reset) | Δ in_window (run - reset) |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|")
    by_block: dict[str, list[str]] = {}
    for c in learned:
        by_block.setdefault(re.sub(r"-s\d+$", "", c), []).append(c)
    for block, group in by_block.items():
        loaded = [load_cell(args.run, c, args.split) for c in group]
        ran, cut = [scores(d, reset=False) for d in loaded], [scores(d, reset=True) for d in loaded]
        cells_ = []
        for tag in ("revisit", "in_window"):
            m, lo, hi = bootstrap_ci(np.stack([(a[tag] - b[tag]).to_numpy() for a, b in zip(ran, cut)]))
            cells_.append(f"{m:+.2f} [{lo:.2f}, {hi:.2f}]{' *' if lo > 0 or hi < 0 else ''}")
        mean = lambda frames, tag: np.mean([f[tag].mean() for f in frames])  # noqa: E731
        print(f"| {block} | {len(group)} | {mean(ran, 'in_window'):.2f} | {mean(cut, 'in_window'):.2f} | "
              f"{mean(ran, 'revisit'):.2f} | {mean(cut, 'revisit'):.2f} | {cells_[0]} | {cells_[1]} |")  # fmt: skip


if __name__ == "__main__":
    main()
