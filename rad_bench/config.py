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

from pydantic import BaseModel, Field, SerializeAsAny, ValidationError, field_validator, model_validator

from rad_bench.blockargs import check_block
from rad_bench.dataconfig import DataConfig
from rad_bench.metrics import get_metric
from rad_bench.registry import BLOCKS, DATASETS, METRICS, closest, unknown_name_message
from rad_bench.results import GROUPS, REFERENCE_NAMES, split_column
from rad_bench.schema import SAFE_HINT, Strict, safe_name
from rad_bench.sections import DiffusionCfg, LauncherCfg, ModelCfg, RolloutCfg, TrainCfg
from rad_bench.sizes import check_sizes
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


ALL_BLOCKS = "all"  # `blocks: all`: every registered block


class Suite(Strict):
    name: str = Field(description=f"results folder name: {SAFE_HINT}")
    version: int = Field(1, ge=1)
    description: str = ""
    model: ModelCfg = Field(default_factory=ModelCfg)
    blocks: list[BlockSpec]
    data: SerializeAsAny[DataConfig] = Field(
        default_factory=lambda: {"name": "synthetic"},
        validate_default=True,
        description="the dataset's own config (its registered Config class), validated once from the YAML mapping",
    )
    diffusion: DiffusionCfg = Field(default_factory=DiffusionCfg)
    train: TrainCfg = Field(default_factory=TrainCfg)
    rollout: RolloutCfg = Field(default_factory=RolloutCfg)
    metrics: list[str] = Field(default_factory=lambda: ["psnr", "ssim"])
    metric_settings: dict[str, SerializeAsAny[Strict]] = Field(
        default_factory=dict,
        description="a metric's own settings by its name, e.g. {fvd: {batches: 2, bucket: 16}} "
        "(each metric's settings model: rad_bench/metrics/specs/)",
    )
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

    @field_validator("data", mode="before")
    @classmethod
    def _data(cls, v: Any) -> Any:
        return typed_data(v, "data")

    @field_validator("metric_settings", mode="before")
    @classmethod
    def _settings(cls, v: Any) -> Any:
        return typed_settings(v, "metric_settings")

    def settings_of(self, metric: str) -> Strict | None:
        """``metric``'s settings as this suite sets them (its defaults when unset); None for a metric without."""
        return self.metric_settings.get(metric) or get_metric(metric).configure(None)

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
        if not self.seeds:
            raise ValueError("seeds: an empty list trains nothing; list at least one seed, e.g. seeds: [0]")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: duplicates in {self.seeds}")
        if bad := [s for s in self.seeds if not 0 <= s < 2**31]:
            raise ValueError(f"seeds: {bad} out of range; use seeds in [0, 2**31)")
        if self.model.anchor and (self.diffusion.prediction != "x0" or self.train.mode != "frame"):
            raise ValueError(
                "model.anchor adds the last clean frame to an x0 prediction, as a rollout sees it: "
                "set diffusion.prediction: x0 and train.mode: frame"
            )
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


MOVED = {"rollout.fvd_bucket": "bucket", "rollout.fvd_batches": "batches"}  # FVD's settings are its own now


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
            hint = f" It moved to metric_settings.fvd.{MOVED[field]}." if field in MOVED else hint
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
            get_metric(m).check(suite.rollout, suite.settings_of(m))  # what it needs (FVD: I3D's length, batches)
        except ValueError as e:
            raise SuiteError(f"{where}: {e}") from None
    for name in suite.metric_settings:
        if name not in suite.metrics:
            raise SuiteError(
                f"{where}: field 'metric_settings.{name}': '{name}' is not in metrics; add it to metrics "
                "or drop its settings"
            )
    board = suite.leaderboard
    metric, group = split_column(board.sort_by)
    if metric not in suite.metrics or group not in GROUPS:
        valid = [f"{m}_{g}" for m in suite.metrics for g in ("revisit", "in_window", "novel", "all")]
        raise SuiteError(f"{where}: field 'leaderboard.sort_by': '{board.sort_by}' is not a column; use one of {valid}")
    rows = [b.display for b in suite.blocks] + list(REFERENCE_NAMES)
    if board.baseline is not None and board.baseline not in rows:
        unknown = unknown_name_message("block", board.baseline, rows)
        raise SuiteError(f"{where}: field 'leaderboard.baseline': {unknown} (the blocks and references of the suite)")


def typed_data(v: Any, where: str = "suite") -> DataConfig:
    """A ``data:`` mapping validated by its dataset's own config class (looked up by ``name`` in the
    registry); a config already typed is checked to be its named dataset's. SuiteError names the field."""
    if isinstance(v, DataConfig):
        cls = DATASETS.get(v.name).Config if v.name in DATASETS else None
        if cls is None or not isinstance(v, cls):
            raise SuiteError(f"{where}: field 'data.name': {v.name!r} does not name the dataset of {type(v).__name__}")
        return v
    if not isinstance(v, dict):
        raise SuiteError(f"{where}: field 'data': give a mapping that names the dataset, e.g. {{name: synthetic}}")
    name = v.get("name")
    if not isinstance(name, str) or name not in DATASETS:
        raise SuiteError(f"{where}: field 'data.name': {unknown_name_message('dataset', str(name), DATASETS.names())}")
    cls = DATASETS.get(name).Config
    try:
        return cls.model_validate({**v, "name": name})
    except ValidationError as e:
        raise SuiteError(str(_explain(e, cls, where)).replace("field '", "field 'data.")) from None


def typed_settings(v: Any, where: str = "suite") -> dict[str, Strict]:
    """``metric_settings``: each metric's mapping validated by its settings model (SuiteError names the field)."""
    if not isinstance(v, dict):
        raise SuiteError(
            f"{where}: field 'metric_settings': give a mapping of metric names, e.g. {{fvd: {{batches: 2}}}}"
        )
    out = {}
    for name, raw in v.items():
        at = f"{where}: field 'metric_settings.{name}'"
        if name not in METRICS:
            raise SuiteError(f"{at}: {unknown_name_message('metric', str(name), METRICS.names())}")
        spec = get_metric(name)
        try:
            out[name] = spec.configure(raw)
        except ValidationError as e:
            text = str(_explain(e, spec.settings, where))
            raise SuiteError(text.replace("field '", f"field 'metric_settings.{name}.")) from None
        except ValueError as e:
            raise SuiteError(f"{at}: {e}") from None
    return {k: s for k, s in out.items() if s is not None}


def _suite(raw: dict[str, Any], where: str) -> Suite:
    """``raw`` validated into a Suite, its ``data:`` and ``metric_settings:`` first so that an error in one names
    the field inside it (``data.<field>``)."""
    if isinstance(raw, dict) and "data" in raw:
        raw = {**raw, "data": typed_data(raw["data"], where)}
    if isinstance(raw, dict) and "metric_settings" in raw:
        raw = {**raw, "metric_settings": typed_settings(raw["metric_settings"], where)}
    try:
        return Suite(**raw)
    except ValidationError as e:
        raise _explain(e, Suite, where) from None


def validate(raw: dict[str, Any], where: str = "suite") -> Suite:
    suite = _suite(raw, where)
    _check_names(suite, where)
    _check_cell_names(suite, where)
    check_sizes(suite, where)
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
    cls, name = DATASETS.get(suite.data.name), suite.data.name
    if suite.train.loss_frames == "targets" and not cls.has_targets:
        raise SuiteError(
            f"{where}: field 'train.loss_frames': dataset '{name}' declares no target frames; set "
            "train.loss_frames: all"
        )
    metric = split_column(suite.leaderboard.sort_by)[0]
    if suite.train.eval_every and (
        "split" not in inspect.signature(cls.eval_set).parameters or METRICS.get(metric).scope != "per_frame"
    ):
        raise SuiteError(
            f"{where}: field 'train.eval_every': learning curves score leaderboard.sort_by "
            f"('{suite.leaderboard.sort_by}', a per-frame metric needed) on the validation episodes "
            f"of dataset '{name}' (an eval_set with a split needed); set train.eval_every: 0"
        )


def _check_point(suite: Suite, label: str, variant: Suite, where: str) -> None:
    """One sweep point's sizes; in a data sweep the error names the swept data keys."""
    try:
        check_sizes(variant, f"{where} (sweep {label})")
    except SuiteError as e:
        raise _point_error(suite, label, e, where) from None


def _point_error(suite: Suite, label: str, e: SuiteError, where: str) -> SuiteError:
    """A sweep point's error; in a data sweep reworded to name the swept data keys, which the fix is in."""
    keys, at = data_sweep(suite), f"{where} (sweep {label})"
    if not keys:
        return e
    why = str(e).removeprefix(at + ": ").removeprefix("invalid suite:\n  ")
    fields = ", ".join(f"'sweep.{k}'" for k in keys)
    return SuiteError(f"{where}: field {fields}: the sweep point {label} does not fit: {why}")


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

    The label names the swept values by their last key, e.g. ``mode=chunk,window=4``; it becomes part of each
    cell's name, and its rows carry the values themselves, a column per axis (:func:`rad_bench.plan.sweep_point`).
    Rollout and metrics cannot be swept. Every cell of one data point (:func:`data_variants`) is scored on the same
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
            out.append((label, _suite(raw, f"{where} (sweep {label})")))
        except SuiteError as e:
            raise _point_error(suite, label, e, where) from None
    return out


def migrate(raw: dict[str, Any]) -> dict[str, Any]:
    """A suite mapping as an earlier rad-bench wrote it (a run's suite.resolved.yaml) in today's schema:
    ``rollout.fvd_bucket`` / ``fvd_batches`` become ``metric_settings.fvd.bucket`` / ``batches``. A suite file a
    user writes is not migrated: its old keys are errors that say where they moved."""
    rollout = dict(raw.get("rollout") or {})
    if "fvd_bucket" not in rollout and "fvd_batches" not in rollout:
        return raw
    defaults = {"bucket": None, "batches": 1}  # what the old fields held unless set: today's defaults, not written
    moved = {k: v for k in defaults if (v := rollout.pop(f"fvd_{k}", defaults[k])) != defaults[k]}
    out = {**raw, "rollout": rollout}
    if moved and "fvd" in (raw.get("metrics") or []):
        out["metric_settings"] = {**(raw.get("metric_settings") or {}), "fvd": moved}
    return out


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    """Read, include, override and validate a suite file."""
    path = Path(path)
    raw = apply_overrides(read_with_includes(path), overrides or [])
    return validate(raw, str(path))


def resolved_dict(suite: Suite) -> dict[str, Any]:
    return suite.model_dump(mode="json")
