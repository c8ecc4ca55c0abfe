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
from typer.testing import CliRunner

from rad_bench import report
from rad_bench.cli import app
from rad_bench.tags import TAGS, tag_frames

CONTEXT, HORIZON, CLIPS, SIZE = 4, 8, 3, 8
cli = CliRunner()


def _metric_rows(suite: str, block: str, seed: int, offset: float, cell: dict) -> list[dict]:
    common = {
        "suite": suite, "suite_version": 1, "run": "r", "block": block, "block_name": block.split("[")[0],
        "seed": seed, "window": 3, "reach": 5, "impl": "ref", "params_block": 10, "params_total": 100,
        "limited": False, "git_sha": "abc1234def", "protocol": "p", **cell,
    }  # fmt: skip
    rows = [
        {**common, "clip": c, "frame": f, "tag": TAGS[(f + c) % 3], "metric": "psnr",
         "value": offset + 0.5 * seed + 0.1 * c - 0.2 * f}
        for c in range(CLIPS) for f in range(HORIZON)
    ]  # fmt: skip
    return rows + [{**common, "clip": 0, "frame": -1, "tag": "all", "metric": "fvd", "value": 100 - offset + seed}]


def _write_samples(run: Path, block: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    places = np.tile(np.array([0, 1, 2, 3, 0, 5, 6, 1, 2, 9, 0, 11]), (CLIPS, 1))
    (run / "samples").mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        run / "samples" / f"{block}-s{seed}.npz",
        truth=rng.integers(0, 255, (CLIPS, CONTEXT + HORIZON, SIZE, SIZE, 3), dtype=np.uint8),
        generated=rng.integers(0, 255, (CLIPS, HORIZON, SIZE, SIZE, 3), dtype=np.uint8),
        places=places,
        context=np.array(CONTEXT),
    )


def make_run(root: Path, suite: str, run: str, offset: float = 0.0, cells: dict | None = None, seeds=(0, 1)) -> Path:
    """A run folder as the runner leaves it: metrics.csv, efficiency.csv, samples/, suite.resolved.yaml.
    ``cells`` maps block label -> extra/overridden columns (e.g. the upcoming train_mode)."""
    cells = cells or {"none": {}, "full_attn": {}}
    run_dir = root / suite / run
    rows, eff = [], []
    for block, cell in cells.items():
        base = offset + (20 if block.startswith("full") else 10)
        for seed in seeds:
            rows += _metric_rows(suite, block, seed, base, cell)
            eff.append({"block": block, "seed": seed, "rollout_frames_per_s": 50.0 + seed, "train_step_s": 0.1,
                        "state_bytes_first": 1024, "state_bytes_final": 4096, "params_total": 100,
                        "state_growth": "linear"})  # fmt: skip
            _write_samples(run_dir, block, seed)
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
        page.count("data:image/png;base64,") == 3 and page.count("data:image/gif;base64,") == 1
    )  # curves, bars, strip
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
    assert "attention reach 5 (lstm_attn[mode=chunk]), 7 (lstm_attn[mode=frame])" in md
    _assert_self_contained((run / "report.html").read_text())


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
