r"""Distances between two sets of features: Frechet distance (FID's formula) and KID.

Both compare the distribution of features phi(x) of generated images with that of real
images. The papers use Inception-v3 pool3 features (2048-d); the course uses a judge's
penultimate features (``DigitJudge.features``, 128-d), and the same functions accept any
(N, D) features. Numbers are only comparable for the same feature network, the same real
set and the same sample sizes: always report n, and a real-vs-real baseline.

Frechet distance (Heusel et al. 2017). Fit a Gaussian to each set (mean mu, covariance
Sigma, unbiased with N - 1) and take the 2-Wasserstein distance between the Gaussians:

    d^2 = ||mu_a - mu_b||^2 + tr( Sigma_a + Sigma_b - 2 (Sigma_a Sigma_b)^{1/2} ).

The trace of the matrix square root is computed by the eigenvalue method: with
S = Sigma_a^{1/2} (symmetric PSD square root, from ``eigh``), the matrix S Sigma_b S is
symmetric PSD and similar to Sigma_a Sigma_b, so

    tr (Sigma_a Sigma_b)^{1/2} = sum_i sqrt( lambda_i(S Sigma_b S) ),

with tiny negative eigenvalues (round-off) clipped to 0. This avoids ``scipy.linalg.sqrtm``
on a non-symmetric product and its imaginary parts; the tests check both agree with
pytorch-fid's ``calculate_frechet_distance``. The estimate is biased upwards at small N
(it is not 0 for two samples of one distribution): compare only equal sample sizes. With
N <= D the covariance estimate has rank at most N - 1 < D and the bias dominates (two
samples of N = 100 from one 128-d Gaussian: about 83); ``frechet_distance`` and
``feature_moments`` then warn with the numbers.

Kernel Inception Distance (Binkowski et al. 2018): the squared maximum mean discrepancy with
the cubic polynomial kernel k(x, y) = (x . y / D + 1)^3, estimated without bias. For two
sets X, Y of m samples each,

    MMD^2_u = 1/(m(m-1)) sum_{i != j} [k(x_i, x_j) + k(y_i, y_j)] - 2/m^2 sum_{i, j} k(x_i, y_j).

It is averaged over ``subsets`` random subsets of size m = min(subset_size, N_a, N_b) drawn
without replacement (the reference code used 100 subsets of 1000); the mean and standard
deviation over subsets are returned. Being unbiased, it is about 0 (and can be slightly
negative) for two samples of one distribution, whatever m.
"""

from __future__ import annotations

import warnings

import numpy as np

from ganlab.errors import GanLabWarning
from ganlab.validation import check_features, check_same_dim


def warn_if_rank_deficient(sizes: dict[str, int], dim: int) -> None:
    """Warn when a feature set has n <= D samples: its covariance (rank <= n - 1 < D) is
    rank-deficient and the Frechet distance is biased upwards, far from 0 for one distribution.
    ``sizes``: name -> n for each set; ``dim``: D."""
    small = {name: n for name, n in sizes.items() if n <= dim}
    if small:
        got = ", ".join(f"{name} has n = {n}" for name, n in small.items())
        warnings.warn(
            f"{got} samples of D = {dim} features: with n <= D the covariance estimate is "
            f"rank-deficient (rank <= n - 1) and the Frechet distance is strongly biased "
            f"upwards (two samples of one distribution score far above 0). Use n of several "
            f"times D (e.g. n >= {10 * dim}), equal n for every compared set, and report a "
            "real-vs-real baseline of the same n.",
            GanLabWarning,
            stacklevel=3,
        )


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix, via its eigendecomposition."""
    w, v = np.linalg.eigh((sigma + sigma.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def frechet_distance_from_moments(mu_a, sigma_a, mu_b, sigma_b) -> float:
    """d^2 between N(mu_a, sigma_a) and N(mu_b, sigma_b) (the formula in the docstring)."""
    mean, covariance = _terms(mu_a, sigma_a, mu_b, sigma_b)
    return float(max(mean + covariance, 0.0))  # >= 0 in exact arithmetic; clip round-off


def _terms(mu_a, sigma_a, mu_b, sigma_b) -> tuple[float, float]:
    """d^2's two parts: ||mu_a - mu_b||^2 and tr(Sigma_a + Sigma_b - 2 (Sigma_a Sigma_b)^1/2)."""
    mu_a, mu_b = np.atleast_1d(mu_a).astype(np.float64), np.atleast_1d(mu_b).astype(np.float64)
    sigma_a = np.atleast_2d(sigma_a).astype(np.float64)
    sigma_b = np.atleast_2d(sigma_b).astype(np.float64)
    d = mu_a.shape[0]
    for name, m in (("mu_b", mu_b), ("sigma_a", sigma_a), ("sigma_b", sigma_b)):
        want = (d,) if name.startswith("mu") else (d, d)
        if m.shape != want:
            raise ValueError(f"{name} must have shape {want} to match mu_a, got {m.shape}")
    s = _psd_sqrt(sigma_a)
    eig = np.linalg.eigvalsh(s @ sigma_b @ s)
    tr_covmean = np.sqrt(np.clip(eig, 0, None)).sum()
    diff = mu_a - mu_b
    return float(diff @ diff), float(np.trace(sigma_a) + np.trace(sigma_b) - 2 * tr_covmean)


def _moments(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return x.mean(0), np.cov(x, rowvar=False).reshape(x.shape[1], x.shape[1])


def feature_moments(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` of features ``(N, D)``, float64.

    Warns when N <= D (a rank-deficient covariance, see ``warn_if_rank_deficient``).
    """
    x = check_features(feats, "features")
    warn_if_rank_deficient({"features": x.shape[0]}, x.shape[1])
    return _moments(x)


def frechet_distance(feats_a, feats_b) -> float:
    """Frechet distance between features ``(N_a, D)`` and ``(N_b, D)`` (torch or numpy).

    Sample sizes: N_a and N_b (at least 2 each; use N >> D for a stable covariance: with
    N <= D it warns, naming N and D).
    """
    a = check_features(feats_a, "feats_a")
    b = check_features(feats_b, "feats_b")
    check_same_dim(a, b, "feats_a and feats_b")
    warn_if_rank_deficient({"feats_a": a.shape[0], "feats_b": b.shape[0]}, a.shape[1])
    mu_a, sigma_a = _moments(a)
    mu_b, sigma_b = _moments(b)
    return frechet_distance_from_moments(mu_a, sigma_a, mu_b, sigma_b)


def frechet_distance_terms(feats_a, feats_b) -> dict[str, float]:
    """The Frechet distance and its two parts: ``mean``, ||mu_a - mu_b||^2 (the sets' average
    features differ), and ``covariance``, the trace term (their spread or correlations
    differ: a generator that varies too little shows here). ``total`` = mean + covariance =
    ``frechet_distance(feats_a, feats_b)``. Both parts are >= 0 in exact arithmetic (the
    second is the squared W2 distance between zero-mean Gaussians); round-off can make the
    second a hair negative, so the total is clipped at 0 as in ``frechet_distance``."""
    a = check_features(feats_a, "feats_a")
    b = check_features(feats_b, "feats_b")
    check_same_dim(a, b, "feats_a and feats_b")
    warn_if_rank_deficient({"feats_a": a.shape[0], "feats_b": b.shape[0]}, a.shape[1])
    mean, covariance = _terms(*_moments(a), *_moments(b))
    return {"total": max(mean + covariance, 0.0), "mean": mean, "covariance": covariance}


def polynomial_kernel(x: np.ndarray, y: np.ndarray, degree: int = 3, coef0: float = 1.0):
    """k(x, y) = (x . y / D + coef0)^degree for all pairs: ``(N_x, N_y)``."""
    return (x @ y.T / x.shape[1] + coef0) ** degree


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """The unbiased MMD^2 of two equal-size samples with the cubic polynomial kernel."""
    m = x.shape[0]
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    sum_xx = k_xx.sum() - np.trace(k_xx)  # leave out i == j
    sum_yy = k_yy.sum() - np.trace(k_yy)
    return float((sum_xx + sum_yy) / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    feats_a, feats_b, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID ``(mean, std)`` over ``subsets`` random subsets (see the module docstring).

    Sample sizes: m = min(subset_size, N_a, N_b) per subset, ``subsets`` subsets; ``seed``
    fixes which subsets are drawn. When m = N_a = N_b every subset is the full sets, so the
    std is 0: it then says nothing about the sampling error (use a smaller subset_size).
    """
    a = check_features(feats_a, "feats_a")
    b = check_features(feats_b, "feats_b")
    check_same_dim(a, b, "feats_a and feats_b")
    if not isinstance(subsets, int | np.integer) or subsets < 1:
        raise ValueError(f"subsets must be a positive integer, got {subsets!r}")
    if not isinstance(subset_size, int | np.integer) or subset_size < 2:
        raise ValueError(f"subset_size must be an integer >= 2, got {subset_size!r}")
    m = min(subset_size, a.shape[0], b.shape[0])
    if m == a.shape[0] == b.shape[0]:
        # every "subset" is the whole of both sets, and MMD^2_u ignores order: one is enough
        return mmd2_unbiased(a, b), 0.0
    rng = np.random.default_rng(seed)
    values = np.empty(subsets)
    for s in range(subsets):
        x = a[rng.choice(a.shape[0], m, replace=False)]
        y = b[rng.choice(b.shape[0], m, replace=False)]
        values[s] = mmd2_unbiased(x, y)
    return float(values.mean()), float(values.std())
