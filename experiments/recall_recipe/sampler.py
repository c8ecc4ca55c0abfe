"""Why are recalled query frames noisy under a shifted schedule? Re-sample a trained recall cell's validation
query frames with other samplers and score them on first asks (recall_acc, PSNR, LPIPS-free to stay quick).

Samplers: ``levels`` (the suite's: level indices evenly spaced, so under a shift the last step jumps from a
noisy level straight to clean), ``snr`` (level indices whose shifted alpha_bar equals the cosine schedule's at
the evenly spaced levels: the same noise levels as an unshifted sampler, so the last steps are at low noise),
and more steps of each.

    python experiments/recall_recipe/sampler.py RUN_DIR CELL [CELL ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

from rad_bench.build import make_model, reach_of
from rad_bench.config import BlockSpec, validate
from rad_bench.model.diffusion import Diffusion
from rad_bench.registry import DATASETS
from rad_bench.results import parse_variant
from rad_bench.rollout import rollout
from rad_bench.score import frame_tags, score_frames


def load(run: Path, cell: str):
    raw = yaml.safe_load((run / "suite.resolved.yaml").read_text())
    raw.pop("limited", None)
    raw.pop("sweep", None)
    variant = parse_variant(cell.split("[", 1)[1].split("]")[0]) if "[" in cell else {}
    if "shift" in variant:
        raw["diffusion"]["shift"] = float(variant["shift"])
    if "slots" in variant:
        raw["data"]["slots"] = int(variant["slots"])
    suite = validate(raw)
    ck = torch.load(run / "checkpoints" / f"{cell}.pt", map_location="cpu", weights_only=True)
    data = DATASETS.get(suite.data.name)(suite.data, seed=0)
    model = make_model(suite, BlockSpec(**ck["block"]), data, "cpu")
    model.load_state_dict(ck["model"])
    return suite, model.eval(), Diffusion.of(suite.diffusion), data


def snr_matched(d: Diffusion, steps: int) -> list[int]:
    """Level indices whose shifted alpha_bar is nearest the unshifted cosine alpha_bar at evenly spaced levels."""
    plain = Diffusion(d.T, d.prediction).alpha_bar
    want = plain[Diffusion.schedule(d, steps)]
    ks = [int((d.alpha_bar - a).abs().argmin()) for a in want]
    return sorted(set(ks) | {0, d.T}, reverse=True)


def main() -> None:
    run, cells = Path(sys.argv[1]), sys.argv[2:]
    for cell in cells:
        suite, model, d, data = load(run, cell)
        r = suite.rollout
        ev = data.eval_set(r.clips, r.context, r.horizon, split="validation")
        tags = frame_tags(ev.places, r.context, reach_of(model.cfg))
        scored = ev.scored[:, r.context :]
        for name, steps in (("levels", 10), ("levels", 25), ("snr", 10), ("snr", 25)):
            sched = (lambda n, d=d: snr_matched(d, n)) if name == "snr" else Diffusion.schedule.__get__(d)
            d.schedule = sched  # type: ignore[method-assign]
            with torch.no_grad():
                gen = rollout(model, d, ev.frames, ev.actions, context=r.context, horizon=r.horizon,
                              sampling_steps=steps, g=torch.Generator().manual_seed(0), progress=False)[0]  # fmt: skip
            rows = score_frames(gen, ev.frames[:, r.context :], tags, metrics=["recall_acc", "psnr"], scored=scored)
            out = {}
            for m in ("recall_acc", "psnr"):
                vals = [x["value"] for x in rows if x["metric"] == m and x["scored"]]
                out[m] = sum(vals) / len(vals)
            print(f"{cell}\t{name}\t{steps}\trecall_acc={out['recall_acc']:.3f}\tpsnr={out['psnr']:.2f}", flush=True)
        del d.schedule


if __name__ == "__main__":
    main()
