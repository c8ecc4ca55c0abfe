"""Revisit tagging on hand-made trajectories, and PSNR/SSIM against known values.

pytest tests/test_tags_metrics.py
"""

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from rad_bench.metrics import get_metric
from rad_bench.metrics.frame import psnr, ssim
from rad_bench.registry import METRICS
from rad_bench.tags import Reach, tag_frames, tag_frames_with_gap


def test_tags_hand_made():
    # places:      0  1  2  3  4  5 | 6  7  8  9     (context = 6 frames)
    places = [10, 11, 12, 13, 14, 15, 15, 12, 99, 10]
    assert tag_frames(places, context=6, reach=3) == ["in_window", "revisit", "novel", "revisit"]
    with_gap = tag_frames_with_gap(places, 6, Reach(3))
    assert with_gap == [("in_window", 1), ("revisit", 5), ("novel", None), ("revisit", 9)]


def test_tags_window_boundary():
    # a place shown exactly `reach` frames ago is out of reach (attention sees t-reach+1 .. t)
    assert tag_frames([1, 2, 3, 1], context=3, reach=3) == ["revisit"]
    assert tag_frames([1, 2, 3, 1], context=3, reach=4) == ["in_window"]


def test_tags_reversed_retrace():
    # explore A B C D E F G H (context), then retrace H G F E D C B A; reach 3 (depth 2, window 2)
    explore = list(range(8))
    places = explore + explore[::-1]
    # frame 8 shows H (context frame 7, gap 1), frame 9 shows G (frame 6, gap 3), ... gap 2k + 1
    expected = [("in_window", 1)] + [("revisit", 2 * k + 1) for k in range(1, 8)]
    assert tag_frames_with_gap(places, 8, Reach(3)) == expected


def test_tags_generated_frames_never_count_as_shown():
    # the previous (generated) frame shows the same place, but the only ground truth of it is
    # context frame 0, beyond the reach: still a revisit, not in_window
    places = [5, 1, 2, 3, 4, 5, 5, 5]
    assert tag_frames_with_gap(places, 5, Reach(3)) == [("revisit", 5), ("revisit", 6), ("revisit", 7)]
    # a place that appears only in generated frames stays novel however often it repeats
    assert tag_frames([1, 2, 7, 7, 7], context=2, reach=5) == ["novel", "novel", "novel"]


def test_tags_loop():
    # a loop of 4 places walked twice in the context, then once more; reach 3
    places = [0, 1, 2, 3, 0, 1, 2, 3] + [0, 1, 2, 3]
    # each place was last shown 4 frames before its generated repeat: out of reach 3, in reach 5
    assert tag_frames_with_gap(places, 8, Reach(3)) == [("revisit", 4), ("revisit", 4), ("revisit", 4), ("revisit", 4)]
    assert tag_frames(places, context=8, reach=5) == ["in_window"] * 4


def test_tags_turning_in_place():
    # a cell seen facing four headings (place = cell * 4 + heading): turning in place after the
    # context shows the headings again; the earliest one is beyond reach 3, the later ones within
    places = [40, 41, 42, 43, 7, 43, 42, 41, 40]
    assert tag_frames_with_gap(places, 5, Reach(3)) == [
        ("in_window", 2), ("revisit", 4), ("revisit", 6), ("revisit", 8)
    ]  # fmt: skip
    # a place shown both long ago and recently is in_window, with the gap to the recent showing
    assert tag_frames_with_gap([9, 1, 2, 3, 9, 9], 5, Reach(2)) == [("in_window", 1)]


def test_tags_chunk_attention():
    # chunk attention with chunks of 4 frames at absolute positions: frames 0-3 | 4-7 | 8-11.
    # context = 6 frames (0..5); frames 6, 7 share a chunk with context frames 4, 5 only.
    places = [0, 1, 2, 3, 4, 5, 5, 1, 4, 0]
    chunk = Reach(frames=99, chunk=4)
    assert tag_frames_with_gap(places, 6, chunk) == [
        ("in_window", 1), ("revisit", 6), ("revisit", 4), ("revisit", 9)
    ]  # fmt: skip
    # the same places under a sliding reach of 5 (e.g. depth 2, window 3): frame 8 sees frame 4
    assert tag_frames(places, context=6, reach=5) == ["in_window", "revisit", "in_window", "revisit"]


def test_psnr_known_values():
    a = torch.zeros(1, 3, 8, 8)
    b = torch.full((1, 3, 8, 8), 0.2)  # 0.1 in [0, 1] units -> mse 0.01 -> 20 dB
    assert psnr(a, b).item() == pytest.approx(20.0, abs=1e-4)
    assert psnr(a, a).item() == 60.0  # capped: identical frames would be +inf


def test_ssim_known_values_and_torchmetrics():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(3, 3, 32, 32, generator=g) * 2 - 1
    assert torch.allclose(ssim(a, a), torch.ones(3))
    b = (a + 0.3 * torch.randn(a.shape, generator=g)).clamp(-1, 1)
    ours = ssim(a, b)
    # torchmetrics averages over the reflect-padded full image; crop its map to the valid region
    _, full = tm_ssim((b + 1) / 2, (a + 1) / 2, data_range=1.0, return_full_image=True, reduction="none")
    ref = full[..., 5:-5, 5:-5].mean(dim=(1, 2, 3))
    torch.testing.assert_close(ours, ref.float(), atol=1e-5, rtol=0)
    assert (ours < 1).all()


def test_metric_registry_declares_direction():
    assert get_metric("psnr").higher_is_better and get_metric("ssim").higher_is_better
    for name in METRICS.names():
        assert get_metric(name).scope in ("per_frame", "set")


def test_fvd_rows_per_batch_and_bucket():
    pytest.importorskip("scipy")
    from rad_bench.score import score_sets

    g = torch.Generator().manual_seed(0)
    episodes = torch.rand(4, 12, 3, 16, 16, generator=g) * 2 - 1
    generated = (episodes[:, 3:] + 0.3 * torch.randn(4, 9, 3, 16, 16, generator=g)).clamp(-1, 1)
    rows = score_sets(generated, episodes, metrics=["psnr", "fvd"], bucket=9, batches=2)
    assert [(r["clip"], r["frame"]) for r in rows] == [(0, -1), (0, 0), (1, -1), (1, 0)]
    assert all(r["metric"] == "fvd" and r["value"] > 0 for r in rows)
    assert "videos=2 frames=12 context_gt=3" in rows[0]["protocol"]
    assert "videos=2 frames=9 context_gt=0" in rows[1]["protocol"]
