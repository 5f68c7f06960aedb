r"""Diversity: the mean pairwise distance between samples.

    MPD = 2 / (n (n - 1)) sum_{i < j} ||x_i - x_j||_2

over all pairs of n samples (images are flattened; features work too). A collapsed
generator (every z giving the same image) scores 0. It measures spread only, not realism:
noise scores high. Compare it with the same statistic on real images of the same size n
(for a CGAN, within one class: samples of one digit vs. real digits of that class).
StarGAN v2's and SPADE's diversity scores use LPIPS distances instead of pixel L2; the
``features`` of a judge can stand in for that network.
"""

from __future__ import annotations

import numpy as np
import torch

from ganlab.validation import to_numpy64


def mean_pairwise_distance(x, block: int = 1024) -> float:
    """Mean L2 distance over all n (n - 1) / 2 pairs of rows of ``x`` (n, ...), n >= 2.

    Sample size: n (the number of pairs is n (n - 1) / 2). Exact, computed in float64 in
    blocks of ``block`` rows.
    """
    arr = to_numpy64(x, "x")
    if arr.ndim < 2 or arr.shape[0] < 2:
        raise ValueError(
            f"x must hold n >= 2 samples, shape (n, ...) such as images (n, C, H, W) or "
            f"features (n, D), got shape {arr.shape}"
        )
    flat = torch.from_numpy(np.ascontiguousarray(arr.reshape(arr.shape[0], -1)))
    if not torch.isfinite(flat).all():
        raise ValueError("x contains NaN or inf values")
    n = flat.shape[0]
    sq = (flat * flat).sum(1)
    total = 0.0
    for i0 in range(0, n, block):
        rows = flat[i0 : i0 + block]
        d2 = sq[i0 : i0 + block, None] + sq[None, :] - 2 * rows @ flat.T
        dist = d2.clamp_min(0).sqrt()
        # keep pairs i < j only: column index greater than the row's global index
        upper = torch.arange(n)[None, :] > torch.arange(i0, i0 + len(rows))[:, None]
        total += dist[upper].sum().item()
    return total / (n * (n - 1) / 2)


def participation_ratio(x) -> float:
    r"""How many directions the rows of ``x`` (n, D) actually spread along, n > D:

        PR = (sum_i lambda_i)^2 / sum_i lambda_i^2,   lambda: eigenvalues of cov(x)

    D for an isotropic cloud (every direction used equally), 1 when all the variance lies on
    one line. StyleGAN's chapter reads it on w = f(z): a random deep mapping network folds
    the 64 directions of z onto a handful.
    """
    arr = to_numpy64(x, "x")
    if arr.ndim != 2 or arr.shape[0] <= arr.shape[1]:
        raise ValueError(f"x must be (n, D) with n > D samples, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError("x contains NaN or inf values")
    eig = np.linalg.eigvalsh(np.cov(arr, rowvar=False)).clip(min=0)
    if eig.sum() == 0:
        raise ValueError("x has no spread: every row is the same")
    return float(eig.sum() ** 2 / (eig**2).sum())
