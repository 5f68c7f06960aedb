r"""Gated Linear Unit (Dauphin et al. 2017), AttnGAN's non-linearity everywhere in G.

The input's channels are split in half, :math:`x = [a, b]`, and the second half gates the
first:

.. math:: \mathrm{GLU}(x) = a \odot \sigma(b)

so (B, 2C, ...) -> (B, C, ...): a layer that should output C channels computes 2C and a GLU
halves them. AttnGAN uses it after the CA's FC, after the first FC and in every upsample and
residual block of the generator (its ``GLU`` module, split on dim 1); the same as
``torch.nn.functional.glu(x, dim=1)``.
"""

from __future__ import annotations

import torch
from torch import nn


def glu(x: torch.Tensor, dim: int = 1) -> torch.Tensor:
    """(..., 2C, ...) -> (..., C, ...): first half * sigmoid(second half) along ``dim``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"glu expects a torch.Tensor, got {type(x).__name__}")
    if x.dim() == 0 or x.shape[dim] % 2:
        raise ValueError(
            f"glu splits dim {dim} in two halves, so its size must be even; got shape "
            f"{tuple(x.shape)}"
        )
    a, b = x.chunk(2, dim=dim)  # a: the values, b: the gates
    return a * torch.sigmoid(b)


class GLU(nn.Module):
    """Module form of :func:`glu` (channels: ``dim=1``), for ``nn.Sequential``."""

    def __init__(self, dim: int = 1) -> None:
        super().__init__()
        self.dim = dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return glu(x, self.dim)  # (B, 2C, ...) -> (B, C, ...)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
