"""Memory Maze diagnostic (issue 12): where the window looks at the first retrace frame.

Generated frame 0 shows context frame c-2 again (c = context), inside the temporal window. For a
trained cell, on the validation episodes: the place ids of frames c-3..c+1, and per layer the
temporal attention weight (mean over clips, tokens and heads) on frames c-2 (the copy source), c-1
and the frame itself, when denoising from levels 1000 (pure noise), 500 and 100.

    python docs/results/memory_maze_probes/attention.py RUN_DIR CELL   # e.g. results/memory_maze/<run> full_attn-s0

Version 2 (results/memory_maze/20261127-234347-65a0522 full_attn-s0): layer 0 put 0.71 on c-1 and 0.08
on c-2 at level 1000; the place ids of c-3..c+1 of clip 0 are all equal.
"""

import sys
from pathlib import Path

import torch
import yaml
from einops import rearrange

from rad_bench.build import make_model
from rad_bench.config import BlockSpec, data_config, validate
from rad_bench.model.diffusion import Diffusion
from rad_bench.registry import DATASETS
from rad_bench.rollout import commit, denoiser

run, cell = Path(sys.argv[1]), sys.argv[2]
raw = yaml.safe_load((run / "suite.resolved.yaml").read_text())
raw.pop("limited", None)
suite = validate(raw)
ck = torch.load(run / "checkpoints" / f"{cell}.pt", map_location="cpu", weights_only=True)
data = DATASETS.get(suite.data["name"])(data_config(suite), seed=0)
model = make_model(suite, BlockSpec(**ck["block"]), data, "cpu")
model.load_state_dict(ck["model"])
model.eval()
diff = Diffusion(suite.diffusion.levels, suite.diffusion.prediction)
r = suite.rollout
c = r.context
ev = data.eval_set(r.clips, r.context, r.horizon, "validation")
print("place ids c-3..c+1:", ev.places[0, c - 3 : c + 2].tolist() if hasattr(ev, "places") else "?")
print("actions motion part at c-2, c, (first 6):", ev.actions[0, c - 2, :6].tolist(), ev.actions[0, c, :6].tolist())
store = []
for i, layer in enumerate(model.layers):
    att = layer.temporal

    def attend(q, k, v, mask=None, att=att, i=i):
        s = (q @ k.transpose(-1, -2)) / q.shape[-1] ** 0.5
        if mask is not None:
            s = s.masked_fill(~mask, float("-inf"))
        p = s.softmax(-1)
        store.append((i, p.mean(dim=(0, 1))))  # over (b n) and heads -> (Lq, Lk)
        y = p @ v
        return att.to_out(rearrange(y, "s h l e -> s l (h e)"))

    att.attend = attend
with torch.no_grad():
    state = commit(model, ev.frames[:, :c], ev.actions[:, :c], None)
    store.clear()
    x = torch.randn(ev.frames[:, c : c + 1].shape, generator=torch.Generator().manual_seed(0))
    for kk in (diff.T, 500, 100):
        store.clear()
        k = torch.full((x.shape[0], 1), kk)
        xk = diff.q_sample(ev.frames[:, c : c + 1], k, x)
        denoiser(model, ev.actions[:, c : c + 1], state)(xk, k)
        for i, p in store:
            print(f"level {kk} layer {i}: attention over [c-2, c-1, self] = {[round(float(v), 3) for v in p[-1]]}")
