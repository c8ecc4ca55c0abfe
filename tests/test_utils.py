"""Measurement helpers: peak memory of a block of code, quiet third-party imports.

pytest tests/test_utils.py
"""

import math
import sys
import types

import torch

from rad_bench import utils


def test_cpu_peak_memory_is_the_code_s_own_peak():
    warm = [torch.randn(1000, 1000) for _ in range(40)]  # ~160 MB allocated and freed before
    del warm
    with utils.peak_memory("cpu") as peak:
        a = torch.ones(2000, 2000)  # 16 MB live at once, twice
        b = a * 2
        del a, b
    assert 24 * 2**20 < peak[0] < 200 * 2**20, peak  # measured, not the earlier 160 MB, not 0
    assert utils.peak_kind("cpu") == "cpu_rss_growth_sampled_5ms"


def test_unmeasurable_peak_is_nan_not_zero(monkeypatch):
    monkeypatch.setattr(utils, "rss_bytes", lambda: None)
    with utils.peak_memory("cpu") as peak:
        pass
    assert math.isnan(peak[0]) and utils.peak_kind("cpu") == "cpu_unmeasured"


def test_import_quietly_drops_only_the_gym_notice(monkeypatch, capsys):
    def fake_import(name):
        print("Gym has been unmaintained since 2022 and does not support NumPy 2.0.", file=sys.stderr)
        print("a warning the user can act on", file=sys.stderr)
        return types.SimpleNamespace(name=name)

    monkeypatch.setattr("importlib.import_module", fake_import)
    assert utils.import_quietly("gym").name == "gym"
    err = capsys.readouterr().err
    assert "unmaintained" not in err and "a warning the user can act on" in err


def test_atomic_writes_respect_the_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        utils.atomic_write_text(tmp_path / "a.csv", "x\n")
    finally:
        os.umask(old)
    assert (tmp_path / "a.csv").stat().st_mode & 0o777 == 0o644 and (tmp_path / "a.csv").read_text() == "x\n"
