"""Memory Maze probe (issue 12): one trained cell rolled out with several DDIM step counts on the
validation episodes; PSNR of generated frames 0-1 (the retrace's in-window frames) and 2+ (revisits).

    python docs/results/memory_maze_probes/sampling_steps.py RUN_DIR CELL [STEPS ...]
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
import yaml

from rad_bench.build import make_model
from rad_bench.config import BlockSpec, data_config, validate
from rad_bench.model.diffusion import Diffusion
from rad_bench.registry import DATASETS
from rad_bench.rollout import EVAL_NOISE_SEED, rollout


def psnr(x: torch.Tensor, y: torch.Tensor) -> float:
    """Mean over clips and frames of the PSNR of frames in [-1, 1]."""
    mse = ((x.clamp(-1, 1) - y) ** 2 / 4).flatten(2).mean(2)
    return float((-10 * mse.log10()).mean())


@torch.no_grad()
def main(run: Path, cell: str, steps: list[int]) -> None:
    raw = yaml.safe_load((run / "suite.resolved.yaml").read_text())
    raw.pop("limited", None)
    suite = validate(raw)
    ck = torch.load(run / "checkpoints" / f"{cell}.pt", map_location="cpu", weights_only=True)
    data = DATASETS.get(suite.data["name"])(data_config(suite), seed=0)
    model = make_model(suite, BlockSpec(**ck["block"]), data, "cpu")
    model.load_state_dict(ck["model"])
    model.eval()
    diffusion = Diffusion(suite.diffusion.levels, suite.diffusion.prediction)
    r = suite.rollout
    ev = data.eval_set(r.clips, r.context, r.horizon, "validation")
    truth = ev.frames[:, r.context :]
    for n in steps:
        g = torch.Generator().manual_seed(EVAL_NOISE_SEED)
        out, _ = rollout(model, diffusion, ev.frames, ev.actions, context=r.context, horizon=r.horizon,
                         sampling_steps=n, g=g, progress=False)  # fmt: skip
        print(f"{cell} {n:3d} DDIM steps: frames 0-1 {psnr(out[:, :2], truth[:, :2]):.2f} dB, "
              f"frames 2+ {psnr(out[:, 2:], truth[:, 2:]):.2f} dB")  # fmt: skip


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2], [int(s) for s in sys.argv[3:]] or [10, 25, 50])
