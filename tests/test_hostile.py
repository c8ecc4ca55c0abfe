"""Hostile input, round two: one test (or a few) per class of fault found by the second round of probes.

1. token suites (``kind: mqar``) go through the same naming, path, limits and error boundary as video ones;
2. every folder of a run, whatever its name, is refused when it is a symlink to elsewhere;
3. limits on the merged suite: alias bombs and deep nesting through ``--set``, ``--workers``, the memory estimate;
4. ``report SUITE.yaml`` checks the suite's name like ``run`` does;
5. completion records cannot be switched off, and a report checks the combined CSV against them;
6. tracebacks left in round one; 7. messages that came late or blamed the wrong field.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from test_bad_input import FIXTURES, HEAD, assert_no_run_folder, assert_refused, cli, run, suite_file

from rad_bench.cli import app
from rad_bench.completion import check_cell

MQAR = """kind: mqar
name: mq
blocks: [none]
ks: [2]
seeds: [0]
steps: 2
batch: 4
eval_size: 4
val_size: 4
seq_len: 8
key_vocab: 4
value_vocab: 4
dim: 16
heads: 2
layers: 1
progress: false
"""
TINY = FIXTURES / "tiny.yaml"
ONE = ["--limit-steps", "1", "--no-progress", "--set", "blocks=[none]", "--set", "metrics=[psnr]"]


def mqar(tmp_path: Path, *args: str, body: str = MQAR):
    tmp_path.mkdir(exist_ok=True)
    p = tmp_path / "mq.yaml"
    p.write_text(body)
    return cli.invoke(app, ["run", str(p), "--results", str(tmp_path / "results"), *args])


def finished_run(tmp_path: Path) -> Path:
    """A finished one-block run folder of the tiny suite."""
    res = cli.invoke(app, ["run", str(TINY), "--run-dir", str(tmp_path / "run"), *ONE])
    assert res.exit_code == 0, res.output
    return tmp_path / "run"


# --------------------------------------------------------------------------------------------
#                         1. Token suites: the same guards as video suites
# --------------------------------------------------------------------------------------------


def test_a_token_suite_runs_into_its_run_folder(tmp_path):
    res = mqar(tmp_path)
    assert res.exit_code == 0, res.output
    (run_dir,) = (tmp_path / "results" / "mq").iterdir()
    assert "kind: mqar" in (run_dir / "suite.resolved.yaml").read_text()
    assert check_cell(run_dir, "none-s0").state == "done" and (run_dir / "metrics.csv").is_file()
    assert "| none |" in res.output and "| none |" in (run_dir / "leaderboard.md").read_text()


def test_a_token_suite_resumes_and_reports_like_a_video_suite(tmp_path):
    assert mqar(tmp_path, "--set", "seeds=[0, 1]").exit_code == 0
    (run_dir,) = (tmp_path / "results" / "mq").iterdir()
    first = pd.read_csv(run_dir / "metrics.csv").drop(columns="train_s")
    (run_dir / "cells" / "none-s1" / "done.json").unlink()  # as if killed before its record
    (run_dir / "cells" / "none-s1" / "metrics.csv").unlink()
    res = mqar(tmp_path, "--set", "seeds=[0, 1]", "--set", "progress=true", "--resume")  # display: not the suite
    assert res.exit_code == 0, res.output
    assert "(1 of 2 cells to run)" in res.output
    again = pd.read_csv(run_dir / "metrics.csv").drop(columns="train_s")  # train_s: wall seconds
    pd.testing.assert_frame_equal(again, first)  # training is seeded: the same rows again
    (run_dir / "leaderboard.md").unlink()
    rep = cli.invoke(app, ["report", str(run_dir)])
    assert rep.exit_code == 0, rep.output
    assert "| none |" in (run_dir / "leaderboard.md").read_text() and (run_dir / "report.html").is_file()
    other = mqar(tmp_path, "--set", "seeds=[0, 1]", "--set", "steps=3", "--run-dir", str(run_dir))
    assert_refused(other, "holds results of a different suite configuration")


def test_a_token_run_is_not_combined_with_video_runs(tmp_path):
    assert mqar(tmp_path).exit_code == 0
    (run_dir,) = (tmp_path / "results" / "mq").iterdir()
    res = cli.invoke(app, ["report", str(run_dir), str(finished_run(tmp_path)), "--out", str(tmp_path / "both")])
    assert_refused(res, r"a token suite.s run \(kind: mqar\)", "writes its own report")


@pytest.mark.parametrize("args, patterns", [
    (["--set", "kind=audio"], ["field 'kind'", "'audio' is not a suite kind", "video, mqar"]),
    (["--set", "kind=[mqar]"], ["field 'kind'", "is not a suite kind"]),
    (["--workers", "2"], ["runs in one process", "drop --workers"]),
])  # fmt: skip
def test_a_token_suite_kind_and_processes_are_checked(tmp_path, args, patterns):
    assert_refused(mqar(tmp_path, *args), *patterns)
    assert not (tmp_path / "results").exists()


def test_validate_reads_either_kind_through_one_loader(tmp_path):
    p = tmp_path / "mq.yaml"
    p.write_text(MQAR)
    res = cli.invoke(app, ["validate", str(p)])
    assert res.exit_code == 0 and "kind: mqar" in res.output and "seq_len: 8" in res.output
    video = cli.invoke(app, ["validate", str(TINY), "--set", "kind=video"])
    assert video.exit_code == 0 and "kind:" not in video.output.split("ok")[0]  # the default kind is not written


@pytest.mark.parametrize("name", ["../../escape", "/tmp/abs-mq", "a/b", ".."])
def test_a_token_suite_name_cannot_put_the_run_elsewhere(tmp_path, name):
    res = mqar(tmp_path / "w", body=MQAR.replace("name: mq", f"name: '{name}'"))
    assert_refused(res, "field 'name'", "becomes a folder name")
    assert not (tmp_path / "escape").exists() and not Path("/tmp/abs-mq").exists()


@pytest.mark.parametrize(
    "item, patterns",
    [
        ("seq_len=100000000000", [r"needs at least [\d,]+ GiB", "batch x seq_len"]),
        ("batch=10000000000", [r"needs at least [\d,]+ GiB", "lower batch x seq_len"]),
        ("key_vocab=100000000000", [r"needs at least [\d,]+ GiB"]),
        ("device=tpu", ["field 'device'", "auto|cpu|cuda"]),
        ("lr=.inf", ["field 'lr'", "finite number"]),
        ("batch=true", ["field 'batch'", "yes/no value", "takes a number"]),
        ("lr=1e30", ["loss is nan", "lower the lr"]),
    ],
    ids=["seq_len", "batch", "key_vocab", "device", "inf", "bool", "diverges"],
)
def test_token_suite_values_are_refused_with_a_message(tmp_path, item, patterns):
    assert_refused(mqar(tmp_path, "--set", item), "mq.yaml", *patterns)


def test_token_suite_results_path_that_is_a_file(tmp_path):
    (tmp_path / "results").write_text("mine\n")
    assert_refused(mqar(tmp_path), "results: is a file, not a folder", "--results")
    assert (tmp_path / "results").read_text() == "mine\n"


# --------------------------------------------------------------------------------------------
#                   2. Every folder of a run: no symlink to elsewhere, whatever its name
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("folder", ["figures", "damaged", "logs", "anything"])
def test_a_symlinked_run_subfolder_is_refused_by_run_and_report(tmp_path, folder):
    run_dir, foreign = finished_run(tmp_path), tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "samples.png").write_text("theirs\n")
    shutil.rmtree(run_dir / folder, ignore_errors=True)
    (run_dir / folder).symlink_to(foreign, target_is_directory=True)
    again = cli.invoke(app, ["run", str(TINY), "--run-dir", str(run_dir), *ONE])
    assert_refused(again, folder, "is a symlink to", "outside", "remove the symlink")
    assert_refused(cli.invoke(app, ["report", str(run_dir)]), folder, "outside")
    assert sorted(p.name for p in foreign.iterdir()) == ["samples.png"]
    assert (foreign / "samples.png").read_text() == "theirs\n"


def test_a_symlink_inside_the_run_folder_is_allowed(tmp_path):
    run_dir = finished_run(tmp_path)
    (run_dir / "latest-figures").symlink_to(run_dir / "figures", target_is_directory=True)
    assert cli.invoke(app, ["report", str(run_dir)]).exit_code == 0


# --------------------------------------------------------------------------------------------
#                       3. Limits on the merged suite (file, includes and --set)
# --------------------------------------------------------------------------------------------

BOMB = "[&a [1,1,1,1,1,1,1,1,1], &b [*a,*a,*a,*a,*a,*a,*a,*a,*a], &c [*b,*b,*b,*b,*b,*b,*b,*b,*b], " + \
    "&d [*c,*c,*c,*c,*c,*c,*c,*c,*c], &e [*d,*d,*d,*d,*d,*d,*d,*d,*d], &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]]"  # fmt: skip


@pytest.mark.parametrize("command", ["validate", "run"])
def test_an_alias_bomb_through_set_is_refused_in_a_short_line(tmp_path, command):
    res = cli.invoke(app, [command, str(TINY), "--set", f"train.x={BOMB}"])
    out = assert_refused(res, "--set 'train.x=", "expands to more than 100,000 values")
    assert len(out) < 600


@pytest.mark.parametrize("where", ["file", "set"])
@pytest.mark.parametrize("depth", [30, 2000])
def test_deep_nesting_is_refused(tmp_path, where, depth):
    value = "[" * depth + "]" * depth
    if where == "file":
        p = suite_file(tmp_path, HEAD + f"blocks: [none]\nx: {value}\n")
        res = cli.invoke(app, ["validate", str(p)])
    else:
        res = cli.invoke(app, ["validate", str(TINY), "--set", f"x={value}"])
    assert_refused(res, "nests deeper than")


def test_workers_beyond_the_cores_are_refused(tmp_path):
    cores = os.cpu_count() or 1
    assert_refused(run(tmp_path, TINY, "--workers", "10000"), "10000 worker processes", f"{cores} cores")
    assert_no_run_folder(tmp_path)


@pytest.mark.parametrize(
    "suite, item, field",
    [
        (TINY, "diffusion.levels=10000000000", "diffusion.levels"),
        (TINY, "data.episodes=1000000000", "data.episodes"),
        (TINY, "data.grid=1000000", "world side"),
        (FIXTURES / "tiny_recall.yaml", "data.max_slots=10000000000", "data.max_slots"),
        (Path(__file__).parents[1] / "suites" / "memory_maze.yaml", "data.episodes=1000000000", "data.episodes"),
    ],
    ids=["levels", "episodes", "world", "max_slots", "recorded_episodes"],
)
def test_the_memory_estimate_counts_what_a_suite_scales(tmp_path, suite, item, field):
    assert_refused(cli.invoke(app, ["validate", str(suite), "--set", item]), r"needs at least [\d,]+ GiB", field)


# --------------------------------------------------------------------------------------------
#                        4. report SUITE.yaml checks the suite's name
# --------------------------------------------------------------------------------------------


def test_report_of_a_suite_file_refuses_a_name_outside_the_results(tmp_path):
    victim = tmp_path / "victim" / "20260101-000000-aaaaaaa"
    victim.mkdir(parents=True)
    (victim / "metrics.csv").write_text("block,seed,clip,frame,tag,metric,value\nnone,0,0,4,revisit,psnr,1\n")
    p = tmp_path / "s.yaml"
    p.write_text("name: ../victim\nblocks: [none]\n")
    res = cli.invoke(app, ["report", str(p), "--results", str(tmp_path / "results")])
    assert_refused(res, "field 'name'", "becomes a folder name")
    assert sorted(x.name for x in victim.iterdir()) == ["metrics.csv"]


# --------------------------------------------------------------------------------------------
#                  5. Completion records cannot be switched off; reports check them
# --------------------------------------------------------------------------------------------


def test_a_cell_without_its_record_is_not_finished(tmp_path):
    run_dir = finished_run(tmp_path)
    (run_dir / "cells" / "none-s0" / "done.json").unlink()  # then its metrics.csv could be edited unseen
    assert check_cell(run_dir, "none-s0").state == "damaged"
    res = cli.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "none-s0 is left out" in res.output and "adopt" in res.output
    assert set(pd.read_csv(run_dir / "metrics.csv")["block"]) == {"copy_last", "recall_oracle"}
    again = cli.invoke(app, ["run", str(TINY), "--run-dir", str(run_dir), *ONE])
    assert again.exit_code == 0, again.output
    assert check_cell(run_dir, "none-s0").state == "done"
    assert list((run_dir / "damaged").glob("none-s0-*/cells/none-s0/metrics.csv"))  # the edited files are kept


def test_adopt_takes_in_a_folder_written_before_records(tmp_path):
    run_dir = finished_run(tmp_path)
    for record in (run_dir / "cells").glob("*/done.json"):
        record.unlink()
    res = cli.invoke(app, ["adopt", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "recorded none-s0" in res.output
    assert all(check_cell(run_dir, c.name).state == "done" for c in (run_dir / "cells").iterdir())


def test_a_report_rebuilds_a_combined_csv_cut_at_a_row_boundary_and_says_so(tmp_path):
    run_dir = finished_run(tmp_path)
    combined = run_dir / "metrics.csv"
    whole = combined.read_text()
    lines = whole.splitlines(keepends=True)
    combined.write_text("".join(lines[: len(lines) // 2]))
    res = cli.invoke(app, ["report", str(run_dir)])
    assert res.exit_code == 0, res.output
    assert "differed from its" in res.output and "kept as metrics.csv.replaced-" in res.output
    assert combined.read_text() == whole
    (kept,) = run_dir.glob("metrics.csv.replaced-*")
    assert kept.read_text() == "".join(lines[: len(lines) // 2])


def test_a_combined_report_refuses_a_run_whose_csv_differs_from_its_cells(tmp_path):
    run_dir = finished_run(tmp_path)
    (run_dir / "metrics.csv").write_text((run_dir / "metrics.csv").read_text().replace(",psnr,", ",psnr,1", 1))
    res = cli.invoke(app, ["report", str(run_dir), "--out", str(tmp_path / "combined")])
    assert_refused(res, "metrics.csv: differs from the finished cells' records", "rebuilds it")


def test_a_record_listing_a_path_outside_its_cell_is_damaged(tmp_path):
    run_dir = finished_run(tmp_path)
    record = run_dir / "cells" / "none-s0" / "done.json"
    rec = json.loads(record.read_text())
    rec["files"]["../../outside.bin"] = {"bytes": 0, "sha256": ""}
    record.write_text(json.dumps(rec))
    check = check_cell(run_dir, "none-s0")
    assert check.state == "damaged" and "not one of the cell's files" in check.why


# --------------------------------------------------------------------------------------------
#                                6. Tracebacks left in round one
# --------------------------------------------------------------------------------------------


def _without_cells(tmp_path: Path) -> Path:
    run_dir = finished_run(tmp_path)
    shutil.rmtree(run_dir / "cells")
    return run_dir


def test_report_on_a_csv_cut_mid_line(tmp_path):
    run_dir = _without_cells(tmp_path)
    text = (run_dir / "metrics.csv").read_text()
    (run_dir / "metrics.csv").write_text(text[: len(text) // 2 + 3])
    assert_refused(cli.invoke(app, ["report", str(run_dir)]), "metrics.csv: is cut short")


def test_report_with_an_unknown_metric_name(tmp_path):
    run_dir = _without_cells(tmp_path)
    (run_dir / "metrics.csv").write_text((run_dir / "metrics.csv").read_text().replace(",psnr,", ",psnrx,"))
    assert_refused(cli.invoke(app, ["report", str(run_dir)]), "line 2", "unknown metric 'psnrx'", "psnr")


def test_report_into_a_folder_it_cannot_write(tmp_path, monkeypatch):
    run_dir = finished_run(tmp_path)

    def refuse(path, text):
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr("rad_bench.report.atomic_write_text", refuse)
    assert_refused(cli.invoke(app, ["report", str(run_dir)]), "Permission denied", "writable")


@pytest.mark.parametrize("path", ["a" * 5000 + ".yaml", "/proc/self/mem"], ids=["too_long", "unreadable"])
def test_a_suite_path_that_cannot_be_read(tmp_path, path):
    assert_refused(cli.invoke(app, ["validate", path]), "cannot be read", "readable suite file")


@pytest.mark.parametrize(
    "item, pattern",
    [("model.mlp_ratio=.inf", "model.mlp_ratio': Input should be a finite number"),
     ("train.lr=.inf", "train.lr': Input should be a finite number"),
     ("train.batch_size=true", "train.batch_size': true is a yes/no value")],
)  # fmt: skip
def test_infinities_and_yes_no_numbers_are_refused_at_load(item, pattern):
    assert_refused(cli.invoke(app, ["validate", str(TINY), "--set", item]), pattern)


def test_a_block_size_refused_only_at_real_sizes_stops_before_training(tmp_path):
    p = suite_file(tmp_path, HEAD + "blocks: [{name: mamba2, kwargs: {d_state: -4}}]\nmetrics: [psnr]\n")
    assert_refused(run(tmp_path, p), r"blocks\[0\]\.kwargs' \(block 'mamba2'\)", "d_state=-4", "at least 1")
    assert not list((tmp_path / "results").rglob("metrics.csv"))


def test_a_non_ascii_results_path_under_an_ascii_locale(tmp_path):
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    cmd = [sys.executable, "-m", "rad_bench", "run", str(TINY), "--results", str(tmp_path / "résultats"), *ONE]
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, errors="replace", timeout=300)
    assert res.returncode in (0, 2), res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    if res.returncode == 2:
        assert "non-ASCII" in res.stderr and "UTF-8 locale" in res.stderr


# --------------------------------------------------------------------------------------------
#                               7. Late or misleading messages
# --------------------------------------------------------------------------------------------


def test_an_unknown_metric_is_blamed_not_the_sort_key():
    res = cli.invoke(app, ["validate", str(TINY), "--set", "metrics=[psnrr]"])
    out = assert_refused(res, r"field 'metrics\[0\]'", "unknown metric 'psnrr'", "psnr")
    assert "sort_by" not in out


def test_a_baseline_typo_is_caught_by_validate():
    res = cli.invoke(app, ["validate", str(TINY), "--set", "leaderboard.baseline=nonee"])
    assert_refused(res, "field 'leaderboard.baseline'", "unknown block 'nonee'", "none")


def test_a_cell_name_too_long_for_its_files_is_caught_by_validate(tmp_path):
    n, f = "1" * 30, "0." + "1" * 16
    sweep = f"{{train.steps: [{n}], train.warmup: [{n}], train.log_every: [{n}], train.checkpoint_every: [{n}], " \
        f"train.lr: [{f}], train.weight_decay: [{f}], train.clean_prob: [{f}], train.ema: [{f}]}}"  # fmt: skip
    res = cli.invoke(app, ["validate", str(TINY), "--set", f"sweep={sweep}"])
    assert_refused(res, "field 'sweep'", r"are \d{3} characters", "within 232")


def test_a_missing_kernel_is_refused_before_the_run_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("RAD_BENCH_IMPL", "kernel")
    assert_refused(run(tmp_path, TINY), "impl=kernel requested but unavailable", "pip install mamba-ssm")
    assert_no_run_folder(tmp_path)


def test_many_plain_seeds_are_refused_without_blaming_aliases(tmp_path):
    p = suite_file(tmp_path, HEAD + "blocks: [none]\nseeds: [" + ", ".join(map(str, range(100_001))) + "]\n")
    assert_refused(cli.invoke(app, ["validate", str(p)]), "more than 100,000 values", "most of them under 'seeds'")
