"""Suite loading and the errors a user sees for bad input.

pytest tests/test_config.py
"""

from pathlib import Path

import pytest

from rad_bench.config import SuiteError, apply_overrides, load_suite, resolved_dict
from rad_bench.mqar.config import load_mqar

FIXTURES = Path(__file__).parent / "fixtures" / "suites"


def write(tmp_path: Path, text: str, name: str = "s.yaml") -> Path:
    (tmp_path / "_tiny_base.yaml").write_text((FIXTURES / "_tiny_base.yaml").read_text())
    p = tmp_path / name
    p.write_text(text)
    return p


def test_include_and_defaults():
    s = load_suite(FIXTURES / "tiny.yaml")
    assert s.name == "tiny" and s.model.window == 3 and s.data.frame_size == 16
    assert [b.name for b in s.blocks] == ["none", "full_attn"]
    assert s.diffusion.prediction == "v"  # default from the model, not the file


def test_including_file_wins(tmp_path):
    p = write(tmp_path, "include: _tiny_base.yaml\nname: x\nblocks: [none]\nmodel: {window: 2}\n")
    s = load_suite(p)
    assert s.model.window == 2 and s.model.dim == 32  # merged key by key


def test_overrides_are_dotted_and_typed():
    s = load_suite(FIXTURES / "tiny.yaml", ["train.steps=7", "blocks=[none]", "train.lr=1e-3"])
    assert s.train.steps == 7 and s.train.lr == 1e-3 and [b.name for b in s.blocks] == ["none"]


def test_leaderboard_baseline_defaults_to_none_and_is_resolved():
    s = load_suite(FIXTURES / "tiny.yaml")
    assert s.leaderboard.baseline is None  # the report then pairs with `none` when the suite has it
    s = load_suite(FIXTURES / "tiny.yaml", ["leaderboard.baseline=full_attn"])
    assert s.leaderboard.baseline == "full_attn" and resolved_dict(s)["leaderboard"]["baseline"] == "full_attn"


def test_override_syntax_error():
    with pytest.raises(SuiteError, match="KEY=VALUE"):
        apply_overrides({}, ["train.steps"])


@pytest.mark.parametrize(
    "body, expect",
    [
        ("blocks: [ful_attn]", r"blocks\[0\].*unknown block 'ful_attn'.*Did you mean: full_attn"),
        ("blocks: [none]\ntrain: {stepz: 3}", r"train\.stepz.*unknown key.*Did you mean: steps"),
        ("blocks: [none]\ntrian: {}", r"'trian'.*Did you mean: train"),
        ("blocks: [none]\ntrain: {steps: many}", r"train\.steps.*integer"),
        ("blocks: [none]\nmetrics: [psnr, lpipz]", r"metrics\[1\].*unknown metric 'lpipz'"),
        (
            "blocks: [none]\ndata: {name: synthetik}",
            r"data\.name.*unknown dataset 'synthetik'.*Did you mean: synthetic",
        ),
        ("blocks: [none]\ndata: {name: synthetic, grdi: 3}", r"data\.grdi.*Did you mean: grid"),
        ("blocks: [none]\nmodel: {window: 9}", r"window \(9\) > train\.clip_len \(6\)"),
        ("blocks: [none]\nmodel: {preset: huge}", r"unknown preset 'huge'"),
        ("blocks: [{name: mamba2, kwargs: {d_stat: 8}}]", r"blocks\[0\]\.kwargs\.d_stat.*Valid: .*d_state"),
        ("blocks: [none]\nleaderboard: {sort_by: psnr_revist}", r"'psnr_revist' is not a column.*psnr_revisit"),
        ("blocks: [none, none]", r"duplicate entries \['none'\]; give each a distinct 'label'"),
    ],
)
def test_bad_input_names_file_field_and_fix(tmp_path, body, expect):
    p = write(tmp_path, f"include: _tiny_base.yaml\nname: bad\n{body}\n")
    with pytest.raises(SuiteError, match=expect) as e:
        load_suite(p)
    assert str(p) in str(e.value)


def test_malformed_yaml(tmp_path):
    p = write(tmp_path, "name: [unclosed\n")
    with pytest.raises(SuiteError, match="malformed YAML"):
        load_suite(p)


def test_missing_file_and_include(tmp_path):
    with pytest.raises(SuiteError, match="no such suite file"):
        load_suite(tmp_path / "nope.yaml")
    p = write(tmp_path, "include: missing.yaml\nname: x\nblocks: [none]\n")
    with pytest.raises(SuiteError, match="include.*not found"):
        load_suite(p)


def test_include_cycle(tmp_path):
    (tmp_path / "a.yaml").write_text("include: b.yaml\n")
    (tmp_path / "b.yaml").write_text("include: a.yaml\n")
    with pytest.raises(SuiteError, match="include cycle"):
        load_suite(tmp_path / "a.yaml")


@pytest.mark.parametrize("folder", ["suites", "experiments"])
def test_repo_suites_validate(monkeypatch, folder):
    """Every suite in suites/ and experiments/ validates on a machine of the memory it is written for (the
    paper-scale Memory Maze suite holds ~25 GiB of episodes in memory: more than this CPU machine, which then
    refuses it)."""
    monkeypatch.setattr("rad_bench.limits.machine_memory", lambda: 512 * 2**30)
    root = Path(__file__).parents[1] / folder
    suites = [p for p in root.rglob("*.yaml") if not p.name.startswith("_")]
    assert suites
    for p in suites:
        if p.name == "mqar.yaml":  # the token-level calibration (kind: mqar) has its own schema
            load_mqar(p)
        else:
            load_suite(p)


def test_a_block_may_not_take_a_reference_rows_name(tmp_path):
    p = write(tmp_path, "include: _tiny_base.yaml\nname: x\nblocks: [none, {name: full_attn, label: recall_oracle}]\n")
    with pytest.raises(SuiteError, match=r"field 'blocks\[1\]'.*'recall_oracle' is the name of a reference row.*pick"):
        load_suite(p)


def test_blocks_all_is_every_registered_block_and_is_not_mixed_with_names(tmp_path):
    from rad_bench.registry import list_blocks

    p = write(tmp_path, "include: _tiny_base.yaml\nname: x\nblocks: all\n")
    assert [b.name for b in load_suite(p).blocks] == sorted(list_blocks())
    with pytest.raises(SuiteError, match=r"field 'blocks'.*cannot be mixed with names"):
        load_suite(p, ["blocks=[all, none]"])


RECALL = FIXTURES / "tiny_recall.yaml"  # data.slots swept over [1, 2] in 2 write frames


def test_data_sweep_points_and_their_data_part():
    from rad_bench.config import data_variants, variants

    suite = load_suite(RECALL, ["sweep={data.slots: [1, 2], model.window: [2, 3]}"])
    expected = [f"slots={k},window={w}" for k in (1, 2) for w in (2, 3)]
    assert [label for label, _ in variants(suite)] == expected
    points = data_variants(suite)  # the data axes alone, the other settings unswept (the reference rows)
    assert [label for label, _ in points] == ["slots=1", "slots=2"]
    assert [s.data.slots for _, s in points] == [1, 2] and all(s.model.window == 3 for _, s in points)
    assert data_variants(load_suite(RECALL, ["sweep={model.window: [2, 3]}"]))[0][0] == ""  # no data sweep


@pytest.mark.parametrize(
    "sweep, expect",
    [
        (
            "{data.slots: [1, 3]}",
            r"field 'sweep\.data\.slots': the sweep point slots=3 .*write_frames \(2\) < slots \(3\)",
        ),
        ("{data.slots: [1, 32]}", r"field 'sweep\.data\.slots': the sweep point slots=32 .*max_slots"),
        ("{data.slotz: [1]}", r"field 'sweep\.data\.slotz'.*'data\.slotz': unknown key.*Did you mean: slots"),
        ("{data.delay: [4, 1]}", r"field 'sweep\.data\.delay': the sweep point delay=1 .*set train\.clip_len: 5"),
        ("{data.name: [recall, synthetic]}", r"field 'sweep\.data\.name': a suite runs one dataset"),
        ("{data.slots: []}", r"field 'sweep\.data\.slots': give a non-empty list"),
        ("{rollout.clips: [1, 2]}", r"field 'sweep\.rollout\.clips': only keys under model, train, diffusion, data"),
        ("{data.slots: [1, 2], model.patch: [3]}", r"sweep.*patch \(3\)"),
    ],
)
def test_data_sweep_errors_name_the_sweep_key(sweep, expect):
    with pytest.raises(SuiteError, match="(?s)" + expect) as e:  # (?s): messages may span lines
        load_suite(RECALL, [f"sweep={sweep}"])
    assert str(RECALL) in str(e.value)


def test_data_sweep_without_write_frames_says_how_to_fix_the_lengths():
    with pytest.raises(SuiteError, match=r"'sweep\.data\.slots': the sweep point slots=1 .*data\.write_frames"):
        load_suite(RECALL, ["data.write_frames=null"])


def test_migrate_moves_fvd_settings_of_an_earlier_resolved_suite():
    from rad_bench.config import migrate

    old = {"metrics": ["psnr", "fvd"], "rollout": {"horizon": 16, "fvd_bucket": 9, "fvd_batches": 1}}
    assert migrate(old) == {
        "metrics": ["psnr", "fvd"],
        "rollout": {"horizon": 16},
        "metric_settings": {"fvd": {"bucket": 9}},
    }
    assert migrate({"metrics": ["psnr"], "rollout": {"fvd_bucket": None, "fvd_batches": 1}}) == {
        "metrics": ["psnr"], "rollout": {}}  # fmt: skip
    assert migrate({"rollout": {"horizon": 4}}) == {"rollout": {"horizon": 4}}  # today's form: unchanged
