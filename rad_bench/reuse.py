"""Cells that differ only in how they are evaluated share one training.

A cell's *training key* is a hash of everything its training depends on: the suite without its
``rollout``, ``metrics``, ``leaderboard``, name and description, the data section without the fields
the dataset names evaluation-only (:meth:`rad_bench.data.DataConfig.eval_only`, e.g. the recall
task's ``slots`` when ``train_slots`` is fixed), the block and the seed. A finished cell records its
key in ``stats.json``; a later cell with the same key loads that cell's weights
(``checkpoints/<cell>.pt``, the EMA weights the rollout uses) and training log instead of training
again. On CPU training is deterministic, so the result equals a second training exactly
(``tests/test_recall.py`` checks).
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

from rad_bench.build import make_dataset, make_model
from rad_bench.config import BlockSpec, Suite, SuiteError, resolved_dict, validate, variants
from rad_bench.data import EvalSet
from rad_bench.model.diffusion import Diffusion
from rad_bench.model.dit import VideoDiT
from rad_bench.rundir import cell_done
from rad_bench.train import TrainStats

EVALUATION_ONLY = ("rollout", "metrics", "metric_settings", "leaderboard", "name", "description", "sweep")


def training_key(suite: Suite, spec: BlockSpec, seed: int) -> str:
    """16 hex digits naming what a cell's training depends on (see the module docstring)."""
    d = {k: v for k, v in resolved_dict(suite).items() if k not in EVALUATION_ONLY}
    eval_only = suite.data.eval_only()
    d["data"] = {k: v for k, v in d["data"].items() if k not in eval_only}
    d["diffusion"] = {k: v for k, v in d["diffusion"].items() if k != "sampler_levels"}  # sampling only
    d["block"], d["seed"] = spec.model_dump(mode="json"), seed
    return hashlib.sha256(json.dumps(d, sort_keys=True).encode()).hexdigest()[:16]


def find_trained(run_dir: Path, key: str) -> str | None:
    """A finished cell of this run trained under ``key`` whose weights are still on disk."""
    for stats in sorted((run_dir / "cells").glob("*/stats.json")):
        cell = stats.parent.name
        try:
            same = json.loads(stats.read_text()).get("train_key") == key
        except ValueError:
            continue
        if same and (run_dir / "checkpoints" / f"{cell}.pt").is_file() and cell_done(run_dir, cell):
            return cell
    return None


def load_trained(run_dir: Path, cell: str, model: VideoDiT) -> TrainStats:
    """``cell``'s trained weights into ``model``; its training statistics, loss log and learning curve."""
    ck = torch.load(run_dir / "checkpoints" / f"{cell}.pt", map_location="cpu", weights_only=True)
    model.load_state_dict(ck["model"])
    stats = json.loads((run_dir / "cells" / cell / "stats.json").read_text())
    log_lines = (run_dir / "cells" / cell / "train_log.csv").read_text().splitlines()[1:]
    log = [(int(s), float(v)) for s, v in (line.split(",") for line in log_lines if line)]
    steps = int(stats["train_steps"])
    curve_file = run_dir / "cells" / cell / "curve.csv"
    curve = []
    if curve_file.is_file():
        curve = [(int(r["step"]), float(r["value"])) for r in csv.DictReader(io.StringIO(curve_file.read_text()))]
    return TrainStats(steps=steps, seconds=float(stats["train_step_s"]) * steps, log=log, curve=curve)


@dataclass(frozen=True)
class FinishedCell:
    """A finished cell of a run folder, ready to roll out again (diagnostics, probes)."""

    suite: Suite  # the run's suite as it ran (suite.resolved.yaml; a swept cell: its sweep point)
    model: VideoDiT  # the trained weights (the EMA ones the rollout used), eval mode, on CPU
    diffusion: Diffusion  # the run's noise schedule (levels, prediction, shift)
    eval_set: EvalSet  # the evaluation episodes of ``split``


def load_cell(run_dir: Path, cell: str, split: str = "validation") -> FinishedCell:
    """``cell`` of ``run_dir`` rebuilt as the runner built it: the resolved suite, the dataset at seed 0 (its
    evaluation episodes do not depend on the training seed), the model with the cell's block and weights."""
    if not cell_done(run_dir, cell):
        raise SuiteError(f"{run_dir}: cell {cell} is not finished (no verified completion record)")
    raw = yaml.safe_load((run_dir / "suite.resolved.yaml").read_text())
    raw.pop("limited", None)  # the run folder records whether steps were capped; not a suite key
    suite = validate(raw, str(run_dir / "suite.resolved.yaml"))
    ck = torch.load(run_dir / "checkpoints" / f"{cell}.pt", map_location="cpu", weights_only=True)
    spec, variant = BlockSpec(**ck["block"]), json.loads((run_dir / "cells" / cell / "stats.json").read_text())
    label = variant.get("variant") or ""
    points = dict(variants(suite))
    if label not in points:
        raise SuiteError(
            f"{run_dir}: cell {cell} was run at sweep point {label!r}, which the run's suite does not have"
        )
    suite = points[label]
    data = make_dataset(suite, 0)
    model = make_model(suite, spec, data, "cpu")
    model.load_state_dict(ck["model"])
    r = suite.rollout
    return FinishedCell(
        suite, model.eval(), Diffusion.of(suite.diffusion), data.eval_set(r.clips, r.context, r.horizon, split)
    )
