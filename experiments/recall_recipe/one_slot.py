"""Keying or carrying? Score trained recall cells on validation episodes that write ONE slot (K = 1), where a
read that ignores the key is exact, beside the suite's K = 2 (issue 23: why lstm_attn stays at chance).

    python experiments/recall_recipe/one_slot.py RUN_DIR CELL [CELL ...]

Each cell is rolled out as the suite rolls it out (its sampler, steps and context), on 128 validation episodes,
and scored on first asks (one per episode at K = 1). A block that recalls at K = 1 but not at K = 2 carries a
value across the delay and draws it, but does not select it by its key; one at chance at K = 1 does not carry
or does not draw it at all.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from sampler import load

from rad_bench.build import reach_of
from rad_bench.registry import DATASETS
from rad_bench.rollout import rollout
from rad_bench.score import frame_tags, score_frames

CLIPS = 128


def score(suite, model, d, data) -> float:
    r = suite.rollout
    ev = data.eval_set(CLIPS, r.context, r.horizon, split="validation")
    tags = frame_tags(ev.places, r.context, reach_of(model.cfg))
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        gen = rollout(model, d, ev.frames, ev.actions, context=r.context, horizon=r.horizon,
                      sampling_steps=r.sampling_steps, g=g, progress=False)[0]  # fmt: skip
    rows = score_frames(gen, ev.frames[:, r.context :], tags, metrics=["recall_acc"], scored=ev.scored[:, r.context :])
    vals = [x["value"] for x in rows if x["scored"]]
    return sum(vals) / len(vals)


def main() -> None:
    torch.set_num_threads(1)
    run, cells = Path(sys.argv[1]), sys.argv[2:]
    for cell in cells:
        suite, model, d, data = load(run, cell)
        out = {}
        for k in (1, 2):
            cfg = data.cfg.model_copy(update={"slots": k})
            out[k] = score(suite, model, d, DATASETS.get(suite.data.name)(cfg, seed=0))
        print(f"{cell}\tK=1 {out[1]:.3f}\tK=2 {out[2]:.3f}", flush=True)


if __name__ == "__main__":
    main()
