r"""Blur after upsampling (StyleGAN Sec. 2, after Zhang 2019, "Making CNNs shift-invariant again").

StyleGAN low-pass filters the feature maps after each nearest-neighbour upsampling (and before
each downsampling in D) with the separable binomial filter f = [1, 2, 1]:

.. math::
    K = \frac{f f^\top}{\sum_{ij} (f f^\top)_{ij}} = \frac1{16}
    \begin{pmatrix} 1 & 2 & 1 \\ 2 & 4 & 2 \\ 1 & 2 & 1 \end{pmatrix}

applied to every channel on its own (a depthwise conv), zero-padded so that the size is kept
(the official ``blur2d``: ``depthwise_conv2d(..., padding='SAME')`` with the normalised
outer product). The weights sum to 1, so a constant map stays constant away from the border;
at the border the zero padding darkens it (a corner keeps 9/16 of a constant).
Shapes: (B, C, H, W) -> (B, C, H, W). The kernel is a fixed, non-persistent buffer (it follows
``.to(device)`` but is not saved in the state dict). Odd-length filters only (size-keeping
padding is then symmetric).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn


def blur_kernel(f: Sequence[float] = (1, 2, 1), normalize: bool = True) -> torch.Tensor:
    """1-D filter f (odd length k) -> its (k, k) outer product, divided by its sum if normalize."""
    f1 = torch.as_tensor(f, dtype=torch.float32)
    if f1.dim() != 1 or len(f1) % 2 == 0:
        raise ValueError(f"the blur filter must be 1-D with an odd length, got {list(f)}")
    k = f1[:, None] * f1[None, :]  # (k, k)
    if normalize:
        total = k.sum()
        if total == 0:
            raise ValueError(f"cannot normalise the filter {list(f)}: its outer product sums to 0")
        k = k / total
    return k


class Blur(nn.Module):
    """Depthwise blur with the normalised outer product of ``f``: (B, C, H, W) -> same shape."""

    def __init__(self, f: Sequence[float] = (1, 2, 1), normalize: bool = True) -> None:
        super().__init__()
        self.f, self.normalize = tuple(float(v) for v in f), normalize
        self.register_buffer("kernel", blur_kernel(f, normalize), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"Blur expects (B, C, H, W), got {getattr(x, 'shape', type(x))}")
        c, k = x.shape[1], self.kernel.shape[0]
        weight = self.kernel.to(x.dtype).expand(c, 1, k, k)  # one copy per channel
        return F.conv2d(x, weight, padding=k // 2, groups=c)  # depthwise, size kept

    def extra_repr(self) -> str:
        return f"f={list(self.f)}, normalize={self.normalize}"
