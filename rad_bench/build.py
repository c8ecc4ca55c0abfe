"""From a validated suite to the objects a cell works with: the model config, the model with a block
in its memory slot (parameter-matched across the suite's blocks) and the dataset.

Shared by the runner and the benchmark, so both build exactly the same models from the same suite.
"""

from __future__ import annotations

from typing import Any

import torch

from rad_bench.block import budgeted_kwargs
from rad_bench.config import BlockSpec, Suite, SuiteError
from rad_bench.data import Dataset
from rad_bench.model.dit import DiTConfig, VideoDiT, build_model, count_params, matched_config
from rad_bench.model.presets import PRESETS
from rad_bench.modes import attention_for
from rad_bench.registry import BLOCKS, DATASETS
from rad_bench.tags import Reach


def model_config(suite: Suite, data: Dataset) -> DiTConfig:
    """The suite's DiT config: its preset with the suite's overrides, sized for ``data``."""
    m = suite.model
    preset = dict(PRESETS[m.preset])
    overrides = {k: v for k, v in {"dim": m.dim, "depth": m.depth, "heads": m.heads}.items() if v is not None}
    preset.update(overrides)
    return DiTConfig(
        frame_size=data.frame_size,
        channels=data.channels,
        patch=m.patch,
        window=m.window,
        action_dim=data.action_dim,
        mlp_ratio=m.mlp_ratio,
        attention=attention_for(suite.train.mode),
        memory_action=m.memory_action,
        anchor=m.anchor,
        impl=suite.impl,
        **preset,  # type: ignore[arg-type]
    )


def make_dataset(suite: Suite, seed: int) -> Dataset:
    """The suite's dataset (its ``data:`` section validated by the dataset's own config)."""
    return DATASETS.get(suite.data.name)(suite.data, seed=seed)


def block_kwargs(suite: Suite, cfg: DiTConfig, spec: BlockSpec) -> dict[str, Any]:
    """``spec.kwargs``; with ``model.state_budget``, a constant-state block's ``state_knob`` set to carry as much
    state as fits the budget (:func:`rad_bench.block.fit_state`). A growing state (full attention) is left as
    it is: the unbudgeted reference at every budget."""
    return budgeted_kwargs(BLOCKS.get(spec.name), cfg.dim, cfg.heads, suite.model.state_budget, spec.kwargs)


def _count(suite: Suite, cfg: DiTConfig, spec: BlockSpec) -> int:
    with torch.device("meta"):  # count without allocating
        return count_params(build_model(cfg, BLOCKS.get(spec.name), block_kwargs(suite, cfg, spec)))


def _build_on_meta(suite: Suite, cfg: DiTConfig, spec: BlockSpec) -> None:
    """The model with ``spec`` and its initial state, on the meta device (nothing allocated)."""
    with torch.device("meta"):
        build_model(cfg, BLOCKS.get(spec.name), block_kwargs(suite, cfg, spec)).init_state(1, torch.device("meta"))


def check_blocks(suite: Suite, data: Dataset) -> None:
    """Build every block of ``suite`` and its state once on the meta device (nothing allocated), so a kwargs
    value the block itself refuses stops the run before any training, naming the block and the field."""
    cfg = model_config(suite, data)
    for i, spec in enumerate(suite.blocks):
        try:
            _build_on_meta(suite, cfg, spec)
        except (ValueError, TypeError, RuntimeError, AssertionError) as e:
            raise SuiteError(
                f"field 'blocks[{i}].kwargs' (block '{spec.display}'): the block refuses its arguments: {e}; "
                "fix the value (rad-bench ls blocks names each block's arguments)"
            ) from None


def make_model(suite: Suite, spec: BlockSpec, data: Dataset, device: str) -> VideoDiT:
    """The suite's DiT with ``spec`` in its memory slot; with ``model.match_params`` the MLP width is
    set so every block of the suite has the parameter count of the largest one (within ~1%)."""
    cfg = model_config(suite, data)
    if cfg.frame_size % cfg.patch or (cfg.dim // cfg.heads) % 4:
        raise SuiteError(
            f"model: frame_size {cfg.frame_size} must be a multiple of patch {cfg.patch} and "
            f"dim/heads ({cfg.dim}/{cfg.heads}) a multiple of 4 (2-D RoPE)"
        )
    if suite.model.match_params:
        target = max(_count(suite, cfg, s) for s in suite.blocks)
        cfg = matched_config(cfg, target, _count(suite, cfg, spec))
    return build_model(cfg, BLOCKS.get(spec.name), block_kwargs(suite, cfg, spec)).to(device)


def reach_of(cfg: DiTConfig) -> Reach:
    """The attention reach the revisit tags use: the sliding reach, or the chunk for chunk attention."""
    return Reach(cfg.reach, cfg.window if cfg.attention == "chunk" else None)
