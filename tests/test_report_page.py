"""The report page as a reader meets it: what was run (command, overrides, seeds, device), caveats as boxes,
markdown that renders, every image present, intervals that stay honest about their range, tables that group a
metric with its paired Δ and leave out what says nothing, one colour per block in every figure."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pandas as pd
import pytest
import test_report as tr

from rad_bench import report
from rad_bench.report.document import Caveat, Para, Table, to_html, to_markdown
from rad_bench.report.style import BLOCK_COLORS, block_color, line_styles
from rad_bench.report.views import leaderboard_table


def _body_text(page: str) -> str:
    """The page's visible text outside code spans (where markdown emphasis must not show raw)."""
    body = page.split("<body>", 1)[1]
    body = re.sub(r"<code>.*?</code>", "", body, flags=re.S)
    body = re.sub(r'src="[^"]*"', "", body)
    return html.unescape(re.sub(r"<[^>]+>", " ", body))


def _suite_file(tmp_path: Path, seeds: str = "[0, 1, 2]") -> Path:
    f = tmp_path / "alpha.yaml"
    f.write_text(f"name: alpha\nseeds: {seeds}\ntrain: {{steps: 200}}\n")
    return f


def _run_with_command(tmp_path: Path, sets: list[str], seeds=(0,)) -> Path:
    run = tr.make_run(tmp_path, "alpha", "20260101-0000-aaaaaaa", seeds=seeds)
    suite = _suite_file(tmp_path)
    cmd = ["rad-bench", "run", str(suite), *(a for s in sets for a in ("--set", s))]
    (run / "argv.txt").write_text(" ".join(cmd) + "\n")
    (run / "suite.resolved.yaml").write_text(
        "name: alpha\nseeds: [0]\ntrain: {steps: 3}\nleaderboard: {sort_by: psnr_revisit}\n"
    )
    env = {"device": "cpu", "cuda": None, "torch_threads": 2, "cpu_count": 2, "torch": "2.13.0+cpu",
           "python": "3.11.7", "world_size": 1, "git_sha": "abcdef1234567890"}  # fmt: skip
    (run / "env.json").write_text(json.dumps(env))
    return run


def test_header_says_what_was_run_and_boxes_the_caveats(tmp_path):
    run = _run_with_command(tmp_path, ["seeds=[0]", "train.steps=3"])
    report.write(run)
    page, md = (run / "report.html").read_text(), (run / "report.md").read_text()
    text = _body_text(page)
    assert "What was run" in text
    assert "seeds=[0]" in page and "train.steps=3" in page  # the overrides, as typed
    assert "train.steps: 200 in the file, 3 in the run" in text  # resolved vs the suite file
    assert "seeds scored" in text and "the suite names [0]" not in text  # the run resolved [0]: no mismatch there
    assert "cpu, 2 torch thread(s), 2 CPU cores" in text and "abcdef123456" in page
    boxes = re.findall(r'<div class="caveat">(.*?)</div>', page, flags=re.S)
    said = " ".join(boxes)
    assert "Fewer seeds than the suite names" in said and "1 scored of 3" in said
    assert "One seed" in said and "Command-line overrides" in said
    assert "<strong>" in said and "**" not in _body_text(page)  # emphasis renders, never as raw asterisks
    assert "> ⚠ **Fewer seeds than the suite names**" in md  # markdown: a quoted block
    tr._assert_self_contained(page)


def test_every_image_is_embedded_and_only_frames_are_pixelated(tmp_path):
    run = tr.make_run(tmp_path, "alpha", "r")
    report.write(run)
    page = (run / "report.html").read_text()
    imgs = re.findall(r"<img([^>]*)>", page)
    assert imgs and all('src="data:image/' in i and len(i) > 200 for i in imgs)
    frames = [i for i in imgs if 'class="frames"' in i]
    assert len(frames) == 2  # the sample strip and the GIF; plots are scaled smoothly
    assert "img.frames{image-rendering:pixelated}" in page and "img{max-width:100%;image-rendering" not in page


def test_a_full_run_of_the_suite_as_written_has_no_caveat(tmp_path):
    run = tr.make_run(tmp_path, "alpha", "r", seeds=(0, 1))
    suite = tmp_path / "alpha.yaml"
    suite.write_text("name: alpha\nseeds: [0, 1]\n")
    (run / "argv.txt").write_text(f"rad-bench run {suite}\n")
    (run / "suite.resolved.yaml").write_text("name: alpha\nseeds: [0, 1]\nleaderboard: {sort_by: psnr_revisit}\n")
    report.write(run)
    assert 'class="caveat"' not in (run / "report.html").read_text()
    suite.write_text("name: alpha\nseeds: [0, 1, 2]\n")  # edited since: the header says so
    report.write(run)
    page = (run / "report.html").read_text()
    assert "Fewer seeds than the suite names" in page and "seeds: [0, 1, 2] in the file, [0, 1] in the run" in page


def test_inline_markdown_and_caveats_render():
    page = to_html([Para("a **bold** word, `code*x*` and *this*; 3 * 4 * 5"), Caveat("**Careful**: it")], "t")
    assert "<strong>bold</strong>" in page and "<code>code*x*</code>" in page and "<em>this</em>" in page
    assert "3 * 4 * 5" in page
    assert '<div class="caveat"><p><strong>Careful</strong>: it</p></div>' in page
    assert to_markdown([Caveat("**Careful**: it")], Path(".")).startswith("> ⚠ **Careful**: it")


def _board(**cols) -> pd.DataFrame:
    base = {"block": ["ttt", "none"], "train_mode": ["frame", "frame"], "window": [3, 3], "params_total": [10, 12]}
    return pd.DataFrame({**base, **cols})


def test_delta_sits_beside_its_metric_and_silent_columns_go_to_the_note():
    table = _board(
        recall_acc_revisit=[0.9, 0.03], recall_acc_revisit_ci95=[0.1, 0.05],
        recall_acc_all=[0.9, 0.03], recall_acc_all_ci95=[0.01, 0.01],
        recall_acc_revisit_diff=[0.87, float("nan")], recall_acc_revisit_diff_lo=[0.8, float("nan")],
        recall_acc_revisit_diff_hi=[0.95, float("nan")], recall_acc_revisit_diff_sig=[True, False],
    )  # fmt: skip
    t = leaderboard_table(table, ["recall_acc"], delta=("recall_acc_revisit", "none"))
    i = t.header.index("recall_acc_revisit ↑")
    assert t.header[i + 1].startswith("Δ recall_acc_revisit vs none")
    assert "train_mode" not in t.header and "window" not in t.header and "params" in t.header
    assert "Every row: train_mode = frame, window = 3." in t.note
    assert "recall_acc_in_window" not in " ".join(t.header) and "recall_acc_in_window" in t.note
    # an accuracy's t-interval below 0 is marked and explained; one inside [0, 1] is not
    assert t.rows[0][i] == "0.900 ± 0.100" and t.rows[1][i] == "0.030 ± 0.050 †" and "† the 95% t-interval" in t.note
    assert t.note in t.markdown() and t.note in _body_text(to_html([t], "x"))


def test_one_palette_for_every_figure():
    assert block_color("mamba2") == block_color("mamba2[slots=4]") == BLOCK_COLORS["mamba2"]
    assert block_color("my_block") == block_color("my_block[k=2]")  # unknown blocks: stable, by name
    styles = line_styles(["mamba2[slots=2]", "mamba2[slots=4]", "copy_last"], references={"copy_last"})
    assert styles["mamba2[slots=2]"]["color"] == styles["mamba2[slots=4]"]["color"]
    assert styles["mamba2[slots=2]"]["marker"] != styles["mamba2[slots=4]"]["marker"]
    ref = styles["copy_last"]
    assert (
        ref["ls"] == "--" and ref["label"] == "copy_last (ref)" and ref["zorder"] < styles["mamba2[slots=2]"]["zorder"]
    )


def test_facts_table_has_no_empty_header():
    page = to_html([Table(["", ""], [["suite", "`alpha`"]], css="facts")], "t")
    assert '<table class="facts"><tbody>' in page and "<thead>" not in page


@pytest.mark.parametrize("helper", [False, True])
def test_argv_records_each_start_but_not_helpers(tmp_path, helper):
    """argv.txt: one line per start of the run (the first, then each resume); a --workers helper writes none."""
    from rad_bench.config import load_suite
    from rad_bench.rundir import start_run_dir

    suite = load_suite(Path("suites/smoke.yaml"))
    run = start_run_dir(suite, tmp_path / "run", False, False, tmp_path, ["rad-bench", "run", "a b.yaml"], "cpu")
    again = start_run_dir(suite, run, True, False, tmp_path, ["rad-bench", "run", "x", "--resume"], "cpu",
                          record=not helper)  # fmt: skip
    lines = (again / "argv.txt").read_text().splitlines()
    assert lines[0] == "rad-bench run 'a b.yaml'"  # quoted: it pastes back into a shell
    assert lines[1:] == ([] if helper else ["rad-bench run x --resume"])
