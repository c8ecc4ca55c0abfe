"""The recall training recipe: the shifted noise schedule, queries in rounds scored on first asks, the loss on
target frames, and learning curves (``train.eval_every``).

pytest tests/test_recipe.py
"""

from __future__ import annotations

import json
import math

import pandas as pd
import pytest
import torch

from rad_bench.config import load_suite
from rad_bench.data.recall import Recall, RecallConfig, first_asks
from rad_bench.model.diffusion import Diffusion
from rad_bench.suitefile import SuiteError

# --------------------------------------------------------------------------------------------
#                                   diffusion.shift
# --------------------------------------------------------------------------------------------


def _cosine(levels: int) -> torch.Tensor:
    """The cosine schedule written out independently (Nichol & Dhariwal 2021, offset 0.008)."""
    k = torch.arange(levels + 1, dtype=torch.float64) / levels
    f = torch.cos((k + 0.008) / 1.008 * math.pi / 2) ** 2
    return (f / f[0]).clamp(min=1e-5).float()


def test_shift_one_is_the_cosine_schedule_bit_for_bit():
    assert torch.equal(Diffusion(1000, "x0", shift=1.0).alpha_bar, _cosine(1000))
    assert torch.equal(Diffusion(1000, "x0").alpha_bar, _cosine(1000))


@pytest.mark.parametrize("shift", [2.0, 4.0, 8.0])
def test_shift_divides_the_snr_and_keeps_the_schedule_valid(shift):
    base, ab = Diffusion(1000).alpha_bar.double(), Diffusion(1000, shift=shift).alpha_bar.double()
    assert ab[0] == 1.0  # level 0 stays exactly clean: context frames are unchanged
    assert (ab[1:] < base[1:]).all() or (ab[1:] <= base[1:]).all()  # noisier at every level (both clamped at T)
    assert (ab.diff() <= 0).all() and ab.min() >= 1e-5 - 1e-12  # monotone, within the clamp
    mid = slice(50, 900)  # away from the clamp: SNR' = SNR / shift^2
    snr, snr_shifted = base / (1 - base), ab / (1 - ab)
    torch.testing.assert_close(snr_shifted[mid], snr[mid] / shift**2, rtol=1e-5, atol=0)


def test_sampler_levels_are_the_same_and_reach_clean_under_a_shift():
    """The sampler walks the same level indices; what they mean follows the one shifted schedule."""
    d1, d4 = Diffusion(1000, "x0"), Diffusion(1000, "x0", shift=4.0)
    assert d1.schedule(10) == d4.schedule(10) and d4.schedule(10)[-1] == 0
    noise = torch.randn(1, 1, 3, 4, 4)
    out = d4.sample(lambda x, k: torch.zeros_like(x), noise, steps=10)  # x0 predicted as 0: ends at 0
    assert out.abs().max() < 1e-6


@pytest.mark.parametrize("steps", [2, 10, 25])
def test_snr_sampler_visits_the_unshifted_noise_levels(steps):
    even, plain = Diffusion(1000, "x0", shift=8.0), Diffusion(1000, "x0")
    snr = Diffusion(1000, "x0", shift=8.0, sampler_levels="snr")
    assert Diffusion(1000, "x0", sampler_levels="snr").schedule(steps) == plain.schedule(steps)  # same at shift 1
    ks = snr.schedule(steps)
    assert ks[0] == 1000 and ks[-1] == 0 and ks == sorted(set(ks), reverse=True)
    assert len(ks) == steps + 1 and ks != even.schedule(steps)
    ab, want = snr.alpha_bar, plain.alpha_bar[plain.schedule(steps)[1:-1]]
    for k, w in zip(ks[1:-1], want):  # the nearest shifted level to each cosine one
        assert (ab[k] - w).abs() <= min((ab[k - 1] - w).abs(), (ab[k + 1] - w).abs()) and (ab[k] - w).abs() < 5e-3


def test_suite_shift_reaches_the_diffusion_and_is_refused_when_not_positive(tmp_path):
    s = load_suite("suites/recall.yaml", ["diffusion.shift=4", "diffusion.sampler_levels=snr"])
    assert Diffusion.of(s.diffusion).shift == 4.0 and Diffusion.of(s.diffusion).sampler_levels == "snr"
    with pytest.raises(SuiteError, match="diffusion.shift"):
        load_suite("suites/recall.yaml", ["diffusion.shift=0"])


# --------------------------------------------------------------------------------------------
#                                   Queries in rounds, first asks
# --------------------------------------------------------------------------------------------


def _queries(data: Recall, n: int, seed: int = 0):
    frames, actions, places = data.episodes(n, torch.Generator().manual_seed(seed))
    start = data.cfg.writes + data.cfg.delay
    return places, start


@pytest.mark.parametrize("slots", [1, 2, 3, 8])
def test_rounds_ask_every_written_slot_once_before_any_repeat(slots):
    data = Recall(RecallConfig(slots=slots, write_frames=8, delay=4, queries=8, query_order="rounds"))
    places, start = _queries(data, 16)
    for p in places:
        q = p[start:].tolist()
        for r in range(0, len(q), slots):  # each round is a permutation of the written slots
            chunk = q[r : r + slots]
            assert len(set(chunk)) == len(chunk)
            assert set(chunk) <= set(p[:start].tolist())


def test_first_asks_mark_the_first_query_of_each_slot_only():
    places = torch.tensor([[5, 6, 20, 5, 6, 5, 5], [5, 6, 21, 6, 6, 5, 6]])
    first = first_asks(places, start=3)
    assert first.tolist() == [[False] * 3 + [True, True, False, False], [False] * 3 + [True, False, True, False]]


def test_eval_set_scores_first_asks_and_training_targets_are_the_same_frames():
    cfg = RecallConfig(slots=2, write_frames=4, delay=4, queries=6, query_order="rounds")
    data = Recall(cfg)
    ev = data.eval_set(8, 8, 6)
    assert ev.scored is not None and ev.scored[:, :8].sum() == 0
    assert (ev.scored[:, 8:].sum(dim=1) == 2).all()  # K = 2 first asks among 6 queries
    frames, actions, targets = data.sample_with_targets(8, 14, torch.Generator().manual_seed(0))
    f2, a2 = data.sample(8, 14, torch.Generator().manual_seed(0))
    assert torch.equal(frames, f2) and torch.equal(actions, a2)  # the same draw with or without targets
    assert targets[:, :8].sum() == 0 and (targets[:, 8:].sum(dim=1) >= 1).all()


def test_random_order_keeps_the_draw_of_earlier_versions():
    """query_order: random (the default) draws exactly as before the option existed: one randint call."""
    cfg = RecallConfig(slots=3, write_frames=3, delay=2, queries=5)
    g = torch.Generator().manual_seed(7)
    places = Recall(cfg).episodes(1, g)[2][0]
    g = torch.Generator().manual_seed(7)
    keys = torch.randperm(cfg.max_slots, generator=g)[:3]
    torch.randint(0, cfg.values, (3,), generator=g)
    asked = torch.randint(0, 3, (5,), generator=g)
    assert places[5:].tolist() == keys[asked].tolist()


# --------------------------------------------------------------------------------------------
#                                   train.loss_frames
# --------------------------------------------------------------------------------------------


def test_loss_on_targets_is_the_mean_over_noisy_target_frames_only():
    d = Diffusion(100, "x0")
    x0 = torch.randn(2, 4, 3, 4, 4)
    k = torch.tensor([[0, 10, 20, 30], [40, 0, 50, 60]])
    eps = torch.randn_like(x0)
    targets = torch.tensor([[True, True, False, True], [True, True, True, False]])
    predict = lambda x, lv: torch.zeros_like(x)  # noqa: E731
    err = x0.pow(2).mean(dim=(2, 3, 4))
    want = (err[0, 1] + err[0, 3] + err[1, 0] + err[1, 2]) / 4  # level-0 frames carry no loss
    torch.testing.assert_close(d.loss(predict, x0, k, eps, targets), want)
    torch.testing.assert_close(d.loss(predict, x0, k, eps), err[k > 0].mean())


def test_loss_frames_targets_is_refused_for_a_dataset_without_targets():
    with pytest.raises(SuiteError, match="train.loss_frames"):
        load_suite("suites/smoke.yaml", ["train.loss_frames=targets"])
    assert load_suite("suites/recall.yaml", ["train.loss_frames=targets"]).train.loss_frames == "targets"


# --------------------------------------------------------------------------------------------
#                                   End to end: scored rows, learning curves
# --------------------------------------------------------------------------------------------

BODY = (
    "name: recipe\nblocks: [none]\nmetrics: [recall_acc, psnr]\nseeds: [0]\n"
    "leaderboard: {sort_by: recall_acc_revisit}\n"
    "model: {preset: tiny, window: 2, patch: 8, dim: 32, depth: 1, heads: 2}\n"
    "data: {name: recall, frame_size: 16, slots: 2, write_frames: 2, delay: 3, queries: 4, query_order: rounds}\n"
    "diffusion: {shift: 4.0}\n"
    "train: {steps: 4, batch_size: 2, clip_len: 9, log_every: 1, warmup: 1, loss_frames: targets, eval_every: EVERY}\n"
    "rollout: {context: 5, horizon: 4, clips: 2, batch_size: 2, sampling_steps: 2, split: validation}\n"
)


def _run(tmp_path, name: str, every: str = "0"):
    from rad_bench.runner import run_suite

    (tmp_path / f"{name}.yaml").write_text(BODY.replace("EVERY", every))
    return run_suite(load_suite(tmp_path / f"{name}.yaml"), run_dir=tmp_path / name, progress=False, argv=["t"])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("recipe")
    return _run(tmp, "plain"), _run(tmp, "curve", "2")


def test_rows_carry_the_recipe_and_the_leaderboard_scores_first_asks(runs):
    from rad_bench.report.runs import load_run

    plain = runs[0]
    df = pd.read_csv(plain / "metrics.csv")
    learned = df[df["block"] == "none"]
    assert (learned["shift"] == 4.0).all() and (learned["loss_frames"] == "targets").all()
    per_frame = learned[learned["metric"] == "recall_acc"]
    assert sorted(per_frame.groupby("frame")["scored"].first().tolist()) == [0, 0, 1, 1]  # 2 first asks of 4
    table = load_run(plain).table.set_index("block")
    assert table.loc["none", "frames_revisit"] == 2 * 2  # 2 clips x 2 first asks; the repeats left out


def test_learning_curve_leaves_training_unchanged_and_is_reported(runs):
    plain, curve = runs
    pt = torch.load(plain / "checkpoints" / "none-s0.pt", weights_only=True)["model"]
    ct = torch.load(curve / "checkpoints" / "none-s0.pt", weights_only=True)["model"]
    assert all(torch.equal(pt[k], ct[k]) for k in pt)  # scoring during training consumed no training randomness
    rows = pd.read_csv(curve / "cells" / "none-s0" / "curve.csv")
    assert rows["step"].tolist() == [0, 2, 4] and (rows["metric"] == "recall_acc_revisit").all()
    assert ((rows["value"] >= 0) & (rows["value"] <= 1)).all() and (rows["split"] == "validation").all()
    assert not (plain / "cells" / "none-s0" / "curve.csv").exists()
    report = (curve / "report.md").read_text()
    assert "## Learning curves" in report and "mean steps to reach" in report
    assert (curve / "figures" / "learning_curves.png").is_file()
    assert json.loads((curve / "cells" / "none-s0" / "stats.json").read_text())["train_steps"] == 4


def test_steps_to_reach_counts_the_first_step_at_the_common_level():
    from rad_bench.report.learning import reach_level, steps_to_reach

    rows = [("a", 0, [0.0, 0.5, 1.0]), ("a", 1, [0.0, 0.2, 0.6]), ("b", 0, [0.0, 0.1, 0.2]), ("b", 1, [0.0, 0.0, 0.0])]
    curves = pd.DataFrame(
        [{"block": b, "seed": s, "step": 10 * i, "metric": "recall_acc_revisit", "value": v}
         for b, s, vs in rows for i, v in enumerate(vs)]
    )  # fmt: skip
    level = reach_level(curves)  # halfway from 0 (untrained) to block a's final mean 0.8
    assert level == pytest.approx(0.4)
    t = steps_to_reach(curves, level).set_index("block")
    assert t.loc["a", "reached"] == 2 and t.loc["a", "steps_to_reach"] == 15  # steps 10 and 20
    assert t.loc["b", "reached"] == 0 and math.isnan(t.loc["b", "steps_to_reach"])


def test_a_cell_whose_training_another_process_holds_waits_and_reuses_it(tmp_path, monkeypatch):
    """--workers: when another process is training the cell that a later cell would reuse (the same training
    key), the later cell waits for it instead of training a duplicate."""
    import rad_bench.runner as runner

    real, held = runner.run_locked, {"none[slots=1]-s0"}

    def first_busy(run_dir, cell, job, *, wait):  # the origin is "held by another process" the first time
        if cell in held and not wait:
            held.discard(cell)
            return False
        return real(run_dir, cell, job, wait=wait)

    monkeypatch.setattr(runner, "run_locked", first_busy)
    body = BODY.replace("EVERY", "0").replace("slots: 2, write_frames: 2", "slots: 2, train_slots: 2, write_frames: 2")
    (tmp_path / "s.yaml").write_text(body + "sweep: {data.slots: [1, 2]}\n")
    run = runner.run_suite(load_suite(tmp_path / "s.yaml"), run_dir=tmp_path / "run", progress=False, argv=["t"])
    stats = json.loads((run / "cells" / "none[slots=2]-s0" / "stats.json").read_text())
    assert stats["train_shared_from"] == "none[slots=1]-s0"


def test_a_suite_sets_the_default_workers_and_helpers_start_none_of_their_own(tmp_path):
    from typer.testing import CliRunner

    from rad_bench.cli import app
    from rad_bench.launch import worker_command

    assert (
        "--workers" in (cmd := worker_command(tmp_path / "s.yaml", [], None, 1))
        and cmd[cmd.index("--workers") + 1] == "1"
    )
    (tmp_path / "s.yaml").write_text(BODY.replace("EVERY", "0") + "launcher: {workers: 2}\n")
    res = CliRunner().invoke(app, ["run", str(tmp_path / "s.yaml"), "--results", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    run = next((tmp_path / "recipe").iterdir())
    assert (run / "logs" / "worker1.log").is_file()  # the suite's launcher.workers started one helper


def test_the_study_collector_reads_leaderboards(tmp_path):
    """experiments/recall_recipe/collect.py on two small leaderboards: the study table and the README table."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "experiments" / "recall_recipe" / "collect.py"
    spec = importlib.util.spec_from_file_location("collect", path)
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    rows = []
    for block, ref in (("none", False), ("ttt", False), ("recall_oracle", True)):
        for k in (2, 8):
            acc = {"none": 0.03, "ttt": 0.8 / k * 2, "recall_oracle": 1.0}[block]
            rows.append({"block": f"{block}[slots={k}]", "block_name": block, "variant": f"slots={k}", "shift": 8.0,
                         "reference": ref, "seeds": 3, "recall_acc_revisit": acc, "recall_acc_revisit_ci95": 0.05,
                         "psnr_revisit": 10.0, "psnr_revisit_ci95": 1.0, "lpips_revisit": 0.5,
                         "lpips_revisit_ci95": 0.1, "recall_acc_revisit_diff": acc - 0.03 if block == "ttt" else None,
                         "recall_acc_revisit_diff_lo": 0.5, "recall_acc_revisit_diff_hi": 0.9,
                         "recall_acc_revisit_diff_sig": block == "ttt"})  # fmt: skip
    run = tmp_path / "recall_recipe_shift" / "20261203-000000-abc"
    run.mkdir(parents=True)
    pd.DataFrame(rows).to_csv(run / "leaderboard.csv", index=False)
    for seed, value in ((0, 1.0), (1, 0.5)):  # the study table reads finished cells: first asks on revisits
        for block, ref in (("ttt", False), ("copy_last", True)):
            cell = run / "cells" / f"{block}[slots=2,shift=8.0]-s{seed}"
            cell.mkdir(parents=True)
            frames = [{"block_name": block, "variant": "slots=2,shift=8.0", "shift": 8.0, "seed": seed,
                       "reference": ref, "tag": "revisit", "metric": "recall_acc", "value": v, "scored": sc}
                      for v, sc in ((value, 1), (0.0, 0))]  # fmt: skip
            pd.DataFrame(frames).to_csv(cell / "metrics.csv", index=False)
    study = collect.rows(tmp_path)
    assert len(study) == 1 and study["seeds"].iloc[0] == 2  # the reference cell is left out
    assert study["recall_acc_revisit"].iloc[0] == 0.75  # the repeat (scored 0) is left out
    assert "| 1: rounds + one training on 1..16 writes, shift 8 | ttt | 2 | 0.75 ± 3.18 |" in collect.markdown(study)
    table = collect.final_table(run)
    assert "| ttt | 0.80 ± 0.05 (+0.77 [0.50, 0.90] *) | 0.20 ± 0.05 (+0.17 [0.50, 0.90] *) |" in table
    assert "recall_oracle (ref)" in table


@pytest.mark.parametrize(("shift", "steps"), [(8.0, 100), (64.0, 10), (64.0, 50)])
def test_snr_sampler_takes_every_step_even_where_nearest_levels_coincide(shift, steps):
    ks = Diffusion(1000, "x0", shift=shift, sampler_levels="snr").schedule(steps)
    assert len(ks) == steps + 1 and ks[0] == 1000 and ks[-1] == 0
    assert all(a > b for a, b in zip(ks, ks[1:]))


@pytest.mark.parametrize(
    ("overrides", "words"),
    [
        (["train.eval_every=10", "leaderboard.sort_by=fvd_all", "metrics=[psnr, fvd]"], "per-frame metric"),
        (["sweep={train.loss_frames: [all, targets]}"], "train.loss_frames"),
    ],
)
def test_curve_and_target_settings_are_checked_at_load(overrides, words):
    with pytest.raises(SuiteError, match=words):
        load_suite("suites/smoke.yaml", overrides)


def test_report_of_a_curve_with_the_untrained_point_only(tmp_path):
    from rad_bench.report.runs import _learning_items

    (tmp_path / "cells" / "none-s0").mkdir(parents=True)
    row = {"block": "none", "seed": 0, "variant": "", "step": 0, "metric": "recall_acc_revisit", "value": 0.03}
    pd.DataFrame([row]).to_csv(tmp_path / "cells" / "none-s0" / "curve.csv")

    class Run:
        run_dir, figures = tmp_path, {"learning": tmp_path / "x.png"}

    assert _learning_items(Run()) == []


def test_the_suite_workers_default_is_ignored_under_a_launcher_and_torchrun(tmp_path, monkeypatch):
    """launcher.workers is a plain run's default: cluster jobs and torchrun ranks start no helpers."""
    import rad_bench.cli as cli

    seen = {}
    monkeypatch.setattr(cli, "_start", lambda *a, **kw: seen.update(kw) or (_ for _ in ()).throw(SystemExit(0)))
    (tmp_path / "s.yaml").write_text(BODY.replace("EVERY", "0") + "launcher: {workers: 2}\n")
    from typer.testing import CliRunner

    CliRunner().invoke(cli.app, ["run", str(tmp_path / "s.yaml"), "--launcher", "local"])
    assert seen["workers"] == 1
    monkeypatch.setenv("WORLD_SIZE", "2")
    CliRunner().invoke(cli.app, ["run", str(tmp_path / "s.yaml")])
    assert seen["workers"] == 1
    monkeypatch.setenv("WORLD_SIZE", "1")
    CliRunner().invoke(cli.app, ["run", str(tmp_path / "s.yaml")])
    assert seen["workers"] == 2


def test_the_collector_pairs_the_fall_with_k_by_seed(tmp_path):
    """collect.fall_with_k: the same model scored at K = 2 and 8, differences per seed, scored first asks only."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "experiments" / "recall_recipe" / "collect.py"
    spec = importlib.util.spec_from_file_location("collect", path)
    collect = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(collect)
    for seed, (at2, at8) in enumerate(((1.0, 0.5), (0.75, 0.25))):
        for k, value in ((2, at2), (8, at8)):
            cell = tmp_path / "cells" / f"ttt[slots={k}]-s{seed}"
            cell.mkdir(parents=True)
            frames = [{"block_name": "ttt", "variant": f"slots={k}", "seed": seed, "clip": c, "tag": "revisit",
                       "metric": "recall_acc", "value": v, "scored": sc}
                      for c in range(4) for v, sc in ((value, 1), (0.0, 0))]  # fmt: skip
            pd.DataFrame(frames).to_csv(cell / "metrics.csv", index=False)
    table = collect.fall_with_k(tmp_path, boots=200)
    assert "| ttt | 8 | +0.50 / +0.50 | +0.50 ± 0.00 | [+0.50, +0.50] |" in table
