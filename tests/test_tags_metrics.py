"""Revisit tagging on hand-made trajectories, and PSNR/SSIM against known values.

pytest tests/test_tags_metrics.py
"""

import math

import pytest
import torch
from torchmetrics.functional.image import structural_similarity_index_measure as tm_ssim

from rad_bench.metrics import get_metric
from rad_bench.metrics.frame import psnr, ssim
from rad_bench.registry import METRICS
from rad_bench.tags import tag_frames


def test_tags_hand_made():
    # places:      0  1  2  3  4  5 | 6  7  8  9
    places = [10, 11, 12, 13, 14, 15, 15, 12, 99, 10]
    tags = tag_frames(places, start=6, reach=3)
    assert tags == ["in_window", "revisit", "novel", "revisit"]


def test_tags_window_boundary():
    # a place seen exactly `reach` frames ago is out of reach (attention sees t-reach+1 .. t)
    assert tag_frames([1, 2, 3, 1], start=3, reach=3) == ["revisit"]
    assert tag_frames([1, 2, 3, 1], start=3, reach=4) == ["in_window"]


def test_tags_count_generated_frames_as_seen():
    assert tag_frames([1, 2, 5, 5], start=2, reach=2) == ["novel", "in_window"]


def test_psnr_known_values():
    a = torch.zeros(1, 3, 8, 8)
    b = torch.full((1, 3, 8, 8), 0.2)  # 0.1 in [0, 1] units -> mse 0.01 -> 20 dB
    assert psnr(a, b).item() == pytest.approx(20.0, abs=1e-4)
    assert math.isinf(psnr(a, a).item())


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
