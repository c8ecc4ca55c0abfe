"""Suite sizes that depend on the data or the model preset, checked when a suite is validated (and the memory
check again when a run starts): what the dataset can serve, patches and heads that divide, a state budget every
constant-state block can meet, and a memory need this machine can hold. Torch-free, like :mod:`rad_bench.config`
(the budget check imports torch only for a suite that sets one)."""

from __future__ import annotations

from typing import Any

from rad_bench import limits
from rad_bench.model.presets import PRESETS
from rad_bench.registry import BLOCKS, DATASETS
from rad_bench.suitefile import SuiteError

Suite = Any  # a validated rad_bench.config.Suite (not imported: config imports this module)


def check_sizes(suite: Suite, where: str) -> None:
    """Sizes that depend on the data or the model preset: caught here, not minutes into a run."""
    from rad_bench.data import DataError, takes_split

    r, m, data = suite.rollout, suite.model, suite.data
    if r.split != "test" and not takes_split(DATASETS.get(suite.data.name)):
        raise SuiteError(
            f"{where}: field 'rollout.split': data.name {suite.data.name!r} draws no validation episodes (its "
            "eval_set takes no split); use rollout.split: test, or give its eval_set a split (see data/synthetic.py)"
        )
    try:
        data.check(demand(suite))
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
    check_budget(suite, dim, heads, where)
    if frame is not None:
        check_memory(suite, int(frame), where, activations=suite.device == "cpu")


def check_budget(suite: Suite, dim: int, heads: int, where: str) -> None:
    """Every constant-state block can meet ``model.state_budget`` (it sets their state knob, not the suite)."""
    budget = suite.model.state_budget
    if budget is None:
        return
    from rad_bench.block import fit_state  # imports torch: only for a suite that asks for a budget

    for i, b in enumerate(suite.blocks):
        cls = BLOCKS.get(b.name)
        if cls.state_knob and cls.state_knob in b.kwargs:
            raise SuiteError(
                f"{where}: field 'blocks[{i}].kwargs.{cls.state_knob}': model.state_budget sets it; drop one of the two"
            )
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
        **suite.data.footprint(demand(suite)),
    }
    limits.check_memory(need, where, "data.frame_size, {field} or the model size")


def demand(suite: Suite) -> Any:
    """What ``suite`` asks of its data (:class:`rad_bench.data.Demand`)."""
    from rad_bench.dataconfig import Demand

    r = suite.rollout
    return Demand(suite.train.clip_len, r.context, r.horizon, r.clips, r.split, suite.train.batch_size)
