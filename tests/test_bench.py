"""The efficiency benchmark end to end at ``--quick`` sizes: every file, finite numbers, one device.

OMP_NUM_THREADS=1 pytest tests/test_bench.py -m slow
"""

import math
from pathlib import Path

import pandas as pd
import pytest

from rad_bench.bench import SECTIONS
from rad_bench.bench.__main__ import main
from rad_bench.registry import list_blocks


@pytest.fixture(scope="module")
def out(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench")
    assert main(["--quick", "--device", "cpu", "--out", str(path)]) == 0
    return path


def measured(out, section):
    """False only for the suites section in a checkout without the baseline commit, which the summary notes."""
    return section != "suites" or "Suite throughput (section 7) not measured" not in (out / "summary.md").read_text()


@pytest.mark.slow
def test_files_exist(out):
    for name in [*(f"{s}-cpu.csv" for s in SECTIONS if measured(out, s)), "summary.md", "env.json"]:
        assert (out / name).is_file(), name
    assert (out / "rollout_ms_per_frame-cpu.png").is_file()


@pytest.mark.slow
@pytest.mark.parametrize("section", SECTIONS)
def test_csv_rows_finite_and_on_one_device(out, section):
    if not measured(out, section):
        pytest.skip("no baseline commit in this checkout (a shallow clone): the summary says so")
    df = pd.read_csv(out / f"{section}-cpu.csv")
    assert len(df) > 0
    assert (df["device"] == "cpu").all()
    numbers = df.select_dtypes("number")
    assert not numbers.empty
    assert all(math.isfinite(v) for v in numbers.to_numpy().ravel())


@pytest.mark.slow
def test_rollout_covers_every_block_and_length(out):
    df = pd.read_csv(out / "rollout-cpu.csv")
    assert set(df["block"]) == set(list_blocks())
    assert sorted(set(df["length_x_window"])) == [1, 4, 16]
    assert (df["ms_per_frame"] > 0).all()
    growing = df[df["state_growth"] == "linear"].groupby("block")["state_bytes"]
    assert (growing.max() > growing.min()).all()  # full_attn's cache grows with the rollout


@pytest.mark.slow
def test_summary_has_ratio_tables(out):
    text = (out / "summary.md").read_text()
    headings = ["## 1. Rollout", "## 2. Scans", "## 3. Training", "## 4. Training modes", "## 5. Metrics"]
    headings += ["## 6. Training step vs `none`"] + (["## 7. Suite throughput"] if measured(out, "suites") else [])
    for heading in headings:
        assert heading in text
    assert "chunked vs sequential" in text and "dual vs primal" in text and "LSTMCell.scan" in text
    assert "PASS" in text or "MISS" in text


@pytest.mark.slow
def test_modes_compare_every_way_for_the_recurrent_blocks(out):
    df = pd.read_csv(out / "modes-cpu.csv")
    assert set(df["block"]) == {"lstm_attn", "mamba2", "ttt"}
    assert set(df["way"]) == {"chunk", "frame", "frame (prefetch detached)", "naive window loop"}
    assert (df["s_per_step"] > 0).all()
    assert "frame / chunk" in (out / "summary.md").read_text()


def test_flops_are_counted_in_training_mode_and_the_mode_restored():
    """``train`` leaves the model in eval mode; cuDNN's LSTM has no backward for an eval-mode forward,
    so counting a step's FLOPs right after it crashed lstm_attn on the first H100 run."""
    from rad_bench.bench.common import QUICK, setup
    from rad_bench.bench.training import train_flops
    from rad_bench.build import make_model

    b = setup("cpu", QUICK, Path("/nonexistent-never-written"))
    spec = next(s for s in b.suite.blocks if s.name == "lstm_attn")
    model = make_model(b.suite, spec, b.data, "cpu").eval()
    seen = []
    model.register_forward_pre_hook(lambda m, _: seen.append(m.training))
    assert train_flops(b, model, 2, b.suite.train.clip_len) > 0
    assert seen and all(seen) and not model.training


def test_section_runs_only_the_named_sections(tmp_path, capsys):
    assert main(["--quick", "--device", "cpu", "--out", str(tmp_path), "--section", "scans", "--section", "gpu"]) == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["env.json", "scans-cpu.csv", "summary.md"]
    summary = (tmp_path / "summary.md").read_text()
    assert "Sections not run (--section): rollout, train, modes, metrics, steps, suites." in summary
    assert main(["--section", "rollout", "--section", "fvd"]) == 2
    assert "--section fvd: no such bench section; choose from rollout, scans" in capsys.readouterr().err


def test_a_ratio_is_judged_on_its_whole_range_not_its_median():
    """Two runs a week apart flipped rows between PASS and MISS on the noise of single timings: a row is
    PASS or MISS only when the range the two spreads allow lies on one side of its target."""
    from rad_bench.bench.common import Timing
    from rad_bench.bench.summary import row_ratio, verdict

    fast, slow = Timing((1.0, 1.1, 1.4)), Timing((3.0, 3.2, 3.3))
    row = lambda t: {"ms": t.median, "ms_lo": t.lo, "ms_hi": t.hi}  # noqa: E731  (how the sections write rows)
    lo, mid, hi = row_ratio(row(slow), row(fast), "ms")
    assert (lo, mid, hi) == pytest.approx((3.0 / 1.4, 3.2 / 1.1, 3.3 / 1.0))
    assert verdict((lo, mid, hi), 2.0)[1] == "PASS"  # at least 2x everywhere in the range
    assert verdict((lo, mid, hi), 3.0)[1] == "within noise"  # the median passes, the range straddles
    assert verdict((lo, mid, hi), 3.5)[1] == "MISS"
    assert verdict((0.9, 1.0, 1.2), 1.15, at_most=True)[1] == "within noise"
    assert verdict((0.9, 1.0, 1.1), 1.15, at_most=True)[1] == "PASS"
    assert verdict((1.2, 1.3, 1.4), 1.15, at_most=True)[1] == "MISS"
    assert verdict((1.0, 1.0, 1.0), None) == ("—", "—")
    assert row_ratio({"ms": 2.0}, {"ms": 1.0}, "ms") == (2.0, 2.0, 2.0)  # rows without a spread: one value


def test_suite_throughput_table_states_medians_and_their_ratio():
    """experiments/throughput/suite.py: one markdown row per suite, this tree's median steps/s over the baseline's."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "experiments" / "throughput" / "suite.py"
    spec = importlib.util.spec_from_file_location("suite_throughput", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    runs = (("baseline a2ad65d", (300, 200, 400)), ("this tree", (100, 150, 90)))
    base = {"suite": "s.yaml", "cells": 4, "trainings": 2, "steps": 600}
    rows = [
        {**base, "code": c, "repeat": r, "wall_s": w, "steps_per_s": 600 / w}
        for c, ws in runs
        for r, w in enumerate(ws)
    ]
    text = mod.table(pd.DataFrame(rows), "a2ad65d")
    assert "| s.yaml | 2 x 300 | 2.00 | 6.00 | 3.00x |" in text, text


def test_step_and_suite_tables_judge_their_targets():
    """Section 6: each block's step over none's at its size, judged on the spreads' range against 2x; section 7:
    this code's steps per second over the baseline's, within noise inside the 10% run-to-run drift of the target."""
    from rad_bench.bench.summary import steps_summary, suites_summary

    def step(block, s, lo, hi):
        spread = {"s_per_step": s, "s_per_step_lo": lo, "s_per_step_hi": hi}
        return {"size": "recall", "block": block, **spread, "reps": 5, "steps": 20}

    text = "\n".join(
        steps_summary(
            [
                step("none", 0.1, 0.1, 0.1),
                step("ttt", 0.15, 0.14, 0.16),
                step("mamba2", 0.25, 0.24, 0.26),
                step("lstm_attn", 0.2, 0.18, 0.22),
            ]
        )
    )
    assert "| recall | ttt | 150.0 | 1.50x [1.40, 1.60] | PASS |" in text, text
    assert "| recall | mamba2 | 250.0 | 2.50x [2.40, 2.60] | MISS |" in text
    assert "| recall | lstm_attn | 200.0 | 2.00x [1.80, 2.20] | within noise |" in text

    def rows(new):
        runs = (("baseline a2ad65d", 2.0), ("this code", new))
        base = {"suite": "suites/s.yaml", "subset": "seeds=[0]", "trainings": 2, "steps": 600}
        return [{**base, "code": code, "steps_per_s": sps, "wall_s": 600 / sps} for code, sps in runs]

    assert "| 2.00 (300 s) | 5.00 (120 s) | 2.50x | PASS |" in "\n".join(suites_summary(rows(5.0)))
    assert "| 1.90x | within noise |" in "\n".join(suites_summary(rows(3.8)))
    assert "| 1.49x | MISS |" in "\n".join(suites_summary(rows(2.98)))


def test_a_missing_baseline_commit_is_a_note_not_a_crash(monkeypatch):
    """A shallow clone lacks the baseline commit: section 7 says so in the summary's notes and measures nothing."""
    from rad_bench.bench import suites
    from rad_bench.bench.common import QUICK, setup

    b = setup("cpu", QUICK, Path("/nonexistent-never-written"))
    monkeypatch.setattr(suites, "BASELINE", "0" * 40)
    assert suites.bench_suites(b) == []
    assert any("Suite throughput (section 7) not measured" in n for n in b.notes), b.notes
