"""One tiny suite end to end: train, roll out, score, leaderboard, figures, resume.

pytest tests/test_end_to_end.py
"""

import math
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from rad_bench.config import load_suite
from rad_bench.runner import run_suite

FIXTURES = Path(__file__).parent / "fixtures" / "suites"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    suite = load_suite(FIXTURES / "tiny.yaml")
    return run_suite(suite, results_root=tmp_path_factory.mktemp("results"), progress=False, argv=["test"])


def test_outputs_exist_and_are_finite(run_dir):
    for name in [
        "metrics.csv",
        "leaderboard.csv",
        "leaderboard.md",
        "efficiency.csv",
        "suite.resolved.yaml",
        "env.json",
        "argv.txt",
        "figures/psnr_vs_frame.png",
        "figures/ssim_vs_frame.pdf",
        "figures/psnr_by_tag.png",
        "figures/samples.png",
    ]:
        assert (run_dir / name).is_file(), name
    df = pd.read_csv(run_dir / "metrics.csv")
    # tidy: one row per block x seed x clip x frame x per-frame metric, plus one FVD row per block;
    # 2 learned blocks and the 2 reference rows (copy_last, recall_oracle)
    assert len(df) == 4 * 1 * 3 * 6 * 3 + 4
    assert set(df["tag"]) <= {"in_window", "revisit", "novel", "all"}
    assert df["value"].map(math.isfinite).all()
    fvd = df[df["metric"] == "fvd"]
    assert (fvd["frame"] == -1).all() and (fvd["clip"] == 0).all() and (fvd["value"] > 0).all()
    assert fvd["protocol"].str.contains("sha256=af5c50f0df57 res=224 videos=3 frames=10 context_gt=4").all()
    assert df[df["metric"] == "lpips"]["protocol"].str.contains("alexnet v0.1").all()
    for col in ["suite", "suite_version", "impl", "params_block", "params_total", "git_sha", "reach"]:
        assert df[col].notna().all(), col
    board = pd.read_csv(run_dir / "leaderboard.csv")
    assert sorted(board["block"]) == ["copy_last", "full_attn", "none", "recall_oracle"]
    assert board["psnr_all"].map(math.isfinite).all()
    assert board["fvd_all"].map(math.isfinite).all() and board["lpips_revisit"].notna().any()
    assert "fvd_all ↓" in (run_dir / "leaderboard.md").read_text()
    assert (board.set_index("block").loc["none", "params_block"]) == 0


def test_resume_skips_finished_cells(run_dir):
    before = (run_dir / "cells" / "none-s0" / "metrics.csv").stat().st_mtime_ns
    suite = load_suite(FIXTURES / "tiny.yaml")
    again = run_suite(suite, run_dir=run_dir, progress=False, argv=["test"])
    assert again == run_dir
    assert (run_dir / "cells" / "none-s0" / "metrics.csv").stat().st_mtime_ns == before


def test_run_dir_refuses_a_different_suite(run_dir):
    from rad_bench.config import SuiteError

    other = load_suite(FIXTURES / "tiny.yaml", ["train.steps=4"])
    with pytest.raises(SuiteError, match="different suite configuration"):
        run_suite(other, run_dir=run_dir, progress=False)


def test_report_needs_no_torch(run_dir):
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from rad_bench import report\n"
        f"report.write(__import__('pathlib').Path({str(run_dir)!r}))\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_sweep_runs_every_block_at_every_point(tmp_path):
    """A sweep over train modes: one cell per (block, mode), mode and options in every row."""
    suite = load_suite(
        FIXTURES / "tiny.yaml",
        ["metrics=[psnr]", "blocks=[none, lstm_attn]", "sweep={train.mode: [chunk, frame]}", "train.clean_prefix=0.5"],
    )
    out = run_suite(suite, results_root=tmp_path, progress=False, argv=["test"])
    df = pd.read_csv(out / "metrics.csv")
    assert set(df.loc[df["reference"], "block"]) == {"copy_last", "recall_oracle"}  # once, not per point
    df = df[~df["reference"]]
    assert set(df["block"]) == {
        "none[mode=chunk]",
        "none[mode=frame]",
        "lstm_attn[mode=chunk]",
        "lstm_attn[mode=frame]",
    }
    modes = df.groupby("block")["train_mode"].first()
    assert modes["lstm_attn[mode=chunk]"] == "chunk" and modes["none[mode=frame]"] == "frame"
    assert (df["train.mode"] == df["train_mode"]).all()  # the sweep value itself, in a column named by its key
    assert (df["clean_prefix"] == 0.5).all() and df["prefetch_grad"].all() and df["memory_action"].all()
    board = pd.read_csv(out / "leaderboard.csv")
    assert len(board) == 4 + 2
    state = pd.read_csv(out / "state.csv")
    assert set(state["block"]) == set(df["block"]) and len(state) == 4 * 6  # 6 generated frames per cell
    params = df.groupby("block")["params_total"].first()
    assert params["none[mode=chunk]"] == params["none[mode=frame]"]  # modes change training, not the model


def test_efficiency_records_peak_memory_and_state(run_dir):
    eff = pd.read_csv(run_dir / "efficiency.csv")
    # the rollout's own peak (sampled RSS above its start), not the process-wide peak set by training
    assert set(eff["peak_memory_kind"]) == {"cpu_rss_growth_sampled_5ms"}
    assert (eff["peak_memory_bytes"] > 0).all()
    full = eff.set_index("block").loc["full_attn"]
    assert full["state_bytes_final"] > full["state_bytes_first"]  # the growing KV cache is visible
    assert "peak memory" in (run_dir / "report.md").read_text()


def test_no_capacity_section_without_a_data_sweep(run_dir):
    assert "Capacity" not in (run_dir / "report.md").read_text()
    assert not list((run_dir / "figures").glob("capacity_*"))


# --------------------------------------------------------------------------------------------
#                                   A data sweep (recall, K = 1 and 2)
# --------------------------------------------------------------------------------------------


def test_references_run_once_per_data_point_and_seed():
    from rad_bench.plan import expand_cells

    plain = expand_cells(load_suite(FIXTURES / "tiny.yaml", ["sweep={model.window: [2, 3]}"]))
    assert [c.name for c in plain if c.reference] == ["copy_last-s0", "recall_oracle-s0"]  # as before data sweeps
    cells = expand_cells(
        load_suite(FIXTURES / "tiny_recall.yaml", ["sweep={data.slots: [1, 2], model.window: [2, 3]}"])
    )
    refs = [c for c in cells if c.reference]
    assert [c.name for c in refs if c.seed == 0] == [
        "copy_last[slots=1]-s0", "recall_oracle[slots=1]-s0", "copy_last[slots=2]-s0", "recall_oracle[slots=2]-s0",
    ]  # fmt: skip
    assert {c.variant for c in refs} == {"slots=1", "slots=2"} and all(c.suite.model.window == 3 for c in refs)
    assert len(cells) == 2 * (2 * 2 * 2 + 2 * 2)  # seeds x (points x blocks + data points x references)
    learned = [c.variant for c in cells if not c.reference and c.seed == 0]
    assert learned[:4] == ["slots=1,window=2"] * 2 + ["slots=1,window=3"] * 2  # one data point after the other
    # each cell carries its sweep values typed, read from its suite: the label is only its name
    assert [c.point for c in cells if not c.reference and c.seed == 0][2] == (("data.slots", 1), ("model.window", 3))
    assert refs[0].point == (("data.slots", 1),)


@pytest.fixture(scope="module")
def recall_run(tmp_path_factory):
    suite = load_suite(FIXTURES / "tiny_recall.yaml")
    return run_suite(suite, results_root=tmp_path_factory.mktemp("results"), progress=False, argv=["test"])


def test_data_sweep_rows_per_point_with_their_own_references(recall_run):
    df = pd.read_csv(recall_run / "metrics.csv")
    assert set(df["block"]) == {
        f"{b}[slots={k}]" for b in ("none", "full_attn", "copy_last", "recall_oracle") for k in (1, 2)
    }
    assert set(df.loc[df["reference"], "variant"]) == {"slots=1", "slots=2"}
    assert (df["tag"] == "revisit").all()  # every query's slot was written beyond the reach, at every K
    acc = df[df["metric"] == "recall_acc"]
    assert acc["protocol"].str.contains("chance=0.125").all()  # V = 8
    assert (acc.loc[acc["block"].str.startswith("recall_oracle"), "value"] == 1).all()
    assert (df["data.slots"] == df["variant"].str.removeprefix("slots=").astype(int)).all()  # typed, per row
    board = pd.read_csv(recall_run / "leaderboard.csv").set_index("block")
    assert board.loc["full_attn[slots=2]", "data.slots"] == 2  # carried into the leaderboard
    for k in (1, 2):  # paired with `none` at the same K, references too
        assert board.loc[f"full_attn[slots={k}]", "baseline"] == f"none[slots={k}]"
        assert board.loc[f"copy_last[slots={k}]", "baseline"] == f"none[slots={k}]"


def test_every_block_and_seed_sees_the_same_episodes_at_one_k(recall_run):
    import numpy as np

    from rad_bench.build import make_dataset
    from rad_bench.config import variants

    def truth(cell: str) -> np.ndarray:
        return np.load(recall_run / "samples" / f"{cell}.npz")["truth"]

    for label, point in variants(load_suite(FIXTURES / "tiny_recall.yaml")):
        cells = [f"{b}[{label}]-s{s}" for b in ("none", "full_attn", "copy_last", "recall_oracle") for s in (0, 1)]
        first = truth(cells[0])
        assert all(np.array_equal(truth(c), first) for c in cells[1:]), label
        r = point.rollout
        ev = make_dataset(point, seed=1).eval_set(r.clips, r.context, r.horizon)  # the dataset's own, at this K
        assert np.array_equal(
            first, ((ev.frames[:2].clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 1, 3, 4, 2).numpy()
        )
    assert truth("none[slots=1]-s0").shape == truth("none[slots=2]-s0").shape  # same length at every K
    assert not np.array_equal(truth("none[slots=1]-s0"), truth("none[slots=2]-s0"))


def test_capacity_figures_are_drawn_and_embedded(recall_run):
    for name in ("capacity_vs_slots", "capacity_vs_state"):
        assert (recall_run / "figures" / f"{name}.png").is_file() and (recall_run / "figures" / f"{name}.pdf").is_file()
    md = (recall_run / "report.md").read_text()
    assert "## Capacity" in md and "figures/capacity_vs_slots.png" in md and "figures/capacity_vs_state.png" in md
    assert md.index("## Capacity") < md.index("## Metric vs horizon")
    assert "chance (0.125" in md and "Clip 0 (at slots=2)" in md
    page = (recall_run / "report.html").read_text()
    assert "<h2>Capacity</h2>" in page and page.count("data:image/png") >= 4


def test_validation_split_scores_other_episodes_and_says_so(run_dir, tmp_path):
    """``rollout.split: validation`` (choosing settings): held-out episodes, marked in every row and board."""
    suite = load_suite(FIXTURES / "tiny.yaml", ["rollout.split=validation", "blocks=[none]", "metrics=[psnr]"])
    out = run_suite(suite, results_root=tmp_path, progress=False, argv=["test"])
    val, test = pd.read_csv(out / "metrics.csv"), pd.read_csv(run_dir / "metrics.csv")
    assert (val["split"] == "validation").all() and (test["split"] == "test").all()
    key = ["block", "clip", "frame", "metric"]
    both = test.merge(val, on=key, suffixes=("_test", "_val"))
    assert len(both) and (both["value_test"] != both["value_val"]).any()  # copy_last, recall_oracle, none differ
    assert "**Validation split**" in (out / "leaderboard.md").read_text()
    assert "**Validation split**" not in (run_dir / "leaderboard.md").read_text()


def test_a_block_trains_at_its_own_learning_rate(tmp_path, monkeypatch):
    """``blocks: [{name: x, lr: ...}]`` (chosen on the validation split) overrides train.lr for that block alone."""
    from rad_bench import cell as recipe

    seen, real = {}, recipe.train

    def spy(*args, cell, **kw):
        seen[cell] = args[3].lr  # train(model, diffusion, data, cfg, ...)
        return real(*args, cell=cell, **kw)

    monkeypatch.setattr(recipe, "train", spy)
    suite = load_suite(FIXTURES / "tiny.yaml", ["blocks=[{name: none, lr: 0.02}, full_attn]", "metrics=[psnr]"])
    out = run_suite(suite, results_root=tmp_path, progress=False, argv=["test"])
    assert seen == {"none-s0": 0.02, "full_attn-s0": suite.train.lr}
    lr = pd.read_csv(out / "metrics.csv").groupby("block")["lr"].first()
    assert lr["none"] == 0.02 and lr["full_attn"] == suite.train.lr and math.isnan(lr["copy_last"])
