"""Where the recall signal is lost: does a trained block's carried state still hold the written value at the
first query? (issue 23: a measured reason for each block that stays at chance)

    python experiments/recall_recipe/state_probe.py results/recall/<run> [--blocks lstm_attn,mamba2,ttt]

For each block and seed of the run (the shared training, cell ``<block>[slots=2]-s<seed>``) and for the same
block untrained (its initial weights, seed 0), the model runs teacher-forced over episodes that write ONE slot,
clean frames up to the first query (writes, then the delay). Its memory state at that point (every layer's
carried state, flattened; full_attn's window cache is not a memory and is skipped) is the feature vector of a
linear probe (multinomial logistic regression, trained on 2048 episodes, scored on 1024 others) that must name
the written value among 32 (chance 1/32). A second probe reads the state one frame after the write (after the
first delay frame), to separate "never written" from "written, then lost over the delay".

Read: probe accuracy high but recall_acc at chance -> the value is kept, the read-out does not use it; low at
the write and after the delay -> the block never writes it in a form a linear read can find; high at the write
but low after the delay -> it is lost while waiting. The episodes come from their own generator (seed 7),
neither the training nor the evaluation episodes.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import torch
import torch.nn.functional as F
import yaml

from rad_bench.build import make_dataset, make_model
from rad_bench.config import validate
from rad_bench.data.recall import actions_of, draw_episode, render
from rad_bench.utils import seed_everything

TRAIN, TEST = 2048, 1024


def episodes(data, n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``n`` one-write episodes: frames, actions, and the written value."""
    g = torch.Generator().manual_seed(seed)
    draws = [draw_episode(data.cfg, g, written=1) for _ in range(n)]
    shown, slot, phase = (torch.stack(x) for x in zip(*draws))
    value = shown[:, data.cfg.writes - 1]
    return render(shown, data.frame_size), actions_of(slot, phase, data.cfg.max_slots), value


@torch.no_grad()
def states(model, frames: torch.Tensor, actions: torch.Tensor, upto: int) -> torch.Tensor:
    """The flattened memory state of every layer after the clean frames ``0 .. upto - 1``."""
    out = []
    for i in range(0, frames.shape[0], 256):
        f, a = frames[i : i + 256, :upto], actions[i : i + 256, :upto]
        _, st = model(f, torch.zeros(f.shape[:2], dtype=torch.long), a)
        parts = []
        for mem in st.mem:
            tensors = mem.values() if isinstance(mem, dict) else ([mem] if torch.is_tensor(mem) else [])
            for t in tensors:
                if torch.is_tensor(t) and t.dim() > 0 and t.is_floating_point():
                    parts.append(t.reshape(f.shape[0], -1).float())
        out.append(torch.cat(parts, dim=1))
    return torch.cat(out)


def probe(x: torch.Tensor, y: torch.Tensor, classes: int) -> float:
    """Held-out accuracy of a standardised multinomial logistic regression (L-BFGS, weight decay 1e-3)."""
    mu, sd = x[:TRAIN].mean(0), x[:TRAIN].std(0) + 1e-6
    x = (x - mu) / sd
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=300, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = F.cross_entropy(x[:TRAIN] @ w + b, y[:TRAIN]) + 1e-3 * (w**2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return float(((x[TRAIN:] @ w + b).argmax(1) == y[TRAIN:]).float().mean())


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("run", type=Path)
    p.add_argument("--blocks", default="lstm_attn,mamba2,ttt")
    p.add_argument("--out", type=Path, default=None)
    a = p.parse_args()
    torch.set_num_threads(1)
    raw = yaml.safe_load((a.run / "suite.resolved.yaml").read_text())
    raw.pop("limited", None)  # the run's record of --limit-steps, not a suite field
    suite = validate(raw, str(a.run / "suite.resolved.yaml"))
    data = make_dataset(suite, seed=0)
    frames, actions, value = episodes(data, TRAIN + TEST, seed=7)
    w = data.cfg.writes
    rows = []
    for spec in suite.blocks:
        if spec.name not in a.blocks.split(","):
            continue
        seeds = [(None, "untrained")] + [(s, f"s{s}") for s in suite.seeds]
        for s, label in seeds:
            seed_everything(0)
            model = make_model(suite, spec, data, "cpu")
            if s is not None:
                ck = torch.load(
                    a.run / "checkpoints" / f"{spec.display}[slots=2]-s{s}.pt", map_location="cpu", weights_only=True
                )
                model.load_state_dict(ck["model"])  # the weights the rollout used (reuse.load_trained)
            model.eval()
            after_write = probe(states(model, frames, actions, w + 1), value, data.cfg.values)
            after_delay = probe(states(model, frames, actions, w + data.cfg.delay), value, data.cfg.values)
            row = {"block": spec.display, "weights": label, "after_write": after_write, "after_delay": after_delay}
            print(row, flush=True)
            rows.append(row)
    if a.out:
        with a.out.open("w", newline="") as fh:
            wr = csv.DictWriter(fh, fieldnames=list(rows[0]))
            wr.writeheader()
            wr.writerows(rows)


if __name__ == "__main__":
    main()
