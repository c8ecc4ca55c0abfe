"""Suites: one YAML file, validated into typed models before any work is done.

A suite may ``include:`` another file (path relative to it; mappings merge key by key, the
including file wins) and carries a ``version`` that is stamped on every results row: bump it when
scoring changes so old and new rows are never mixed. Command-line overrides are dotted keys
(``train.steps=200``) applied before validation, so an unknown key fails the same way.

Every error names the file, the field and, for unknown names, the closest valid ones.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from rad_bench.registry import BLOCKS, DATASETS, METRICS, closest, unknown_name_message


class SuiteError(ValueError):
    """A suite cannot be loaded; the message says where and how to fix it."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelCfg(_Strict):
    preset: str = "small"
    window: int = Field(4, ge=1, description="frames seen by temporal attention, current included")
    patch: int = Field(4, ge=1)
    dim: int | None = Field(None, ge=8, description="overrides the preset")
    depth: int | None = Field(None, ge=1)
    heads: int | None = Field(None, ge=1)
    mlp_ratio: float = Field(4.0, gt=0)
    match_params: bool = Field(True, description="widen MLPs so every block's model has the same size")

    @field_validator("preset")
    @classmethod
    def _preset(cls, v: str) -> str:
        from rad_bench.model.dit import PRESETS

        if v not in PRESETS:
            raise ValueError(unknown_name_message("preset", v, list(PRESETS)))
        return v


class BlockSpec(_Strict):
    name: str
    label: str | None = Field(None, description="leaderboard name; defaults to the block name")
    kwargs: dict[str, Any] = Field(default_factory=dict)

    @property
    def display(self) -> str:
        return self.label or self.name


class DiffusionCfg(_Strict):
    levels: int = Field(1000, ge=2)
    prediction: str = Field("v", pattern="^(eps|v|x0)$")


class TrainCfg(_Strict):
    steps: int = Field(1500, ge=0)
    batch_size: int = Field(16, ge=1)
    clip_len: int = Field(16, ge=1)
    lr: float = Field(5e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    warmup: int = Field(50, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    clean_prob: float = Field(0.25, ge=0, lt=1, description="per-frame probability of a clean (context) frame")
    log_every: int = Field(50, ge=1)


class RolloutCfg(_Strict):
    context: int = Field(16, ge=1, description="ground-truth frames given before generation")
    horizon: int = Field(32, ge=1, description="frames generated with ground-truth actions")
    clips: int = Field(16, ge=1, description="evaluation episodes (the same for every block and seed)")
    batch_size: int = Field(16, ge=1)
    sampling_steps: int = Field(10, ge=1)
    fvd_bucket: int | None = Field(None, ge=9, description="also FVD per bucket of this many generated frames")
    fvd_batches: int = Field(1, ge=1, description="FVD per batch of clips/fvd_batches videos (TECO: mean over batches)")


class LeaderboardCfg(_Strict):
    sort_by: str = "psnr_revisit"


class Suite(_Strict):
    name: str
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

    @field_validator("blocks", mode="before")
    @classmethod
    def _blocks(cls, v: Any) -> Any:
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
        metric, _, group = self.leaderboard.sort_by.partition("_")
        if metric not in self.metrics or group not in ("in_window", "revisit", "novel", "all"):
            valid = [f"{m}_{g}" for m in self.metrics for g in ("revisit", "in_window", "novel", "all")]
            raise ValueError(f"leaderboard.sort_by '{self.leaderboard.sort_by}' is not a column; use one of {valid}")
        bucket = self.rollout.fvd_bucket
        if "fvd" in self.metrics and bucket is not None and self.rollout.horizon < bucket:
            raise ValueError(
                f"rollout.fvd_bucket ({bucket}) > rollout.horizon ({self.rollout.horizon}): no FVD bucket fits"
            )
        if "fvd" in self.metrics and self.rollout.clips % self.rollout.fvd_batches:
            raise ValueError(
                f"rollout.clips ({self.rollout.clips}) must be a multiple of rollout.fvd_batches "
                f"({self.rollout.fvd_batches}): every FVD batch holds the same number of videos"
            )
        if "fvd" in self.metrics and self.rollout.context + self.rollout.horizon < 9:
            raise ValueError("fvd needs episodes of >= 9 frames (I3D): raise rollout.context + rollout.horizon")
        if self.model.window > self.train.clip_len:
            raise ValueError(
                f"model.window ({self.model.window}) > train.clip_len ({self.train.clip_len}): "
                "training clips must be at least one window long"
            )
        return self


# --------------------------------------------------------------------------------------------
#                                   Loading
# --------------------------------------------------------------------------------------------


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise SuiteError(f"{path}: malformed YAML: {e}") from None
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise SuiteError(f"{path}: a suite must be a mapping of keys, got {type(raw).__name__}")
    return raw


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_with_includes(path: Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in _seen:
        raise SuiteError(f"{path}: include cycle: {' -> '.join(str(p) for p in (*_seen, path))}")
    raw = _read_yaml(path)
    inc = raw.pop("include", None)
    if inc is None:
        return raw
    if not isinstance(inc, str):
        raise SuiteError(f"{path}: field 'include' must be a file name, got {inc!r}")
    base = path.parent / inc
    if not base.is_file():
        raise SuiteError(f"{path}: field 'include': {base} not found")
    return _merge(read_with_includes(base, (*_seen, path)), raw)


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``key.sub=value`` strings; values are parsed as YAML (``3``, ``1e-4``, ``[a, b]``)."""
    out = _merge({}, raw)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SuiteError(f"--set {item!r}: expected KEY=VALUE, e.g. --set train.steps=200")
        node = out
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise SuiteError(f"--set {item!r}: '{p}' is not a section")
        node[leaf] = yaml.safe_load(value)
    return out


def _field_names(model: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    """Valid field names at ``loc`` (for 'did you mean' on unknown keys)."""
    for part in loc[:-1]:
        field = model.model_fields.get(str(part))
        ann = getattr(field, "annotation", None) if field else None
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
        else:
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"field '{field}': {msg} (got {err.get('input')!r})" if field else msg)
    return SuiteError(f"{where}: invalid suite:\n  " + "\n  ".join(lines))


def _check_names(suite: Suite, where: str) -> None:
    for i, b in enumerate(suite.blocks):
        if b.name not in BLOCKS:
            raise SuiteError(f"{where}: field 'blocks[{i}]': {unknown_name_message('block', b.name, BLOCKS.names())}")
        params = inspect.signature(BLOCKS.get(b.name).__init__).parameters
        for k in b.kwargs:
            if k not in params or k in ("self", "dim"):
                valid = [p for p in params if p not in ("self", "dim")]
                raise SuiteError(
                    f"{where}: field 'blocks[{i}].kwargs.{k}': block '{b.name}' takes no argument '{k}'. "
                    f"Valid: {', '.join(valid)}"
                )
    for i, m in enumerate(suite.metrics):
        if m not in METRICS:
            raise SuiteError(f"{where}: field 'metrics[{i}]': {unknown_name_message('metric', m, METRICS.names())}")
    name = suite.data.get("name")
    if name not in DATASETS:
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
    data_config(suite, where)
    return suite


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    """Read, include, override and validate a suite file."""
    path = Path(path)
    raw = apply_overrides(read_with_includes(path), overrides or [])
    return validate(raw, str(path))


def resolved_dict(suite: Suite) -> dict[str, Any]:
    return suite.model_dump(mode="json")
