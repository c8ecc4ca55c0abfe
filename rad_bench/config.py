"""Suites: one YAML file, validated into typed models before any work is done.

A suite may ``include:`` another file (path relative to it; mappings merge key by key, the
including file wins) and carries a ``version`` that is stamped on every results row: bump it when
scoring changes so old and new rows are never mixed. Command-line overrides are dotted keys
(``train.steps=200``) applied before validation, so an unknown key fails the same way. Reading the
YAML (includes, overrides, YAML errors) is :mod:`rad_bench.suitefile`; this module validates.

``blocks: all`` stands for every registered block, sorted by name (a new block file joins such a
suite with no edit); it cannot be mixed with names.

Every error names the file, the field and, for unknown names, the closest valid ones. Torch-free to
import: blocks, datasets and metrics are found through their registries (whose first lookup imports
them), and the model presets come from :mod:`rad_bench.model.presets`.
"""

from __future__ import annotations

import inspect
import itertools
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError, field_validator, model_validator

from rad_bench import limits
from rad_bench.blockargs import check_block
from rad_bench.metrics import get_metric
from rad_bench.model.presets import PRESETS
from rad_bench.registry import BLOCKS, DATASETS, METRICS, closest, unknown_name_message
from rad_bench.results import GROUPS, REFERENCE_NAMES, split_column
from rad_bench.schema import SAFE_HINT, Strict, safe_name
from rad_bench.sections import DiffusionCfg, ModelCfg, RolloutCfg, TrainCfg
from rad_bench.suitefile import SuiteError, apply_overrides, read_with_includes

__all__ = ["DiffusionCfg", "ModelCfg", "RolloutCfg", "TrainCfg", "Suite", "load_suite", "validate"]


class BlockSpec(Strict):
    name: str
    label: str | None = Field(None, description="leaderboard name; defaults to the block name")

    _safe = field_validator("name", "label")(safe_name)
    kwargs: dict[str, Any] = Field(default_factory=dict)
    lr: float | None = Field(
        None, gt=0, description="this block's learning rate (default train.lr), chosen on validation"
    )

    @property
    def display(self) -> str:
        return self.label or self.name


class LeaderboardCfg(Strict):
    """How the leaderboard is sorted and which block every other block is paired against.

    ``baseline`` is the block every other block is paired against (per seed and clip, on the same
    evaluation episodes; within the same sweep point in sweeps). Default: ``none`` when the suite has it,
    else no paired comparison.
    """

    sort_by: str = "psnr_revisit"
    baseline: str | None = Field(
        None, description="the block every other block is paired against; default: `none` when the suite has it"
    )


class LauncherCfg(Strict):
    """Resources of each job of ``rad-bench run --launcher slurm|local`` (rad_bench.launch: one per cell)."""

    partition: str | None = Field(None, description="Slurm partition; default: the cluster's")
    gpus: int = Field(1, ge=0, description="GPUs per job")
    cpus: int = Field(8, ge=1, description="CPU cores per job")
    time: int = Field(120, ge=1, description="time limit per job, in minutes")
    mem_gb: int | None = Field(None, ge=1, description="memory per job in GiB; default: the cluster's")
    workers: int = Field(
        1, ge=1, le=64, description="processes on this machine sharing the run folder (the default of --workers): "
        "on a small CPU, several one-thread processes train small models faster than one with every core"
    )  # fmt: skip


ALL_BLOCKS = "all"  # `blocks: all`: every registered block


class Suite(Strict):
    name: str = Field(description=f"results folder name: {SAFE_HINT}")
    version: int = Field(1, ge=1)
    description: str = ""
    model: ModelCfg = Field(default_factory=ModelCfg)
    blocks: list[BlockSpec]
    data: dict[str, Any] = Field(default_factory=lambda: {"name": "synthetic"})
    diffusion: DiffusionCfg = Field(default_factory=DiffusionCfg)
    train: TrainCfg = Field(default_factory=TrainCfg)
    rollout: RolloutCfg = Field(default_factory=RolloutCfg)
    metrics: list[str] = Field(default_factory=lambda: ["psnr", "ssim"])
    seeds: list[int] = Field(default_factory=lambda: [0])
    device: str = Field("auto", pattern="^(auto|cpu|cuda(:\\d+)?)$")
    impl: str = Field("auto", pattern="^(auto|kernel|ref)$")
    leaderboard: LeaderboardCfg = Field(default_factory=LeaderboardCfg)
    launcher: LauncherCfg = Field(default_factory=LauncherCfg, exclude=True, description="where, not what: unsaved")
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="ablation axes: dotted key -> values (model.*, train.*, diffusion.*, data.*); every block "
        "runs at every combination, e.g. {train.mode: [chunk, frame]} or {data.slots: [2, 4, 8]}",
    )

    _safe = field_validator("name")(safe_name)

    @field_validator("blocks", mode="before")
    @classmethod
    def _blocks(cls, v: Any) -> Any:
        if v == ALL_BLOCKS or v == [ALL_BLOCKS]:
            return [{"name": name} for name in BLOCKS.names()]
        if isinstance(v, list) and ALL_BLOCKS in v:
            raise ValueError(
                f"'{ALL_BLOCKS}' stands for every registered block and cannot be mixed with names; "
                f"write blocks: {ALL_BLOCKS}, or list the blocks one by one"
            )
        if isinstance(v, list):
            return [{"name": b} if isinstance(b, str) else b for b in v]
        return v

    @model_validator(mode="after")
    def _consistent(self) -> Suite:
        labels = [b.display for b in self.blocks]
        if dupes := sorted({x for x in labels if labels.count(x) > 1}):
            raise ValueError(f"blocks: duplicate entries {dupes}; give each a distinct 'label'")
        if not self.blocks:
            raise ValueError("blocks: list at least one block")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: duplicates in {self.seeds}")
        if bad := [s for s in self.seeds if not 0 <= s < 2**31]:
            raise ValueError(f"seeds: {bad} out of range; use seeds in [0, 2**31)")
        if self.model.anchor and (self.diffusion.prediction != "x0" or self.train.mode != "frame"):
            raise ValueError("model.anchor adds the last clean frame to an x0 prediction, as a rollout sees it: "
                             "set diffusion.prediction: x0 and train.mode: frame")  # fmt: skip
        if self.rollout.sampling_steps > self.diffusion.levels:
            raise ValueError(
                f"rollout.sampling_steps ({self.rollout.sampling_steps}) > diffusion.levels "
                f"({self.diffusion.levels}): a sampler cannot take more steps than there are levels; lower it"
            )
        for key, values in self.sweep.items():
            if isinstance(values, list) and len({repr(v) for v in values}) != len(values):
                raise ValueError(f"sweep.{key}: duplicate values in {values}; each sweep point must differ")
            if bad := [v for v in values if not re.fullmatch(r"[A-Za-z0-9_.+-]{1,32}", str(v))]:
                raise ValueError(f"sweep.{key}: values {bad} cannot name a cell folder; use {SAFE_HINT}")
        if self.model.window > self.train.clip_len:
            raise ValueError(
                f"model.window ({self.model.window}) > train.clip_len ({self.train.clip_len}): "
                "training clips must be at least one window long"
            )
        return self


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid field names at ``loc`` (for 'did you mean' on unknown keys)."""
    for part in loc[:-1]:
        if isinstance(part, int):  # a list index: the item model was taken at the list field
            continue
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
        if getattr(ann, "__origin__", None) is list:  # list[BlockSpec] -> BlockSpec
            ann = ann.__args__[0]
        if not (inspect.isclass(ann) and issubclass(ann, BaseModel)):
            return []
        model = ann
    return list(model.model_fields)


def _explain(e: ValidationError, model: type[BaseModel], where: str) -> SuiteError:
    lines = []
    for err in e.errors():
        loc = tuple(err["loc"])
        field = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in loc).replace(".[", "[")
        if err["type"] == "extra_forbidden":
            near = closest(str(loc[-1]), _field_names(model, loc))
            hint = f" Did you mean: {', '.join(near)}?" if near else ""
            lines.append(f"field '{field}': unknown key.{hint}")
        elif err["type"] == "missing":
            lines.append(f"field '{field}': required; add it to the suite (or to a file it includes)")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"field '{field}': {msg} (got {err.get('input')!r})" if field else msg)
    return SuiteError(f"{where}: invalid suite:\n  " + "\n  ".join(lines))


def _check_names(suite: Suite, where: str) -> None:
    for i, b in enumerate(suite.blocks):
        check_block(b, i, where)
    for i, m in enumerate(suite.metrics):
        if m not in METRICS:
            raise SuiteError(f"{where}: field 'metrics[{i}]': {unknown_name_message('metric', m, METRICS.names())}")
        try:
            get_metric(m).check(suite.rollout)  # what the metric needs of the rollout (FVD: I3D's length, batches)
        except ValueError as e:
            raise SuiteError(f"{where}: {e}") from None
    board = suite.leaderboard
    metric, group = split_column(board.sort_by)
    if metric not in suite.metrics or group not in GROUPS:
        valid = [f"{m}_{g}" for m in suite.metrics for g in ("revisit", "in_window", "novel", "all")]
        raise SuiteError(f"{where}: field 'leaderboard.sort_by': '{board.sort_by}' is not a column; use one of {valid}")
    rows = [b.display for b in suite.blocks] + list(REFERENCE_NAMES)
    if board.baseline is not None and board.baseline not in rows:
        unknown = unknown_name_message("block", board.baseline, rows)
        raise SuiteError(f"{where}: field 'leaderboard.baseline': {unknown} (the blocks and references of the suite)")
    name = suite.data.get("name")
    if not isinstance(name, str) or name not in DATASETS:
        raise SuiteError(f"{where}: field 'data.name': {unknown_name_message('dataset', str(name), DATASETS.names())}")


def data_config(suite: Suite, where: str = "suite") -> Any:
    """The suite's ``data:`` section validated by the dataset's own config model."""
    cls = DATASETS.get(suite.data["name"])
    kwargs = {k: v for k, v in suite.data.items() if k != "name"}
    try:
        return cls.Config(**kwargs)
    except ValidationError as e:
        err = _explain(e, cls.Config, where)
        raise SuiteError(str(err).replace("field '", "field 'data.")) from None


def validate(raw: dict[str, Any], where: str = "suite") -> Suite:
    try:
        suite = Suite(**raw)
    except ValidationError as e:
        raise _explain(e, Suite, where) from None
    _check_names(suite, where)
    _check_cell_names(suite, where)
    _check_sizes(suite, data_config(suite, where), where)
    for label, variant in [("", suite), *variants(suite, where)]:
        _check_training(variant, f"{where} (sweep {label})" if label else where)
    for label, variant in variants(suite, where):
        _check_point(suite, label, variant, where)
    return suite


MAX_CELL_NAME = 255 - 23  # a file name's 255 bytes less the most a cell's files add: ".<cell>.train.pt.<8>.tmp"


def _check_cell_names(suite: Suite, where: str) -> None:
    """The longest cell folder name (``<label>[<sweep values>]-s<seed>``) must leave room for the file names
    built from it; caught here rather than after the run folder is made."""

    def longest(labels: list[str], points: list[tuple[str, Suite]]) -> str:
        label, point = max(labels, key=len), max((p for p, _ in points), key=len)
        return f"{label}[{point}]-s{max(suite.seeds)}" if point else f"{label}-s{max(suite.seeds)}"

    blocks = longest([b.display for b in suite.blocks], variants(suite, where))
    name = max(blocks, longest(list(REFERENCE_NAMES), data_variants(suite, where)), key=len)  # references: data
    if len(name) > MAX_CELL_NAME:
        raise SuiteError(
            f"{where}: field 'sweep': cell names such as '{name[:60]}...' are {len(name)} characters and file names "
            f"built from them would pass the file system's 255; keep block labels and sweep values (or their "
            f"number) short so a cell name stays within {MAX_CELL_NAME}"
        )


def _check_training(suite: Suite, where: str) -> None:
    """What ``train.loss_frames: targets`` and ``train.eval_every`` need from the dataset and the sort metric."""
    cls, name = DATASETS.get(suite.data["name"]), suite.data["name"]
    if suite.train.loss_frames == "targets" and not cls.has_targets:
        raise SuiteError(f"{where}: field 'train.loss_frames': dataset '{name}' declares no target frames; set "
                         "train.loss_frames: all")  # fmt: skip
    metric = split_column(suite.leaderboard.sort_by)[0]
    if suite.train.eval_every and (
        "split" not in inspect.signature(cls.eval_set).parameters or METRICS.get(metric).scope != "per_frame"
    ):
        raise SuiteError(f"{where}: field 'train.eval_every': learning curves score leaderboard.sort_by "
                         f"('{suite.leaderboard.sort_by}', a per-frame metric needed) on the validation episodes "
                         f"of dataset '{name}' (an eval_set with a split needed); set train.eval_every: 0")  # fmt: skip


def _check_point(suite: Suite, label: str, variant: Suite, where: str) -> None:
    """One sweep point's data config and sizes; in a data sweep the error names the swept data keys."""
    at = f"{where} (sweep {label})"
    try:
        _check_sizes(variant, data_config(variant, at), at)
    except SuiteError as e:
        keys = data_sweep(suite)
        if not keys:
            raise
        fields = ", ".join(f"'sweep.{k}'" for k in keys)
        raise SuiteError(
            f"{where}: field {fields}: the sweep point {label} does not fit: {str(e).removeprefix(at + ': ')}"
        ) from None


SWEEPABLE = ("model", "train", "diffusion", "data")  # a data point gets its own evaluation episodes


def data_sweep(suite: Suite) -> dict[str, list[Any]]:
    """The ``data.*`` axes of ``suite.sweep`` (empty without a data sweep)."""
    return {k: v for k, v in suite.sweep.items() if k.startswith("data.")}


def data_variants(suite: Suite, where: str = "suite") -> list[tuple[str, Suite]]:
    """``(label, suite)`` for every combination of the data axes alone (``slots=4``), the other axes at
    the suite's own settings; one ``("", suite)`` without a data sweep. The reference rows run at these."""
    return variants(suite.model_copy(update={"sweep": data_sweep(suite)}), where)


def _check_sweep_keys(suite: Suite, where: str) -> None:
    for key, values in suite.sweep.items():
        if key.split(".")[0] not in SWEEPABLE or "." not in key:
            raise SuiteError(
                f"{where}: field 'sweep.{key}': only keys under {', '.join(SWEEPABLE)} can be swept "
                "(e.g. train.mode, data.slots); rollout and metrics stay fixed so every cell is scored alike"
            )
        if key == "data.name":
            raise SuiteError(
                f"{where}: field 'sweep.data.name': a suite runs one dataset; sweep its settings "
                "(e.g. data.slots) or write one suite per dataset"
            )
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{where}: field 'sweep.{key}': give a non-empty list of values, e.g. [chunk, frame]")


def variants(suite: Suite, where: str = "suite") -> list[tuple[str, Suite]]:
    """``(label, suite)`` for every combination of ``suite.sweep`` (one ``("", suite)`` without a sweep).

    The label names the swept values by their last key, e.g. ``mode=chunk,window=4``; it becomes part
    of each cell's name (:func:`rad_bench.results.parse_variant` reads it back). Rollout and metrics
    cannot be swept. Every cell of one data point (:func:`data_variants`) is scored on the same
    evaluation episodes; a data sweep's points each have their own."""
    if not suite.sweep:
        return [("", suite)]
    _check_sweep_keys(suite, where)
    base = resolved_dict(suite)
    base.pop("sweep")
    out = []
    for combo in itertools.product(*suite.sweep.values()):
        pairs = list(zip(suite.sweep, combo))
        label = ",".join(f"{k.split('.')[-1]}={v}" for k, v in pairs)
        raw = apply_overrides(base, [f"{k}={json.dumps(v)}" for k, v in pairs])
        try:
            out.append((label, Suite(**raw)))
        except ValidationError as e:
            raise SuiteError(str(_explain(e, Suite, f"{where} (sweep {label})"))) from None
    return out


def _check_sizes(suite: Suite, data: Any, where: str) -> None:
    """Sizes that depend on the data or the model preset: caught here, not minutes into a run."""
    from rad_bench.data import DataError, takes_split

    r, m = suite.rollout, suite.model
    if r.split != "test" and not takes_split(DATASETS.get(suite.data["name"])):
        raise SuiteError(
            f"{where}: field 'rollout.split': data.name {suite.data['name']!r} draws no validation episodes (its "
            "eval_set takes no split); use rollout.split: test, or give its eval_set a split (see data/synthetic.py)"
        )
    try:
        data.check(_demand(suite))
    except DataError as e:
        raise SuiteError(f"{where}: {e}") from None
    frame = getattr(data, "frame_size", None)  # None: as stored in the files, checked when the model is built
    if frame is not None and frame % m.patch:
        raise SuiteError(
            f"{where}: data.frame_size ({frame}) is not a multiple of model.patch ({m.patch}): frames are cut "
            "into patch x patch tokens; pick a model.patch that divides it"
        )
    dim, heads = int(m.dim or PRESETS[m.preset]["dim"]), int(m.heads or PRESETS[m.preset]["heads"])
    if dim % heads or (dim // heads) % 4:
        raise SuiteError(
            f"{where}: model.dim ({dim}) / model.heads ({heads}) must be a whole multiple of 4 "
            "(2-D RoPE splits each head in 4); change model.dim or model.heads"
        )
    _check_budget(suite, dim, heads, where)
    if frame is not None:
        check_memory(suite, int(frame), where, activations=suite.device == "cpu")


def _check_budget(suite: Suite, dim: int, heads: int, where: str) -> None:
    """Every constant-state block can meet ``model.state_budget`` (it sets their state knob, not the suite)."""
    budget = suite.model.state_budget
    if budget is None:
        return
    from rad_bench.block import fit_state  # imports torch: only for a suite that asks for a budget

    for i, b in enumerate(suite.blocks):
        cls = BLOCKS.get(b.name)
        if cls.state_knob and cls.state_knob in b.kwargs:
            raise SuiteError(f"{where}: field 'blocks[{i}].kwargs.{cls.state_knob}': model.state_budget sets it; "
                             "drop one of the two")  # fmt: skip
        if cls.state_growth == "constant":
            try:
                fit_state(cls, dim, heads, budget, b.kwargs)
            except ValueError as e:
                raise SuiteError(
                    f"{where}: field 'model.state_budget': block '{b.display}' (blocks[{i}]) cannot meet "
                    f"{budget} bytes per token: {e}; raise the budget or drop the block"
                ) from None


def check_memory(suite: Suite, frame: int, where: str, activations: bool) -> None:
    """Refuse, before anything is allocated, a suite whose allocations cannot fit this machine's memory
    together. Lower bounds: float32 frames and, with ``activations`` (the model trains in host memory, i.e.
    on CPU), ~16 activations of width ``dim`` per token and layer kept for the backward pass; the noise
    schedule's tables; and what the dataset holds (:meth:`rad_bench.data.DataConfig.footprint`)."""
    m, t, r = suite.model, suite.train, suite.rollout
    p = PRESETS[m.preset]
    depth, dim, tokens = int(m.depth or p["depth"]), int(m.dim or p["dim"]), (frame // m.patch) ** 2
    per_frame = 3 * frame**2 + (16 * depth * tokens * dim if activations else 0)
    need = {
        "train.batch_size x train.clip_len": 4.0 * t.batch_size * t.clip_len * per_frame,
        "rollout.clips x (context + horizon)": 4.0 * r.clips * (r.context + r.horizon) * 3 * frame**2,
        "diffusion.levels": 64.0 * suite.diffusion.levels,
        **data_config(suite, where).footprint(_demand(suite)),
    }
    limits.check_memory(need, where, "data.frame_size, {field} or the model size")


def _demand(suite: Suite) -> Any:
    """What ``suite`` asks of its data (:class:`rad_bench.data.Demand`)."""
    from rad_bench.data import Demand

    r = suite.rollout
    return Demand(suite.train.clip_len, r.context, r.horizon, r.clips, r.split, suite.train.batch_size)


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    """Read, include, override and validate a suite file."""
    path = Path(path)
    raw = apply_overrides(read_with_includes(path), overrides or [])
    return validate(raw, str(path))


def resolved_dict(suite: Suite) -> dict[str, Any]:
    return suite.model_dump(mode="json")
