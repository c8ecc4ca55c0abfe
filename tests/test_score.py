"""Scoring: a failing metric is recorded, never fatal; reference rows from the context alone.

pytest tests/test_score.py
"""

import math

import torch

from rad_bench.metrics import MetricSpec
from rad_bench.reference import copy_last, recall_oracle
from rad_bench.registry import METRICS
from rad_bench.score import frame_tags, score_frames, score_sets
from rad_bench.tags import Reach


def _raise(*_):
    raise ValueError("boom")


class _Failing(MetricSpec):
    def load(self):
        return _raise


def _register_failing(name: str, scope: str) -> None:
    METRICS._ensure()
    METRICS._entries[name] = _Failing(name, True, scope, "unused:unused", "always fails")


def test_failing_metric_becomes_nan_rows_with_the_error(monkeypatch):
    monkeypatch.setattr(METRICS, "_entries", dict(METRICS._entries))
    _register_failing("broken", "per_frame")
    _register_failing("broken_set", "set")
    gen, truth = torch.zeros(2, 3, 3, 8, 8), torch.zeros(2, 5, 3, 8, 8)
    tags = frame_tags(torch.tensor([[0, 1, 1, 0, 9]] * 2), 2, Reach(2))
    rows = score_frames(gen, truth[:, 2:], tags, metrics=["psnr", "broken"])
    broken = [r for r in rows if r["metric"] == "broken"]
    assert len(broken) == 6 and all(math.isnan(r["value"]) for r in broken)
    assert all(r["error"] == "ValueError: boom" for r in broken)
    assert all(r["error"] == "" and r["value"] == 60.0 for r in rows if r["metric"] == "psnr")  # the rest scored
    sets = score_sets(gen, truth, metrics=["broken_set"], bucket=None)
    assert len(sets) == 1 and math.isnan(sets[0]["value"]) and sets[0]["error"] == "ValueError: boom"


def test_rows_carry_tag_and_gap():
    places = torch.tensor([[3, 4, 5, 4, 3, 8]])  # context 3 frames, reach 3
    tags = frame_tags(places, 3, Reach(3))
    assert tags == [[("in_window", 2), ("revisit", 4), ("novel", None)]]
    rows = score_frames(torch.zeros(1, 3, 3, 8, 8), torch.zeros(1, 3, 3, 8, 8), tags, metrics=["psnr"])
    assert [(r["tag"], r["gap"]) for r in rows] == [("in_window", 2), ("revisit", 4), ("novel", None)]


def test_reference_rows():
    frames = torch.arange(6.0).view(1, 6, 1, 1, 1).expand(1, 6, 1, 2, 2)  # frame i is filled with i
    places = torch.tensor([[10, 11, 12, 11, 10, 99]])  # context 3: generated frames show 11, 10, 99
    assert copy_last(frames, places, 3, 3)[0, :, 0, 0, 0].tolist() == [2.0, 2.0, 2.0]
    # latest context frame of each place; the novel place (99) falls back to the last context frame
    assert recall_oracle(frames, places, 3, 3)[0, :, 0, 0, 0].tolist() == [1.0, 0.0, 2.0]


def test_reference_rows_are_the_names_the_schema_reserves():
    from rad_bench.reference import REFERENCES
    from rad_bench.results import REFERENCE_NAMES

    assert tuple(REFERENCES) == REFERENCE_NAMES  # config refuses a block labelled with one of these
