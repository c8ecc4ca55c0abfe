"""The MQAR calibration suite (``suites/mqar.yaml``): a small pydantic model read from plain YAML.

Unknown keys, wrong types and unregistered block names are errors that name the file and the field.
The file is read by :mod:`rad_bench.suitefile` (safe loader, duplicate keys refused, ``include:``,
``--set`` overrides), the same reader as the video suites.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, field_validator, model_validator

from rad_bench.limits import check_memory
from rad_bench.registry import BLOCKS, closest, unknown_name_message
from rad_bench.schema import SAFE_HINT, Strict, safe_name
from rad_bench.suitefile import SuiteError, apply_overrides, read_with_includes


class MQARConfig(Strict):
    """One MQAR calibration: which blocks, which K, which seeds, the token model and its training."""

    kind: Literal["mqar"] = Field("mqar", description="marks a token-level MQAR suite for `rad-bench run`")
    name: str = Field("mqar", description=f"results folder name: {SAFE_HINT}")
    description: str = ""
    blocks: list[str] | Literal["all"] = "all"
    block_kwargs: dict[str, dict[str, Any]] = Field(default_factory=dict, description="per block, constructor kwargs")
    state_budget: int | None = Field(
        None,
        ge=1,
        description="bytes of mixer state per layer and token: each constant-state block's state knob "
        "set to the most state within it (full attention runs unbudgeted)",
    )
    ks: list[int] = Field([2, 4, 8, 16], min_length=1, description="key-value pairs per sequence, each scored")
    seeds: list[int] = Field([0, 1, 2], min_length=1)
    # data: fixed length for every K, so one model trains on all K at once (Zoology trains on a mix too)
    layout: Literal["pair", "split"] = "pair"
    seq_len: int = Field(64, ge=4)
    key_vocab: int = Field(64, ge=2)
    value_vocab: int = Field(32, ge=2)
    # token model
    dim: int = Field(64, ge=8)
    heads: int = Field(4, ge=1)
    layers: int = Field(2, ge=1)
    mlp_ratio: float = Field(2.0, gt=0)
    pos_emb: bool = Field(False, description="learned absolute position embedding (no mixing)")
    # training
    steps: int = Field(600, ge=1)
    batch: int = Field(64, ge=1)
    lr: float = Field(3e-3, gt=0)
    lr_per_block: dict[str, float] = Field(default_factory=dict, description="chosen on the val split, never eval")
    warmup: int = Field(50, ge=0)
    weight_decay: float = Field(0.1, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    eval_size: int = Field(256, ge=1, description="held-out sequences per K (eval split)")
    val_size: int = Field(256, ge=1, description="sequences per K for choosing lrs (val split)")
    lr_grid: list[float] = Field([1e-3, 3e-3, 1e-2], min_length=1, description="what --sweep-lr tries")
    sweep_seed: int = Field(1000, description="the lr sweep's seed; keep it out of seeds")
    device: str = Field("cpu", pattern="^(auto|cpu|cuda(:\\d+)?)$", description="cpu, cuda[:i] or auto")
    threads: int = Field(1, ge=1, description="torch CPU threads")
    progress: bool = True

    _safe = field_validator("name")(safe_name)

    @field_validator("ks")
    @classmethod
    def _ks(cls, v: list[int]) -> list[int]:
        if any(k < 1 for k in v) or len(set(v)) != len(v):
            raise ValueError("give distinct K values >= 1, e.g. [2, 4, 8, 16]")
        return sorted(v)

    @model_validator(mode="after")
    def _sizes(self) -> MQARConfig:
        kmax = max(self.ks)
        if kmax > self.key_vocab:
            raise ValueError(f"ks: K = {kmax} needs {kmax} distinct keys but key_vocab is {self.key_vocab}")
        need = self.write_len(kmax) + kmax
        if self.seq_len < need:
            raise ValueError(
                f"seq_len: {self.seq_len} is too short for K = {kmax} in layout '{self.layout}' "
                f"({self.write_len(kmax)} write steps + {kmax} queries = {need})"
            )
        if self.sweep_seed in self.seeds:
            raise ValueError(f"sweep_seed: {self.sweep_seed} is one of seeds; the lr sweep needs a seed of its own")
        if self.dim % self.heads:
            raise ValueError(f"dim: {self.dim} is not divisible by heads ({self.heads})")
        return self

    def write_len(self, k: int) -> int:
        """Steps the K pairs take: one each (``pair``) or a key token then a value token (``split``)."""
        return k if self.layout == "pair" else 2 * k

    def block_names(self) -> list[str]:
        return BLOCKS.names() if self.blocks == "all" else list(self.blocks)

    def lr_for(self, block: str) -> float:
        return self.lr_per_block.get(block, self.lr)

    def kwargs_for(self, block: str) -> dict[str, Any]:
        """``block_kwargs[block]``, with the block's state knob set by ``state_budget`` (a constant state)."""
        from rad_bench.block import budgeted_kwargs  # torch: only once a block is built or a budget checked

        cls, kwargs = BLOCKS.get(block), self.block_kwargs.get(block, {})
        if self.state_budget is not None and cls.state_knob in kwargs:
            raise ValueError(
                f"block_kwargs.{block}.{cls.state_knob} is set and state_budget sets it; drop one of the two"
            )
        return budgeted_kwargs(cls, self.dim, self.heads, self.state_budget, kwargs)


def _explain(e: ValidationError, where: str) -> SuiteError:
    lines = []
    for err in e.errors():
        loc = [str(p) for p in err["loc"] if not str(p).startswith("function-")]
        field = ".".join(loc)
        if err["type"] == "extra_forbidden":
            near = closest(loc[-1], list(MQARConfig.model_fields))
            hint = f" Did you mean: {', '.join(near)}?" if near else ""
            lines.append(f"field '{field}': unknown key.{hint} Valid: {', '.join(MQARConfig.model_fields)}")
        else:
            msg = err["msg"].removeprefix("Value error, ")
            head, sep, rest = msg.partition(": ")
            if not field and sep and head in MQARConfig.model_fields:  # a check across fields names its field
                field, msg = head, rest
            lines.append(f"field '{field}': {msg}" if field else msg)
    return SuiteError(f"{where}: invalid MQAR suite:\n  " + "\n  ".join(lines))


def _check_blocks(cfg: MQARConfig, where: str) -> None:
    names = BLOCKS.names()
    fields = [("blocks", i, b) for i, b in enumerate(cfg.block_names())]
    fields += [("lr_per_block", None, b) for b in cfg.lr_per_block]
    fields += [("block_kwargs", None, b) for b in cfg.block_kwargs]
    for section, i, b in fields:
        if b not in names:
            at = f"{section}[{i}]" if i is not None else f"{section}.{b}"
            raise SuiteError(f"{where}: field '{at}': {unknown_name_message('block', b, names)}")


def memory_need(cfg: MQARConfig) -> dict[str, float]:
    """Lower bounds (bytes) of what a run allocates, by the fields that scale them: the training batch's
    activations (~16 per token, layer and width) and logits, the held-out sets, and the embeddings with their
    gradients and Adam moments."""
    vocab, n = 1 + cfg.key_vocab + cfg.value_vocab, max(cfg.eval_size, cfg.val_size)
    return {
        "batch x seq_len": 4.0 * cfg.batch * cfg.seq_len * (16 * cfg.layers * cfg.dim + 3 * vocab),
        "eval_size x seq_len": 16.0 * n * cfg.seq_len + 4.0 * min(n, 256) * cfg.seq_len * vocab,
        "key_vocab + value_vocab": 16.0 * vocab * cfg.dim,
    }


def validate_mqar(raw: dict[str, Any], where: str = "mqar suite") -> MQARConfig:
    try:
        cfg = MQARConfig(**raw)
    except ValidationError as e:
        raise _explain(e, where) from None
    _check_blocks(cfg, where)
    for block in cfg.block_names() if cfg.state_budget is not None else []:
        try:
            cfg.kwargs_for(block)
        except ValueError as e:
            raise SuiteError(
                f"{where}: field 'state_budget': block '{block}' cannot meet {cfg.state_budget} bytes per "
                f"token: {e}; raise the budget or drop the block"
            ) from None
    check_memory(memory_need(cfg), where)
    return cfg


def load_mqar(path: str | Path, overrides: list[str] | None = None) -> MQARConfig:
    """Read, include, override (``key=value`` strings) and validate an MQAR suite file."""
    path = Path(path)
    return validate_mqar(apply_overrides(read_with_includes(path), overrides or []), str(path))
