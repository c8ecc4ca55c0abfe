"""Reports from CSV/npz only: run report, combined report across suites, run discovery, no torch.

Every run folder here is synthetic (written by the test in milliseconds), so nothing is trained.

OMP_NUM_THREADS=1 pytest tests/test_report.py
"""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy.stats import t as student_t
from typer.testing import CliRunner

from rad_bench import report
from rad_bench.cli import app
from rad_bench.report.samples import KEY_H
from rad_bench.tags import TAGS, tag_frames

CONTEXT, HORIZON, CLIPS, SIZE = 4, 8, 3, 8
LEVEL = {"full_attn": 20.0, "lstm_attn": 12.0, "copy_last": 5.0, "recall_oracle": 30.0}  # psnr level per block
cli = CliRunner()


def _gap(tag: str, frame: int) -> float:
    """A gap consistent with the fixture's tags and reach 5: in_window < 5 <= revisit, novel has none."""
    return {"in_window": 1 + frame % 4, "revisit": 5 + frame}.get(tag, np.nan)


def _metric_rows(suite: str, block: str, seed: int, offset: float, cell: dict, new: bool = False) -> list[dict]:
    """One cell's rows. ``new``: with the gap/attention/reference columns; a reference row does not
    depend on the seed (it involves no training)."""
    common = {
        "suite": suite, "suite_version": 1, "run": "r", "block": block, "block_name": block.split("[")[0],
        "seed": seed, "window": 3, "reach": 5, "impl": "ref", "params_block": 10, "params_total": 100,
        "limited": False, "git_sha": "abc1234def", "protocol": "p",
        **({"attention": "sliding", "reference": False} if new else {}), **cell,
    }  # fmt: skip
    s = 0.0 if common.get("reference") else 0.5 * seed
    rows = [
        {**common, "clip": c, "frame": f, "tag": TAGS[(f + c) % 3], "metric": "psnr",
         "value": offset + s + 0.1 * c - 0.2 * f, **({"gap": _gap(TAGS[(f + c) % 3], f)} if new else {})}
        for c in range(CLIPS) for f in range(HORIZON)
    ]  # fmt: skip
    return rows + [{**common, "clip": 0, "frame": -1, "tag": "all", "metric": "fvd", "value": 100 - offset + s}]


def _write_samples(run: Path, block: str, seed: int, tags: str | None = None) -> None:
    """``tags``: also store a ``tags`` array (every generated frame tagged so), as the new runner does."""
    rng = np.random.default_rng(seed)
    places = np.tile(np.array([0, 1, 2, 3, 0, 5, 6, 1, 2, 9, 0, 11]), (CLIPS, 1))
    (run / "samples").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        run / "samples" / f"{block}-s{seed}.npz",
        truth=rng.integers(0, 255, (CLIPS, CONTEXT + HORIZON, SIZE, SIZE, 3), dtype=np.uint8),
        generated=rng.integers(0, 255, (CLIPS, HORIZON, SIZE, SIZE, 3), dtype=np.uint8),
        places=places,
        context=np.array(CONTEXT),
        **({"tags": np.full((CLIPS, HORIZON), tags)} if tags else {}),
    )


def make_run(
    root: Path, suite: str, run: str, offset: float = 0.0, cells: dict | None = None, seeds=(0, 1), new: bool = False
) -> Path:
    """A run folder as the runner leaves it: metrics.csv, efficiency.csv, samples/, suite.resolved.yaml.
    ``cells`` maps block label -> extra/overridden columns (e.g. the upcoming train_mode). ``new``: the
    runner's newer format (gap, attention, reference columns; sample files tagged all ``revisit``)."""
    cells = cells or {"none": {}, "full_attn": {}}
    run_dir = root / suite / run
    rows, eff = [], []
    for block, cell in cells.items():
        base = offset + LEVEL.get(block.split("[")[0], 10.0)
        for seed in seeds:
            rows += _metric_rows(suite, block, seed, base, cell, new)
            eff.append({"block": block, "seed": seed, "rollout_frames_per_s": 50.0 + seed, "train_step_s": 0.1,
                        "state_bytes_first": 1024, "state_bytes_final": 4096, "params_total": 100,
                        "state_growth": "linear"})  # fmt: skip
            _write_samples(run_dir, block, seed, "revisit" if new else None)
    pd.DataFrame(rows).to_csv(run_dir / "metrics.csv", index=False)
    pd.DataFrame(eff).to_csv(run_dir / "efficiency.csv", index=False)
    (run_dir / "suite.resolved.yaml").write_text(f"name: {suite}\nleaderboard: {{sort_by: psnr_revisit}}\n")
    return run_dir


def _assert_self_contained(page: str) -> None:
    assert "<script" not in page and "<link" not in page and "http" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert srcs and all(s.startswith("data:image/") for s in srcs)


# --------------------------------------------------------------------------------------------
#                                   One run
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    run = make_run(tmp_path_factory.mktemp("results"), "alpha", "20260101-0000-aaaaaaa")
    report.write(run)
    return run


def test_run_report_is_self_contained(run_dir):
    page = (run_dir / "report.html").read_text()
    _assert_self_contained(page)
    assert (
        page.count("data:image/png;base64,") == 4 and page.count("data:image/gif;base64,") == 1
    )  # overall curve, curves by tag, bars, strip
    assert "rollout frames/s" in page and "state, final frame" in page and "4.00 KiB" in page
    assert "peak memory" not in page and "state size vs rollout frame" not in page  # optional inputs absent
    md = (run_dir / "report.md").read_text()
    assert "| full_attn |" in md and "psnr_revisit ↑" in md
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", md):
        assert (run_dir / link).is_file(), link
    assert (run_dir / "figures" / "psnr_vs_frame_by_tag.png").is_file()


def test_gif_shows_every_rollout_frame_with_tag_border(run_dir):
    gif = Image.open(run_dir / "figures" / "samples.gif")
    assert gif.n_frames == HORIZON
    places = np.load(run_dir / "samples" / "none-s0.npz")["places"][0].tolist()
    tags = tag_frames(places, CONTEXT, 5)
    for t in (0, HORIZON - 1):
        gif.seek(t)
        border = np.array(gif.convert("RGB").getpixel((1, 15)))
        assert np.abs(border - report.TAG_COLORS[tags[t]]).max() <= 8, (t, tags[t], border)


def test_leaderboard_is_mean_over_seeds_of_seed_means(run_dir):
    df = pd.read_csv(run_dir / "metrics.csv")
    sub = df[(df["block"] == "none") & (df["metric"] == "psnr") & (df["tag"] == "revisit")]
    per_seed = sub.groupby("seed")["value"].mean()
    board = pd.read_csv(run_dir / "leaderboard.csv").set_index("block")
    assert board.loc["none", "psnr_revisit"] == pytest.approx(per_seed.mean())
    assert board.loc["none", "psnr_revisit_stderr"] == pytest.approx(per_seed.std(ddof=1) / np.sqrt(2))
    assert list(board.index) == ["full_attn", "none"]  # sorted by psnr_revisit, higher first


def test_upcoming_columns_and_optional_inputs(tmp_path):
    cells = {
        "lstm_attn[mode=chunk]": {"train_mode": "chunk", "prefetch_grad": False, "window": 3, "reach": 5},
        "lstm_attn[mode=frame]": {"train_mode": "frame", "prefetch_grad": True, "window": 4, "reach": 7},
    }
    run = make_run(tmp_path, "modes", "20260101-0000-aaaaaaa", cells=cells, seeds=(0,))
    eff = pd.read_csv(run / "efficiency.csv").assign(peak_memory_bytes=3 * 2**20)
    eff.to_csv(run / "efficiency.csv", index=False)
    state = [{"block": b, "seed": 0, "frame": f, "state_bytes": 100 * (f + 1)} for b in cells for f in range(HORIZON)]
    pd.DataFrame(state).to_csv(run / "state.csv", index=False)
    report.write(run)
    board = pd.read_csv(run / "leaderboard.csv").set_index("block")
    assert sorted(board.index) == sorted(cells)
    assert board.loc["lstm_attn[mode=frame]", "train_mode"] == "frame"
    assert board.loc["lstm_attn[mode=frame]", "window"] == 4 and board.loc["lstm_attn[mode=chunk]", "reach"] == 5
    assert report.reach_groups(pd.read_csv(run / "metrics.csv")) == {
        5: ["lstm_attn[mode=chunk]"],
        7: ["lstm_attn[mode=frame]"],
    }
    md = (run / "report.md").read_text()
    assert "| block | train_mode | window |" in md and "| lstm_attn[mode=chunk] | chunk | 3 |" in md
    assert "peak memory" in md and "3.00 MiB" in md and "figures/state_bytes_vs_frame.png" in md
    assert (run / "figures" / "state_bytes_vs_frame.png").is_file()
    assert "| attention reach | 5 frames (lstm_attn[mode=chunk]), 7 frames (lstm_attn[mode=frame]) |" in md
    _assert_self_contained((run / "report.html").read_text())


def test_old_csv_without_new_columns_has_no_gap_figure_or_references(run_dir):
    assert not (run_dir / "figures" / "psnr_vs_gap.png").exists()
    page = (run_dir / "report.html").read_text()
    assert "Retrieval vs gap" not in page and "(ref)" not in page
    assert "Δ psnr_revisit vs none (95% CI)" in (run_dir / "leaderboard.md").read_text()


# --------------------------------------------------------------------------------------------
#                                   Seed intervals and the paired comparison
# --------------------------------------------------------------------------------------------


def _frame(blocks=("none",), seeds=(0, 1, 2)) -> pd.DataFrame:
    return pd.DataFrame([r for b in blocks for s in seeds for r in _metric_rows("p", b, s, 10.0, {})])


def test_ci95_is_a_t_interval_over_seeds(tmp_path):
    df = _frame()
    df["value"] = df["seed"].map({0: 10.0, 1: 12.0, 2: 17.0})  # every row of a seed has its seed's value
    table, unit = report.leaderboard(df)
    row = table.set_index("block").loc["none"]
    half = 4.302652729911275 * np.sqrt(13.0) / np.sqrt(3)  # t_{0.975,2} x sd([10, 12, 17]) / sqrt(3)
    assert unit == "seed" and row["psnr_revisit"] == pytest.approx(13.0)
    assert row["psnr_revisit_ci95"] == pytest.approx(half) and row["psnr_revisit_stderr"] == pytest.approx(
        np.sqrt(13.0 / 3)
    )
    run = tmp_path / "s" / "r"
    run.mkdir(parents=True)
    df.to_csv(run / "metrics.csv", index=False)
    report.write(run)
    md = (run / "leaderboard.md").read_text()
    assert f"13.000 ± {half:.3f}" in md and "95% t-interval over 3 seeds" in md


def test_one_seed_interval_is_over_clips(tmp_path):
    run = make_run(tmp_path, "one", "r", seeds=(0,))
    report.write(run)
    df = pd.read_csv(run / "metrics.csv")
    sub = df[(df["block"] == "none") & (df["metric"] == "psnr") & (df["tag"] == "revisit")]
    clips = sub.groupby("clip")["value"].mean()
    board = pd.read_csv(run / "leaderboard.csv").set_index("block")
    expect = student_t.ppf(0.975, CLIPS - 1) * clips.std(ddof=1) / np.sqrt(CLIPS)
    assert board.loc["none", "psnr_revisit_ci95"] == pytest.approx(expect)
    assert (
        "95% t-interval over 3 clips of one seed: the interval is over evaluation clips"
        in (run / "leaderboard.md").read_text()
    )


def test_paired_diff_of_a_block_shifted_by_one_is_exact():
    base = _frame()
    df = pd.concat([base, base.assign(block="plus", block_name="plus", value=base["value"] + 1.0)])
    table = report.with_comparison(report.leaderboard(df)[0], df, "none").set_index("block")
    for col in ("psnr_revisit", "psnr_all"):
        assert table.loc["plus", f"{col}_diff"] == pytest.approx(1.0)
        assert table.loc["plus", f"{col}_diff_lo"] == pytest.approx(1.0)
        assert table.loc["plus", f"{col}_diff_hi"] == pytest.approx(1.0)
        assert table.loc["plus", f"{col}_diff_sig"] and not table.loc["none", f"{col}_diff_sig"]
    assert table.loc["plus", "baseline"] == "none" and pd.isna(table.loc["none", "baseline"])
    assert "fvd_all_diff" not in table  # set metrics have no per-clip pairs


def test_paired_diff_of_zero_mean_noise_is_not_significant():
    base = _frame()
    e = np.random.default_rng(3).normal(0, 1, (3, CLIPS))
    e -= e.mean()  # one offset per (seed, clip), zero mean: the true difference is 0
    noisy = base.assign(block="noisy", block_name="noisy", value=base["value"] + e[base["seed"], base["clip"]])
    df = pd.concat([base, noisy])
    row = report.with_comparison(report.leaderboard(df)[0], df, "none").set_index("block").loc["noisy"]
    assert row["psnr_all_diff"] == pytest.approx(0.0, abs=1e-9)
    assert row["psnr_all_diff_lo"] < 0 < row["psnr_all_diff_hi"] and not row["psnr_all_diff_sig"]
    again = report.with_comparison(report.leaderboard(df)[0], df, "none").set_index("block").loc["noisy"]
    assert again["psnr_all_diff_lo"] == row["psnr_all_diff_lo"]  # fixed bootstrap seed: deterministic


def test_one_seed_block_is_paired_with_every_baseline_seed():
    base = _frame()
    one = base[base["seed"] == 0].assign(block="one", block_name="one")
    one["value"] += 1.0
    df = pd.concat([base, one])
    row = report.with_comparison(report.leaderboard(df)[0], df, "none").set_index("block").loc["one"]
    assert row["psnr_all_diff"] == pytest.approx(1.0 - 0.5)  # baseline seeds 0, 1, 2 are 0.5 apart


def test_baseline_resolution(tmp_path):
    df = _frame(("none", "full_attn"), seeds=(0,))
    assert report.resolve_baseline(df, None) == "none"
    assert report.resolve_baseline(df, "full_attn") == "full_attn"
    assert report.resolve_baseline(_frame(("a", "b"), seeds=(0,)), None) is None
    run = make_run(tmp_path, "explicit", "r")
    (run / "suite.resolved.yaml").write_text(
        "name: explicit\nleaderboard: {sort_by: psnr_revisit, baseline: full_attn}\n"
    )
    loaded = report.load_run(run)
    assert loaded.baseline == "full_attn" and loaded.table.set_index("block").loc["none", "psnr_revisit_diff"] < 0
    assert "Δ psnr_revisit vs full_attn (95% CI)" in report.markdown(loaded)
    absent = report.load_run(make_run(tmp_path, "absent", "r", cells={"a": {}, "b": {}}))
    assert absent.baseline is None and "_diff" not in "".join(absent.table.columns)
    assert "No paired comparison: `leaderboard.baseline` is not set" in report.markdown(absent)
    assert "Δ" not in report.run_table(absent).header[-1]
    missing = report.load_run(run, baseline="mamba2")
    assert "No paired comparison: the baseline `mamba2` is not in this run." in report.markdown(missing)


def test_sweep_points_pair_within_their_variant():
    info = pd.DataFrame(
        {
            "block_name": ["none", "none", "lstm_attn", "lstm_attn"],
            "variant": ["window=2", np.nan, "window=2", "window=3"],
        },
        index=["none[window=2]", "none", "lstm_attn[window=2]", "lstm_attn[window=3]"],
    )
    assert report.pair_with_baseline(info, "none") == {
        "lstm_attn[window=2]": "none[window=2]",  # same variant
        "lstm_attn[window=3]": "none",  # the baseline has no window=3 point: its unvaried row
    }


def test_gap_bins_are_integers_or_about_ten_bins():
    few = pd.Series([1, 2, 2, 5, 16.0])
    assert report.gap_bins(few).tolist() == few.tolist()
    many = pd.Series(np.arange(1, 101, dtype=float))
    centres = report.gap_bins(many)
    assert 8 <= centres.nunique() <= 10 and centres.is_monotonic_increasing
    assert centres.iloc[0] == pytest.approx((1 + 10.9) / 2) and centres.iloc[-1] == pytest.approx((90.1 + 100) / 2)
    tied = pd.Series([1.0] * 90 + list(range(2, 40)))  # quantiles collapse: equal-width bins instead
    assert 8 <= report.gap_bins(tied).nunique() <= 10


# --------------------------------------------------------------------------------------------
#                                   The newer metrics.csv: gap, references, tagged samples
# --------------------------------------------------------------------------------------------

NEW_CELLS = {"none": {}, "lstm_attn": {}, "copy_last": {"reference": True}, "recall_oracle": {"reference": True}}


@pytest.fixture(scope="module")
def new_run(tmp_path_factory) -> Path:
    run = make_run(
        tmp_path_factory.mktemp("new"), "eps", "20260101-0000-ccccccc", cells=NEW_CELLS, seeds=(0, 1, 2), new=True
    )
    report.write(run)
    return run


def test_gap_figure_is_drawn_and_embedded(new_run):
    assert (new_run / "figures" / "psnr_vs_gap.png").is_file() and (new_run / "figures" / "psnr_vs_gap.pdf").is_file()
    page = (new_run / "report.html").read_text()
    _assert_self_contained(page)
    assert page.index("Leaderboard") < page.index("Retrieval vs gap") < page.index("Metric vs horizon")
    assert page.count("data:image/png;base64,") == 5  # gap, overall curve, curves by tag, bars, strip
    assert "figures/psnr_vs_gap.png" in (new_run / "report.md").read_text()


def test_reference_rows_are_marked_and_sorted_with_the_others(new_run):
    md = (new_run / "leaderboard.md").read_text()
    assert "| copy_last (ref) |" in md and "| recall_oracle (ref) |" in md and "| lstm_attn |" in md
    assert "a learned block below it has learned nothing useful" in md
    board = pd.read_csv(new_run / "leaderboard.csv").set_index("block")
    assert list(board.index) == ["recall_oracle", "lstm_attn", "none", "copy_last"]  # by psnr_revisit
    assert board.loc["copy_last", "psnr_revisit_ci95"] == 0.0  # deterministic: the same on every seed
    assert board.loc["lstm_attn", "psnr_revisit_diff"] == pytest.approx(2.0)
    assert board["reference"].tolist() == [True, False, False, True]
    assert "| +2.000 [2.000, 2.000] * |" in md and "`*` = the interval excludes zero" in md


def test_npz_tags_drive_the_strip_and_gif(new_run):
    """The fixture's sample files tag every frame ``revisit``; recomputing from places would not."""
    places = np.load(new_run / "samples" / "none-s0.npz")["places"][0].tolist()
    assert tag_frames(places, CONTEXT, 5)[0] == "in_window"  # what the old computation would draw
    image = np.array(Image.open(new_run / "figures" / "samples.png").convert("RGB"))
    strip, key = image[: -2 * KEY_H].reshape(-1, 3), image[-2 * KEY_H :].reshape(-1, 3)  # (2x upscaled)
    colours = {tag: (strip == report.TAG_COLORS[tag]).all(axis=1).sum() for tag in TAGS}
    assert all((key == report.TAG_COLORS[tag]).all(axis=1).sum() >= 4 * 64 for tag in TAGS)  # the colour key
    ring = 4 * ((SIZE + 4) ** 2 - SIZE**2)  # pixels of one tile's border in the 2x upscaled strip
    assert colours["revisit"] == HORIZON * ring and colours["in_window"] == 0
    assert colours["novel"] < ring  # (grey text antialiasing only, not a border)
    gif = Image.open(new_run / "figures" / "samples.gif")
    border = np.array(gif.convert("RGB").getpixel((1, 15)))
    assert np.abs(border - report.TAG_COLORS["revisit"]).max() <= 8  # recomputed, frame 0 is in_window


def test_combined_report_embeds_the_gap_figure(new_run, tmp_path):
    out = tmp_path / "combined"
    report.write_combined([new_run], out)
    page = (out / "report.html").read_text()
    assert "Retrieval vs gap" in page and "(ref)" in page
    assert "Δ psnr_revisit vs none (95% CI)" in (out / "leaderboard.md").read_text()


# --------------------------------------------------------------------------------------------
#                                   Several suites
# --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_suites(run_dir):
    """alpha = the run above (its own leaderboard.csv written by ``report.write``), beta = another suite
    with the same block names and every psnr 100 higher."""
    beta = make_run(run_dir.parents[1], "beta", "20260101-0000-bbbbbbb", 100.0)
    out = run_dir.parents[1] / "combined"
    report.write_combined([run_dir, beta], out)
    return [run_dir, beta], out


def test_combined_keeps_suites_apart(two_suites):
    (alpha, beta), out = two_suites
    board = pd.read_csv(out / "leaderboard.csv")
    assert list(board.columns[:3]) == ["suite", "run", "block"]
    assert sorted(zip(board["suite"], board["block"])) == [
        ("alpha", "full_attn"), ("alpha", "none"), ("beta", "full_attn"), ("beta", "none"),
    ]  # fmt: skip
    assert not (beta / "leaderboard.csv").exists() and not (beta / "figures").exists()  # run folder untouched
    own = {"alpha": pd.read_csv(alpha / "leaderboard.csv"), "beta": report.load_run(beta).table}
    for suite, table in own.items():  # every value equals that suite's own leaderboard
        rows = board[board["suite"] == suite].drop(columns=["suite", "run"]).reset_index(drop=True)
        pd.testing.assert_frame_equal(rows[table.columns], table.reset_index(drop=True), check_dtype=False)
    gap = board.set_index(["suite", "block"])["psnr_revisit"]
    assert gap["beta", "none"] - gap["alpha", "none"] == pytest.approx(100.0)


def test_combined_report_has_a_section_per_suite(two_suites):
    _, out = two_suites
    page = (out / "report.html").read_text()
    _assert_self_contained(page)
    assert "Suite alpha (20260101-0000-aaaaaaa)" in page and "Suite beta (20260101-0000-bbbbbbb)" in page
    assert page.count("data:image/gif;base64,") == 2
    md = (out / "leaderboard.md").read_text()
    assert "| suite | block |" in md and "| beta | none |" in md
    for link in re.findall(r"!\[[^]]*\]\(([^)]+)\)", (out / "report.md").read_text()):
        assert (out / link).is_file(), link


# --------------------------------------------------------------------------------------------
#                                   Finding runs; the command line
# --------------------------------------------------------------------------------------------


def test_suite_folder_and_yaml_resolve_to_newest_finished_run(tmp_path):
    results = tmp_path / "results"
    make_run(results, "gamma", "20260101-0000-aaaaaaa")
    newest = make_run(results, "gamma", "20260102-0000-bbbbbbb")
    (results / "gamma" / "20260103-0000-ccccccc").mkdir()  # still running: no metrics.csv yet
    assert report.resolve_run_dir(results / "gamma", results) == newest
    assert report.resolve_run_dir(newest, results) == newest
    (tmp_path / "_base.yaml").write_text("name: gamma\nversion: 1\n")
    (tmp_path / "abl.yaml").write_text("include: _base.yaml\nblocks: [none]\n")
    assert report.suite_name(tmp_path / "abl.yaml") == "gamma"
    assert report.resolve_run_dir(tmp_path / "abl.yaml", results) == newest
    res = cli.invoke(app, ["report", str(results / "gamma")])
    assert res.exit_code == 0, res.output
    assert (newest / "report.html").is_file() and not (results / "gamma" / "20260101-0000-aaaaaaa/report.html").exists()


def test_paths_without_runs_are_clear_errors(tmp_path):
    res = cli.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "no metrics.csv" in res.output and "results/<suite>/" in res.output
    (tmp_path / "s.yaml").write_text("name: delta\n")
    res = cli.invoke(app, ["report", str(tmp_path / "s.yaml"), "--results", str(tmp_path)])
    assert res.exit_code == 2 and "suite 'delta' has no results" in res.output
    (tmp_path / "n.yaml").write_text("version: 1\n")
    with pytest.raises(report.ReportError, match="no `name:`"):
        report.suite_name(tmp_path / "n.yaml")


def test_cli_combined_report_imports_no_torch(tmp_path):
    """The whole `rad-bench report` path (YAML lookup, combined report) in a fresh interpreter."""
    results = tmp_path / "results"
    make_run(results, "alpha", "20260101-0000-aaaaaaa", seeds=(0,))
    make_run(results, "beta", "20260101-0000-bbbbbbb", seeds=(0,))
    for s in ("alpha", "beta"):
        (tmp_path / f"{s}.yaml").write_text(f"name: {s}\n")
    code = (
        "import sys\n"
        "import rad_bench.report\n"
        "assert 'torch' not in sys.modules, 'importing rad_bench.report imported torch'\n"
        "from typer.testing import CliRunner\n"
        "from rad_bench.cli import app\n"
        f"args = ['report', 'alpha.yaml', 'beta.yaml', '--results', {str(results)!r}]\n"
        "res = CliRunner().invoke(app, args)\n"
        "assert res.exit_code == 0, res.output\n"
        "assert 'torch' not in sys.modules, 'rad-bench report imported torch'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert (results / "combined" / "report.html").is_file()  # default --out: RESULTS/combined
    assert set(pd.read_csv(results / "combined" / "leaderboard.csv")["suite"]) == {"alpha", "beta"}


# --------------------------------------------------------------------------------------------
#                                   Capacity (a numeric data sweep)
# --------------------------------------------------------------------------------------------


def test_parse_variant_reads_the_swept_values():
    from rad_bench.results import parse_variant

    assert parse_variant("slots=4") == {"slots": 4}
    assert parse_variant("mode=chunk,window=4,lr=0.001") == {"mode": "chunk", "window": 4, "lr": 0.001}
    assert parse_variant("x=[1, 2],k=16") == {"x": "[1, 2]", "k": 16}  # a value may hold commas
    assert parse_variant("") == {} and parse_variant(np.nan) == {} and parse_variant(None) == {}


def test_sweep_point_reads_the_rows_own_columns_before_the_label():
    from rad_bench.results import sweep_point

    row = pd.Series({"variant": "slots=4,state_budget=4096", "data.slots": 4, "model.state_budget": 4096.0})
    assert sweep_point(row, ["data.slots", "model.state_budget"]) == {"slots": 4, "state_budget": 4096}
    ref = pd.Series({"variant": "slots=4", "data.slots": 4, "model.state_budget": np.nan})  # a reference row
    assert sweep_point(ref, ["data.slots", "model.state_budget"]) == {"slots": 4}
    assert sweep_point(pd.Series({"variant": "slots=8"}), ["data.slots"]) == {"slots": 8}  # a run written before


def _capacity_run(root: Path, sweep: str) -> Path:
    """A run swept over data.slots (2 and 8): none and full_attn, and a reference row per point."""
    cells = {
        f"{b}[slots={k}]": {"variant": f"slots={k}", "reference": b == "copy_last", "protocol": "x; chance=0.125"}
        for b in ("none", "full_attn", "copy_last")
        for k in (2, 8)
    }
    run = make_run(root, "cap", "20260101-0000-ccccccc", cells=cells, seeds=(0, 1, 2), new=True)
    (run / "suite.resolved.yaml").write_text(f"name: cap\nsweep: {sweep}\nleaderboard: {{sort_by: psnr_revisit}}\n")
    return run


def test_capacity_points_and_chance(tmp_path):
    from rad_bench.report.figures import capacity_points, chance_levels

    run = report.load_run(_capacity_run(tmp_path, "{data.slots: [2, 8]}"))
    assert run.capacity == "slots"
    points = capacity_points(run.table, "slots", "psnr_revisit").set_index("block")
    assert set(points["series"]) == {"none", "full_attn", "copy_last"}
    assert points.loc["full_attn[slots=8]", "x"] == 8 and points.loc["copy_last[slots=2]", "reference"]
    row = run.table.set_index("block").loc["none[slots=2]"]
    assert points.loc["none[slots=2]", "y"] == row["psnr_revisit"]
    assert points.loc["none[slots=2]", "err"] == row["psnr_revisit_ci95"] > 0  # ± 95% interval over seeds
    assert chance_levels(run.df, "psnr") == [0.125] and chance_levels(run.df.assign(protocol="p"), "psnr") == []


def test_capacity_section_only_with_a_numeric_data_sweep(tmp_path):
    report.write(_capacity_run(tmp_path / "a", "{data.slots: [2, 8]}"))
    md = (tmp_path / "a" / "cap" / "20260101-0000-ccccccc" / "report.md").read_text()
    assert "## Capacity" in md and "capacity_vs_slots.png" in md and "capacity_vs_state.png" in md
    assert "chance (0.125" in md
    for sweep in ("{data.delay_fill: [blank, values]}", "{model.window: [2, 8]}"):  # not a numeric data sweep
        run = _capacity_run(tmp_path / sweep[1:5], sweep)
        report.write(run)
        assert "Capacity" not in (run / "report.md").read_text() and not list((run / "figures").glob("capacity_*"))


# --------------------------------------------------------------------------------------------
#                                   Damaged inputs
# --------------------------------------------------------------------------------------------

DAMAGED_CSV = {
    "empty": "",
    "header only": "block,seed,clip,frame,tag,metric,value\n",
    "no columns": "\n\n",
    "a column missing": "block,seed,clip,frame,tag,metric\nnone,0,0,4,revisit,psnr\n",
    "non-numeric value": "block,seed,clip,frame,tag,metric,value\nnone,0,0,4,revisit,psnr,fast\n",
    "non-numeric seed": "block,seed,clip,frame,tag,metric,value\nnone,zero,0,4,revisit,psnr,1.0\n",
    "ragged": "block,seed,clip,frame,tag,metric,value\nnone,0,0,4,revisit,psnr,1.0,7,8\n",
    "not UTF-8": b"block,seed,clip,frame,tag,metric,value\nnone,0,0,4,\xff\xfe,psnr,1.0\n",
}


@pytest.mark.parametrize("damage", list(DAMAGED_CSV))
def test_report_on_a_damaged_metrics_csv_is_one_clear_error(tmp_path, damage):
    run = make_run(tmp_path, "alpha", "20260101-0000-aaaaaaa")
    body = DAMAGED_CSV[damage]
    (run / "metrics.csv").write_bytes(body if isinstance(body, bytes) else body.encode())
    res = cli.invoke(app, ["report", str(run)])
    assert res.exit_code == 2 and "Traceback" not in res.output, res.output
    assert re.search(r"error: .*metrics\.csv: .*rebuild it with `rad-bench run SUITE --run-dir RUN`", res.output, re.S)


@pytest.mark.parametrize("damage", ["samples cut short", "state.csv non-numeric", "efficiency.csv empty"])
def test_report_leaves_out_a_damaged_optional_input_and_says_so(tmp_path, damage):
    """A damaged sample file, state.csv or efficiency.csv costs its figure or table, not the report."""
    run = make_run(tmp_path, "alpha", "20260101-0000-aaaaaaa", new=True)
    if damage == "samples cut short":
        f = run / "samples" / "none-s0.npz"
        f.write_bytes(f.read_bytes()[:200])
    elif damage == "state.csv non-numeric":
        (run / "state.csv").write_text("block,seed,frame,state_bytes\nnone,0,0,lots\n")
    else:
        (run / "efficiency.csv").write_text("")
    res = cli.invoke(app, ["report", str(run)])
    assert res.exit_code == 0 and "Traceback" not in res.output, res.output
    assert "left out" in res.output and (run / "report.html").is_file()


def test_combined_report_refuses_a_folder_that_holds_no_report(tmp_path):
    a = make_run(tmp_path / "results", "alpha", "20260101-0000-aaaaaaa")
    b = make_run(tmp_path / "results", "beta", "20260101-0000-bbbbbbb")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "leaderboard.csv").write_text("precious\n")
    res = cli.invoke(app, ["report", str(a), str(b), "--out", str(mine)])
    assert res.exit_code == 2 and "holds no earlier report" in res.output and "Traceback" not in res.output
    assert (mine / "leaderboard.csv").read_text() == "precious\n"
    again = tmp_path / "combined"
    for _ in range(2):  # a new folder, then the same folder again: an earlier report is replaced
        res = cli.invoke(app, ["report", str(a), str(b), "--out", str(again)])
        assert res.exit_code == 0, res.output


def test_learning_curves_draw_a_blocks_sweep_points_in_their_own_line_styles(tmp_path, monkeypatch):
    from rad_bench.report import learning

    drawn = {}
    monkeypatch.setattr(learning, "_save", lambda fig, stem: drawn.setdefault("fig", fig) and stem)
    labels = ("mamba2[slots=2]", "mamba2[slots=4]", "none[slots=2]")
    rows = [
        {"block": b, "seed": s, "step": st, "value": 0.1 * st / 100 + s, "metric": "recall_acc"}
        for b in labels
        for s in (0, 1)
        for st in (0, 100)
    ]
    learning.plot_learning_curves(pd.DataFrame(rows), tmp_path / "curves")
    lines = {ln.get_label(): ln for ln in drawn["fig"].axes[0].get_lines()}
    a, b = lines["mamba2[slots=2]"], lines["mamba2[slots=4]"]
    assert a.get_color() == b.get_color() and a.get_linestyle() != b.get_linestyle()


def test_figures_are_cropped_as_a_tight_savefig_would(tmp_path):
    """``_save`` measures the crop once for both formats; the PNG is the pixels of ``bbox_inches="tight"``,
    legend outside the axes included, and the PDF has a page."""
    import io

    import matplotlib.pyplot as plt

    from rad_bench.report.figures import DPI, _save
    from rad_bench.report.style import legend_outside

    def figure():
        fig, axes = plt.subplots(1, 2, figsize=(7, 3))
        for i, ax in enumerate(axes):
            ax.plot(np.arange(20), np.sin(np.arange(20) / (i + 2)), label=f"block {i}")
            ax.set_title(f"panel {i}")
        legend_outside(axes[-1])
        return fig

    fig = figure()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, bbox_inches="tight")
    plt.close(fig)
    png = _save(figure(), tmp_path / "fig")
    assert np.array_equal(np.asarray(Image.open(png)), np.asarray(Image.open(buf)))
    assert (tmp_path / "fig.pdf").read_bytes().startswith(b"%PDF")
