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
Its gradient is the same blur with the flipped kernel (a zero-padded, size-keeping conv is
adjoint to the conv with the flipped kernel; [1, 2, 1] is its own flip). :class:`BlurFunction`
says so to autograd, which then never needs the gradient of a *grouped* conv. That matters
for R1, a gradient of a gradient through D's blurs: PyTorch's double backward of a depthwise
conv runs one conv per channel, which on an H200 made StyleGAN's 64 px step 7.7x slower
(eager; 9.7x compiled) than the blur written as its own adjoint (``scripts/gpu_check.py``).

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


def depthwise_blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each channel of x (B, C, H, W) convolved with ``kernel`` (k, k), zero-padded, same size."""
    c, k = x.shape[1], kernel.shape[0]
    weight = kernel.to(x.dtype).expand(c, 1, k, k)  # one copy per channel
    return F.conv2d(x, weight, padding=k // 2, groups=c)


class BlurFunction(torch.autograd.Function):
    """y = blur(x, K); dL/dx = blur(dL/dy, flip(K)), itself a BlurFunction (so differentiable
    again, as R1's double backward needs). K is a constant: it gets no gradient."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(kernel)
        return depthwise_blur(x, kernel)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (kernel,) = ctx.saved_tensors
        return BlurFunction.apply(grad, kernel.flip(0, 1)), None


class Blur(nn.Module):
    """Depthwise blur with the normalised outer product of ``f``: (B, C, H, W) -> same shape."""

    def __init__(self, f: Sequence[float] = (1, 2, 1), normalize: bool = True) -> None:
        super().__init__()
        self.f, self.normalize = tuple(float(v) for v in f), normalize
        self.register_buffer("kernel", blur_kernel(f, normalize), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            raise ValueError(f"Blur expects (B, C, H, W), got {getattr(x, 'shape', type(x))}")
        return BlurFunction.apply(x, self.kernel)  # depthwise, size kept

    def extra_repr(self) -> str:
        return f"f={list(self.f)}, normalize={self.normalize}"
