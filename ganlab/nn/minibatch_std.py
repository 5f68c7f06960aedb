r"""Minibatch standard deviation (Karras et al., *PGGAN*, 2018, Sec. 3); PGGAN's and StyleGAN's D.

A discriminator that sees one image at a time cannot tell that the generator returns the same
image for every z. PGGAN's last block (at 4x4) appends a feature map that measures the
variety inside small groups of the minibatch:

1. split the N samples into M = N / G groups of G;
2. for each group, every feature and pixel: the standard deviation over the G samples,
   :math:`\sigma = \sqrt{\frac1G \sum_g (x_g - \bar x)^2 + 10^{-8}}` (biased variance);
3. average :math:`\sigma` over the C channels and H*W pixels: one number per group;
4. replicate it over the group's samples and pixels and concatenate it as a new channel.

With ``num_features`` = F > 1 (StyleGAN's generalisation; both papers use F = 1) the channels
are split into F groups of C / F and step 3 averages within each, appending F maps.

Shapes: (N, C, H, W) -> (N, C + F, H, W).

Grouping, as the official ``minibatch_stddev_layer`` (read, reshape ``[G, -1, ...]``):
sample n belongs to group ``n % M``, so a group is the STRIDED set {m, m + M, m + 2M, ...},
not G consecutive samples. The group size is ``min(group_size, N)``; the official code then
requires N to be divisible by it (its comment: "Minibatch must be divisible by (or smaller
than) group_size"); here an indivisible batch raises a ``ValueError`` naming the sizes, rather
than a reshape error. The statistics are computed in float32 and cast back, as the official
code does.
"""

from __future__ import annotations

import torch
from torch import nn


def minibatch_stddev(
    x: torch.Tensor, group_size: int = 4, num_features: int = 1, eps: float = 1e-8
) -> torch.Tensor:
    """(N, C, H, W) -> (N, C + num_features, H, W): append the group-averaged std maps."""
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(
            f"minibatch_stddev expects (N, C, H, W), got {getattr(x, 'shape', type(x))}"
        )
    if group_size < 1 or num_features < 1:
        raise ValueError(
            f"group_size and num_features must be >= 1, got {group_size}, {num_features}"
        )
    n, c, h, w = x.shape
    g = min(group_size, n)
    if n % g:
        raise ValueError(
            f"minibatch_stddev: the batch size {n} must be divisible by the group size "
            f"min({group_size}, {n}) = {g} (as in the official PGGAN/StyleGAN code); use a "
            f"batch that is a multiple of {g}, or group_size dividing {n}"
        )
    if c % num_features:
        raise ValueError(f"channels {c} must be divisible by num_features {num_features}")
    m = n // g
    y = x.float().reshape(g, m, num_features, c // num_features, h, w)  # [G, M, F, C/F, H, W]
    y = y - y.mean(dim=0, keepdim=True)  # centre over each group
    y = (y.pow(2).mean(dim=0) + eps).sqrt()  # [M, F, C/F, H, W]: std over the group
    y = y.mean(dim=(2, 3, 4))  # [M, F]: averaged over channels and pixels
    y = y.to(x.dtype).repeat(g, 1)  # [N, F]: row n = group n % M, as the reshape above
    return torch.cat([x, y[:, :, None, None].expand(n, num_features, h, w)], dim=1)


class MinibatchStdDev(nn.Module):
    """Module form of :func:`minibatch_stddev` (no parameters): (N, C, H, W) -> (N, C+F, H, W)."""

    def __init__(self, group_size: int = 4, num_features: int = 1) -> None:
        super().__init__()
        if group_size < 1 or num_features < 1:
            raise ValueError(
                f"group_size and num_features must be >= 1, got {group_size}, {num_features}"
            )
        self.group_size, self.num_features = group_size, num_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return minibatch_stddev(x, self.group_size, self.num_features)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_features={self.num_features}"
