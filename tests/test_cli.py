"""The command line: thin commands that parse and delegate.

pytest tests/test_cli.py
"""

from pathlib import Path

from typer.testing import CliRunner

from rad_bench import runner
from rad_bench.cli import app

FIXTURES = Path(__file__).parent / "fixtures" / "suites"
cli = CliRunner()


def test_run_passes_resolved_suite(monkeypatch, tmp_path):
    seen = {}

    def fake_run_suite(suite, **kw):
        seen["suite"], seen["kw"] = suite, kw
        (tmp_path / "metrics.csv").write_text(
            "block,seed,clip,frame,tag,metric,value,limited\n"
            + "".join(f"{b},0,{c},0,revisit,psnr,{v + c},True\n" for b, v in (("none", 9), ("x", 12)) for c in (0, 1))
        )
        return tmp_path

    monkeypatch.setattr(runner, "run_suite", fake_run_suite)
    res = cli.invoke(
        app, ["run", str(FIXTURES / "tiny.yaml"), "--set", "train.steps=9", "--limit-steps", "2", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    assert seen["suite"].train.steps == 9 and seen["kw"]["limit_steps"] == 2
    assert seen["kw"]["progress"] is False
    # the compact terminal table: the sort metric with its interval, the paired Δ, the limited marker
    assert "**Limited run**" in res.output
    assert "| block | psnr revisit ↑ | psnr all ↑ | Δ psnr_revisit vs none |" in res.output
    assert "| x | 12.500 ± 6.353 | 12.500 ± 6.353 | +3.000 [3.000, 3.000] * |" in res.output


def test_run_bad_suite_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nblocks: [mamba]\n")
    res = cli.invoke(app, ["run", str(bad)])
    assert res.exit_code == 2
    assert "unknown block 'mamba'" in res.output and "Did you mean: mamba2" in res.output


def test_validate_prints_resolved():
    res = cli.invoke(app, ["validate", str(FIXTURES / "tiny.yaml"), "--set", "seeds=[1, 2]"])
    assert res.exit_code == 0, res.output
    assert "seeds:\n- 1\n- 2" in res.output


def test_ls():
    res = cli.invoke(app, ["ls", "blocks"])
    assert res.exit_code == 0 and "full_attn" in res.output and "linear" in res.output
    res = cli.invoke(app, ["ls", "metrics"])
    assert "psnr" in res.output and "↑" in res.output
    res = cli.invoke(app, ["ls", "datasets"])
    assert "synthetic" in res.output
    res = cli.invoke(app, ["ls", "blokcs"])
    assert res.exit_code == 2 and "Did you mean: blocks" in res.output


def test_report_needs_a_run_folder(tmp_path):
    res = cli.invoke(app, ["report", str(tmp_path)])
    assert res.exit_code == 2 and "no metrics.csv" in res.output


def test_forced_kernel_without_cuda_names_the_install_command(tmp_path):
    res = cli.invoke(
        app,
        [
            "run",
            str(FIXTURES / "tiny.yaml"),
            "--set",
            "blocks=[mamba2]",
            "--set",
            "impl=kernel",
            "--results",
            str(tmp_path),
            "--no-progress",
        ],
    )
    assert res.exit_code == 2
    assert "pip install mamba-ssm" in res.output


def test_bench_help_names_every_section():
    from rad_bench.bench import ALL_SECTIONS

    text = " ".join(CliRunner().invoke(app, ["bench", "--help"], terminal_width=400).output.split())
    assert all(s in text.split("repeatable:")[1].split("[default")[0] for s in ALL_SECTIONS), text
