"""Equal memory budgets (issue 24): each constant-state block names the constructor argument that sizes its
carried state (``state_knob``) and says, from its arguments alone, how many bytes it carries per sample
(``carried_bytes``); here held to what ``init_state`` allocates, for the default and other knob values."""

from __future__ import annotations

import pytest
import torch

from rad_bench.block import fit_state, state_bytes
from rad_bench.registry import BLOCKS

DIM, HEADS, TOKENS = 32, 4, 16
KNOB_VALUES = {"hidden": [8, 32, 64], "d_state": [1, 4, 16], "inner_heads": [1, 2, 8], "k": [1, 2, 6]}
EXTRA = {"ttt": [{}, {"inner": "mlp"}], "mamba2": [{}, {"expand": 1, "d_conv": 2, "ngroups": 2}]}


def _cases() -> list[tuple[str, dict]]:
    out = []
    for name in BLOCKS.names():
        cls = BLOCKS.get(name)
        values = KNOB_VALUES.get(cls.state_knob or "", [None])
        for extra in EXTRA.get(name, [{}]):
            out += [(name, {**extra, **({cls.state_knob: v} if v is not None else {})}) for v in values]
    return out


@pytest.mark.parametrize("name, kwargs", _cases(), ids=lambda x: str(x))
def test_carried_bytes_is_what_init_state_allocates(name, kwargs):
    cls = BLOCKS.get(name)
    block = cls(DIM, heads=HEADS, **kwargs)
    measured = state_bytes(block.init_state(1, TOKENS, torch.device("cpu"), torch.float32))
    expected = cls.carried_bytes(DIM, HEADS, TOKENS, **kwargs)
    if cls.state_growth == "constant":
        assert expected == measured, (name, kwargs)
    else:
        assert expected is None  # a growing state has no fixed budget


def test_every_block_with_a_state_names_its_knob():
    for name in BLOCKS.names():
        cls = BLOCKS.get(name)
        if cls.state_growth == "constant" and cls.carried_bytes(DIM, HEADS, TOKENS):
            assert cls.state_knob, f"{name} carries state but names no state_knob"


@pytest.mark.parametrize("name", [n for n in BLOCKS.names() if BLOCKS.get(n).state_knob])
@pytest.mark.parametrize("budget", [256, 1024, 4096, 16384])
def test_fit_state_takes_the_largest_state_within_the_budget(name, budget):
    cls = BLOCKS.get(name)
    try:
        kwargs = fit_state(cls, DIM, HEADS, budget, {})
    except ValueError as e:
        assert "fits" in str(e)
        return
    carried = cls.carried_bytes(DIM, HEADS, 1, **kwargs)
    assert carried <= budget
    v = kwargs[cls.state_knob]
    if not cls.knob_decreases_state:  # one step larger would not fit
        assert cls.carried_bytes(DIM, HEADS, 1, **{cls.state_knob: v + 1}) > budget


def test_fit_state_refuses_what_cannot_meet_a_budget():
    with pytest.raises(ValueError, match="grows with the frames seen"):
        fit_state(BLOCKS.get("full_attn"), DIM, HEADS, 10**6, {})
    with pytest.raises(ValueError, match="no value of d_state fits 8 bytes"):
        fit_state(BLOCKS.get("mamba2"), DIM, HEADS, 8, {})
    assert fit_state(BLOCKS.get("none"), DIM, HEADS, 1, {}) == {}


def test_a_suite_budget_sets_each_blocks_knob_and_full_attention_runs_unbudgeted():
    from pathlib import Path

    from rad_bench.build import make_dataset, make_model
    from rad_bench.config import load_suite

    tiny = Path(__file__).parent / "fixtures" / "suites" / "tiny.yaml"
    suite = load_suite(
        tiny, ["blocks=[none, lstm_attn, mamba2, ttt, frame_stack, full_attn]", "model.state_budget=2048"]
    )
    data = make_dataset(suite, 0)
    for spec in suite.blocks:
        block = make_model(suite, spec, data, "cpu").layers[0].memory
        carried = state_bytes(block.init_state(1, 1, torch.device("cpu"), torch.float32))
        if block.state_growth == "constant":
            assert carried <= 2048, spec.name
        if spec.name == "lstm_attn":
            assert block.hidden == 256  # 2 x hidden x 4 bytes = 2048


def test_a_budget_no_setting_can_meet_is_refused_naming_the_block(tmp_path):
    from pathlib import Path

    from rad_bench.config import SuiteError, load_suite
    from rad_bench.mqar.config import load_mqar

    tiny = Path(__file__).parent / "fixtures" / "suites" / "tiny.yaml"
    with pytest.raises(SuiteError, match=r"model.state_budget': block 'mamba2' \(blocks\[1\]\) cannot meet 8 bytes"):
        load_suite(tiny, ["blocks=[none, mamba2]", "model.state_budget=8"])
    mqar = Path(__file__).parents[1] / "suites" / "mqar.yaml"
    with pytest.raises(SuiteError, match="field 'state_budget': block 'mamba2' cannot meet 8 bytes"):
        load_mqar(mqar, ["state_budget=8"])
    cfg = load_mqar(mqar, ["state_budget=2048"])
    assert cfg.kwargs_for("lstm_attn") == {"hidden": 256} and cfg.kwargs_for("full_attn") == {}
