"""Maxout units (Goodfellow et al. 2013), the discriminator's non-linearity in CGAN.

A maxout layer with ``units`` units of ``pieces`` pieces computes ``pieces`` affine maps per
unit and keeps the largest:

    h_i(x) = max_{j=1..k} (x^T W_{.ij} + b_ij)

so each unit learns a convex, piecewise-linear activation function of its own.
"""

from __future__ import annotations

import torch
from torch import nn


class Maxout(nn.Module):
    """``in_features`` -> ``units``, each the max over ``pieces`` linear pieces."""

    def __init__(self, in_features: int, units: int, pieces: int) -> None:
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(in_features, units * pieces)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.linear(x)  # (N, units * pieces)
        return z.view(*z.shape[:-1], self.units, self.pieces).amax(dim=-1)  # (N, units)

    def extra_repr(self) -> str:
        return f"units={self.units}, pieces={self.pieces}"
