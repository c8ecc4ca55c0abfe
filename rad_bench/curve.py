"""Learning curves: the validation episodes scored during training (``train.eval_every: N``).

How fast a memory learns is itself a result (RAD's LSTM needs several times the steps of TTT or Mamba2 on
MQAR). Every ``N`` steps, and once before the first, the model rolls out the *validation* episodes of its
cell's data point (never the reported test episodes, whatever ``rollout.split`` says) and scores the suite's
sort metric (``leaderboard.sort_by``, e.g. ``recall_acc_revisit``) on the frames the dataset scores
(:attr:`rad_bench.data.EvalSet.scored`). The points go to the cell's ``curve.csv``.

The evaluation leaves training exactly as it would be without it: the global random state is restored
afterwards (the training batches come from their own generator) and the model returns to training mode.
It scores the raw weights (not the EMA), with the suite's sampler and ``rollout.clips`` clips."""

from __future__ import annotations

from collections.abc import Callable

import torch

from rad_bench.build import reach_of
from rad_bench.config import Suite
from rad_bench.data import Dataset
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import VideoDiT
from rad_bench.results import CURVE_CSV, split_column
from rad_bench.rollout import rollout_batch
from rad_bench.score import frame_tags, score_frames

__all__ = ["CURVE_CSV", "curve_metric", "curve_rows", "evaluator"]
CURVE_NOISE_SEED = 31_337  # the sampler's noise per clip batch: the same at every point of every curve


def curve_metric(sort_by: str) -> tuple[str, str]:
    """``(metric, group)`` of a sort column (``recall_acc_revisit`` -> ``("recall_acc", "revisit")``)."""
    metric, group = split_column(sort_by)
    return metric, group or "all"


def evaluator(model: VideoDiT, diffusion: Diffusion, data: Dataset, suite: Suite) -> Callable[[], float]:
    """A function that scores ``model`` as it is now on the validation episodes (see the module doc)."""
    r, metric = suite.rollout, curve_metric(suite.leaderboard.sort_by)
    ev = data.eval_set(r.clips, r.context, r.horizon, split="validation")
    tags = frame_tags(ev.places, r.context, reach_of(model.cfg))
    scored = None if ev.scored is None else ev.scored[:, r.context :]

    def score() -> float:
        was_training = model.training
        model.eval()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            gen = torch.cat(
                [
                    rollout_batch(model, diffusion, ev.frames, ev.actions, r, i, CURVE_NOISE_SEED, progress=False)[0]
                    for i in range(0, r.clips, r.batch_size)
                ]
            )
        model.train(was_training)
        rows = score_frames(gen, ev.frames[:, r.context :], tags, metrics=[metric[0]], data=suite.data, scored=scored)
        keep = [x["value"] for x in rows if x.get("scored", 1) and (metric[1] == "all" or x["tag"] == metric[1])]
        return sum(keep) / len(keep) if keep else float("nan")

    return score


def curve_rows(curve: list[tuple[int, float]], sort_by: str) -> list[dict[str, object]]:
    """``curve.csv`` rows: ``step, metric, value, split`` (split is always validation)."""
    return [{"step": s, "metric": sort_by, "value": v, "split": "validation"} for s, v in curve]
