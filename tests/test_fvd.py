"""Frechet distance behind FVD: exact on singular covariances, never raising on valid input.

    OMP_NUM_THREADS=1 pytest tests/test_fvd.py

FVD is computed from 16 clips of 400 I3D features, so both covariances have rank <= 15 and their
product is singular; ``scipy.linalg.sqrtm`` of it used to return imaginary round-off large enough
to make the metric raise on about 6% of evaluations. Every test here compares
:func:`frechet_distance` with a number computed another way: eigenvalues of the non-symmetric
product S1 S2 (``np.linalg.eigvals``; also keeping only its N - 1 largest, which removes the
reference's own round-off bias and pins the result to ~1e-10), ``scipy.linalg.sqrtm`` on a
full-rank case, or a closed form. Errors are measured relative to ``||mu1 - mu2||^2 + tr S1 +
tr S2``, the size of the terms that cancel, because for near-identical sets the distance itself is
~0. About 3 s in all, most of it the 200-evaluation stress loop.
"""

import numpy as np
import pytest
from scipy import linalg

from rad_bench.metrics.fvd import FVD_PROTOCOL, frechet_distance, fvd_from_features

N_CLIPS, N_FEATURES = 16, 400


def logit_like(rng: np.random.Generator, n: int = N_CLIPS, dim: int = N_FEATURES) -> np.ndarray:
    """(n, dim) correlated features with per-feature offsets, roughly at the scale of I3D logits."""
    mix = rng.standard_normal((dim, dim)) / np.sqrt(dim)
    return 3.0 * rng.standard_normal((n, dim)) @ mix + rng.standard_normal(dim)


def stats(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.cov(x, rowvar=False)


def scale(mu1, s1, mu2, s2) -> float:
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2))


def eigvals_reference(mu1, s1, mu2, s2, rank: int | None = None) -> float:
    """Trace term from the eigenvalues of the non-symmetric S1 S2 (real, >= 0 in exact arithmetic).

    With ``rank`` only the largest ``rank`` eigenvalues count: S1 S2 has rank <= N - 1, and the
    rest are round-off whose square roots (~1e-8 relative each, hundreds of them) bias the plain
    reference by ~1e-7 of the scale.
    """
    eig = np.sort(np.clip(np.linalg.eigvals(s1 @ s2).real, 0.0, None))[::-1][:rank]
    return scale(mu1, s1, mu2, s2) - 2.0 * np.sqrt(eig).sum()


def sqrtm_reference(mu1, s1, mu2, s2) -> float:
    """Trace term from scipy's matrix square root; trustworthy only when S1 S2 is well conditioned."""
    return scale(mu1, s1, mu2, s2) - 2.0 * np.trace(linalg.sqrtm(s1 @ s2)).real


def assert_matches_eigvals(a: np.ndarray, b: np.ndarray) -> None:
    mu1, s1, mu2, s2 = *stats(a), *stats(b)
    ours, size = frechet_distance(mu1, s1, mu2, s2), scale(mu1, s1, mu2, s2)
    assert abs(ours - eigvals_reference(mu1, s1, mu2, s2)) < 1e-6 * size
    assert abs(ours - eigvals_reference(mu1, s1, mu2, s2, rank=len(a) - 1)) < 1e-10 * size


@pytest.mark.parametrize("seed", range(4))
def test_singular_matches_eigvals_reference(seed):
    rng = np.random.default_rng(seed)
    a, b = logit_like(rng), logit_like(rng)
    assert np.linalg.matrix_rank(np.cov(a, rowvar=False)) == N_CLIPS - 1  # the case that broke sqrtm
    assert_matches_eigvals(a, b)


@pytest.mark.parametrize("seed", range(4))
def test_near_identical_singular_matches_eigvals_reference(seed):
    rng = np.random.default_rng(100 + seed)
    a = logit_like(rng)
    b = a + 1e-5 * rng.standard_normal(a.shape)
    assert_matches_eigvals(a, b)


def test_full_rank_matches_scipy_sqrtm():
    rng = np.random.default_rng(7)
    a, b = logit_like(rng, n=200, dim=8), logit_like(rng, n=200, dim=8) + 0.5
    mu1, s1, mu2, s2 = *stats(a), *stats(b)
    ref = sqrtm_reference(mu1, s1, mu2, s2)
    assert ref > 0 and abs(frechet_distance(mu1, s1, mu2, s2) - ref) < 1e-10 * ref


@pytest.mark.parametrize("n, dim", [(N_CLIPS, N_FEATURES), (200, 8)])
def test_identical_sets_give_zero(n, dim):
    mu, s = stats(logit_like(np.random.default_rng(3), n, dim))
    value = frechet_distance(mu, s, mu, s)
    assert 0.0 <= value < 1e-6 * scale(mu, s, mu, s)


@pytest.mark.parametrize("n, dim", [(N_CLIPS, N_FEATURES), (200, 8)])
def test_symmetric(n, dim):
    rng = np.random.default_rng(4)
    a, b = logit_like(rng, n, dim), logit_like(rng, n, dim)
    ab, ba = fvd_from_features(a, b), fvd_from_features(b, a)
    assert ab > 0 and abs(ab - ba) <= 1e-8 * ab


def test_one_dimensional_closed_form():
    # N(m1, s1^2) vs N(m2, s2^2): (m1 - m2)^2 + (s1 - s2)^2
    rng = np.random.default_rng(5)
    for m1, m2, s1, s2 in zip(rng.normal(size=5), rng.normal(size=5), rng.uniform(0, 3, 5), rng.uniform(0, 3, 5)):
        expected = (m1 - m2) ** 2 + (s1 - s2) ** 2
        assert frechet_distance(m1, s1**2, m2, s2**2) == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_diagonal_closed_form_with_zero_variances():
    # diagonal covariances, some variances exactly 0 (singular): ||mu1 - mu2||^2 + sum (sqrt v1 - sqrt v2)^2
    v1, v2 = np.array([4.0, 1.0, 0.25, 0.0, 0.0, 9.0]), np.array([1.0, 0.0, 1.0, 0.0, 2.0, 9.0])
    mu1, mu2 = np.zeros(6), np.array([1.0, 0.0, 2.0, 0.0, 0.0, -1.0])
    expected = 6.0 + ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert frechet_distance(mu1, np.diag(v1), mu2, np.diag(v2)) == pytest.approx(expected, rel=1e-12)


def test_commuting_low_rank_closed_form():
    # S1 = Q diag(v1) Q^T, S2 = Q diag(v2) Q^T with rank 10 of 60: the diagonal closed form in a random basis
    rng = np.random.default_rng(6)
    q, _ = np.linalg.qr(rng.standard_normal((60, 60)))
    v1, v2 = np.zeros(60), np.zeros(60)
    v1[:10], v2[5:15] = rng.uniform(0.5, 4.0, 10), rng.uniform(0.5, 4.0, 10)
    s1, s2 = (q * v1) @ q.T, (q * v2) @ q.T
    expected = ((np.sqrt(v1) - np.sqrt(v2)) ** 2).sum()
    assert abs(frechet_distance(np.zeros(60), s1, np.zeros(60), s2) - expected) < 1e-10 * expected


def test_zero_covariances_leave_mean_term():
    # every clip identical within each set: both covariances are 0, FVD = ||mu1 - mu2||^2
    a, b = np.ones((N_CLIPS, 5)), np.full((N_CLIPS, 5), 3.0)
    assert fvd_from_features(a, b) == pytest.approx(20.0, rel=1e-12)


def test_perturbed_singular_stress_never_raises():
    # the failure mode: 1e-5 perturbations of 16 x 400 features made ~6% of sqrtm calls raise.
    # The true distance is ~1e-10 of the scale, so anything beyond 1e-6 (or negative) is an error.
    rng = np.random.default_rng(8)
    mix = rng.standard_normal((N_FEATURES, N_FEATURES)) / np.sqrt(N_FEATURES)
    for _ in range(200):
        a = 3.0 * rng.standard_normal((N_CLIPS, N_FEATURES)) @ mix
        mu1, s1, mu2, s2 = *stats(a), *stats(a + 1e-5 * rng.standard_normal(a.shape))
        value = frechet_distance(mu1, s1, mu2, s2)
        assert 0.0 <= value < 1e-6 * scale(mu1, s1, mu2, s2)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_features_raise(bad):
    a, b = logit_like(np.random.default_rng(9), 16, 20), logit_like(np.random.default_rng(10), 16, 20)
    b[3, 7] = bad
    with pytest.raises(ValueError, match="NaN/inf"):
        fvd_from_features(a, b)


def test_shape_mismatch_raises():
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))


def test_protocol_names_trace_method():
    assert FVD_PROTOCOL["trace_sqrt"] == "eigvalsh of sqrt(S1) S2 sqrt(S1)"
