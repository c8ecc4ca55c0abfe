"""Suites: one YAML file, validated into typed models before any work is done.

A suite may ``include:`` another file (path relative to it; mappings merge key by key, the
including file wins) and carries a ``version`` that is stamped on every results row: bump it when
scoring changes so old and new rows are never mixed. Command-line overrides are dotted keys
(``train.steps=200``) applied before validation, so an unknown key fails the same way.

Every error names the file, the field and, for unknown names, the closest valid ones.
"""

from __future__ import annotations

import inspect
import itertools
import json
from pathlib import Path
from typing import Any, Literal

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
    memory_action: bool = Field(True, description="feed the action embedding to the memory blocks (RAD)")

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
    mode: Literal["frame", "chunk", "df"] = Field(
        "frame",
        description="frame: RAD frame-wise AR with state prefetch; chunk: non-overlapping chunks with the "
        "state carried; df: Diffusion Forcing over the whole clip (memory sees noisy frames)",
    )
    prefetch_grad: bool = Field(True, description="frame mode: backpropagate through the clean prefetch pass")
    clean_prefix: float = Field(
        0.0, ge=0, le=1, description="probability of a clean prefix of > clip_len/2 frames (Po et al. 2025)"
    )
    log_every: int = Field(50, ge=1)
    checkpoint_every: int = Field(
        200, ge=0, description="save a resumable training checkpoint every this many steps (0 = off)"
    )
    ema: float = Field(0.0, ge=0, lt=1, description="EMA decay, warm-up min(ema, (1+n)/(10+n)); rollout uses EMA")


class RolloutCfg(_Strict):
    context: int = Field(16, ge=1, description="ground-truth frames given before generation")
    horizon: int = Field(32, ge=1, description="frames generated with ground-truth actions")
    clips: int = Field(16, ge=1, description="evaluation episodes (the same for every block and seed)")
    batch_size: int = Field(16, ge=1)
    sampling_steps: int = Field(10, ge=1)
    fvd_bucket: int | None = Field(None, ge=9, description="also FVD per bucket of this many generated frames")
    fvd_batches: int = Field(1, ge=1, description="FVD per batch of clips/fvd_batches videos (TECO: mean over batches)")


class LeaderboardCfg(_Strict):
    """How the leaderboard is sorted and which block every other block is paired against.

    ``baseline`` is the block every other block is paired against (per seed and clip, on the same
    evaluation episodes; within the same sweep point in sweeps). Default: ``none`` when the suite has it,
    else no paired comparison.
    """

    sort_by: str = "psnr_revisit"
    baseline: str | None = Field(
        None, description="the block every other block is paired against; default: `none` when the suite has it"
    )


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
    sweep: dict[str, list[Any]] = Field(
        default_factory=dict,
        description="ablation axes: dotted key -> values (model.*, train.*, diffusion.*); every block runs at "
        "every combination, e.g. {train.mode: [chunk, frame]}",
    )

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


class _SuiteLoader(yaml.SafeLoader):
    """The safe loader (plain data: ``!!python/...`` tags are refused) that also refuses a key given
    twice in one mapping, which plain YAML resolves silently by keeping the last."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)  # resolve '<<' merge keys first, as the base class does
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool):
                continue  # an unhashable key is the base class's own error
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key}' appears twice in one mapping", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _yaml_error(where: str, e: yaml.YAMLError) -> SuiteError:
    """``e`` as: where, line and column, the problem, and how to fix it."""
    problem = str(getattr(e, "problem", None) or e)
    mark, ctx, ctx_mark = (getattr(e, a, None) for a in ("problem_mark", "context", "context_mark"))
    at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
    if ctx and ctx_mark:
        problem += f" ({ctx} at line {ctx_mark.line + 1}, column {ctx_mark.column + 1})"
    if "'\\t'" in problem:  # PyYAML quotes the character: found character '\t' ...
        fix = "indent with spaces, not tabs"
    elif "tag:" in problem:
        fix = "suites are plain data and are read with the safe loader: remove the !! tag"
    elif "appears twice" in problem:
        fix = "keep one of them"
    else:
        fix = "check the indentation (spaces, the same per level), brackets and quotes there"
    return SuiteError(f"{where}: malformed YAML{at}: {problem}; {fix}")


def _read_yaml(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise SuiteError(f"{path}: no such suite file (rad-bench ls suites lists the suites in ./suites)")
    try:
        raw = yaml.load(path.read_text(), Loader=_SuiteLoader)
    except yaml.YAMLError as e:
        raise _yaml_error(str(path), e) from None
    if raw is None:
        raise SuiteError(f"{path}: empty file; a suite needs at least 'name:' and 'blocks:' (see suites/smoke.yaml)")
    if not isinstance(raw, dict):
        raise SuiteError(
            f"{path}: the top level is a {type(raw).__name__}; a suite is a mapping of keys "
            "('name: ...', 'blocks: [...]', ...), not a '- item' list"
        )
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
        for i, p in enumerate(parents):
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                at = ".".join(parents[: i + 1])
                raise SuiteError(
                    f"--set {item!r}: '{at}' holds a {type(node).__name__} ({node!r}), not a section of keys; "
                    f"set it as a whole, e.g. --set '{at}=...'"
                )
        try:
            node[leaf] = yaml.load(value, Loader=_SuiteLoader)
        except yaml.YAMLError as e:
            raise _yaml_error(f"--set {item!r}", e) from None
    return out


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
    _check_sizes(suite, data_config(suite, where), where)
    for label, variant in variants(suite, where):
        _check_sizes(variant, data_config(variant, where), f"{where} (sweep {label})")
    return suite


SWEEPABLE = ("model", "train", "diffusion")  # what changes the trained model, never the evaluation


def variants(suite: Suite, where: str = "suite") -> list[tuple[str, Suite]]:
    """``(label, suite)`` for every combination of ``suite.sweep`` (one ``("", suite)`` without a sweep).

    The label names the swept values by their last key, e.g. ``mode=chunk,window=4``; it becomes part
    of each cell's name. Data, rollout and metrics cannot be swept: every cell of a suite is scored
    on the same evaluation episodes."""
    if not suite.sweep:
        return [("", suite)]
    for key, values in suite.sweep.items():
        if key.split(".")[0] not in SWEEPABLE or "." not in key:
            raise SuiteError(
                f"{where}: field 'sweep.{key}': only keys under {', '.join(SWEEPABLE)} can be swept "
                "(e.g. train.mode); data, rollout and metrics stay fixed so every cell is scored alike"
            )
        if not isinstance(values, list) or not values:
            raise SuiteError(f"{where}: field 'sweep.{key}': give a non-empty list of values, e.g. [chunk, frame]")
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
    from rad_bench.data import DataError, Demand
    from rad_bench.model.dit import PRESETS

    r, m = suite.rollout, suite.model
    try:
        data.check(Demand(suite.train.clip_len, r.context, r.horizon, r.clips))
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


def load_suite(path: str | Path, overrides: list[str] | None = None) -> Suite:
    """Read, include, override and validate a suite file."""
    path = Path(path)
    raw = apply_overrides(read_with_includes(path), overrides or [])
    return validate(raw, str(path))


def resolved_dict(suite: Suite) -> dict[str, Any]:
    return suite.model_dump(mode="json")
