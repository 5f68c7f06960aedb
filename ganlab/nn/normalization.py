r"""PixelNorm (PGGAN, StyleGAN) and AdaIN with its style projection (StyleGAN, StarGAN v2).

**PixelNorm** (Karras et al., *PGGAN*, 2018, Sec. 4.2, "pixelwise feature vector
normalisation"): every pixel's feature vector is scaled to unit root-mean-square over the
channels,

.. math:: b_{x,y} = \frac{a_{x,y}}{\sqrt{\frac1C \sum_{j=1}^{C} (a^j_{x,y})^2 + \epsilon}},
   \qquad \epsilon = 10^{-8}.

PGGAN's generator applies it after every conv (and to z); StyleGAN to z before the mapping
network. Shapes: (B, C) or (B, C, H, W), normalised over dim 1; same shape out. No parameters.

**AdaIN** (Huang & Belongie 2017; StyleGAN Sec. 2 and StarGAN v2's decoder): instance-normalise
each channel over its pixels, then apply a per-sample, per-channel scale and bias computed from
a style vector by a learned affine projection A,

.. math::
    \mathrm{IN}(x)_c = \frac{x_c - \mu_c(x)}{\sqrt{\sigma_c^2(x) + \epsilon}}, \qquad
    [y_s, y_b] = A(w), \qquad
    \mathrm{AdaIN}(x, w)_c = (1 + y_{s,c})\, \mathrm{IN}(x)_c + y_{b,c}

(:math:`\mu_c, \sigma^2_c`: mean and biased variance over H, W). The paper writes
:math:`y_s \mathrm{IN}(x) + y_b`; both official codes add the 1 so that a zero style is the
identity on IN(x). Shapes: x (B, C, H, W), style (B, style_dim) -> A -> (B, 2C), whose FIRST C
columns are :math:`y_s` (StarGAN v2's gamma) and NEXT C :math:`y_b` (beta) -> out (B, C, H, W).

==================  ======================================  ================================
what                StyleGAN v1 (``style_mod``)             StarGAN v2 (``AdaIN``)
==================  ======================================  ================================
A                   equalised dense, gain 1, lr_mul 1,      ``nn.Linear`` (PyTorch default
                    bias 0: ``projection="equalized"``      init): ``projection="linear"``
IN epsilon          1e-8, computed in fp32                  1e-5 (``nn.InstanceNorm2d``,
                                                            affine=False)
preset              :meth:`AdaIN.stylegan`                  :meth:`AdaIN.stargan_v2`
==================  ======================================  ================================

In StyleGAN the IN sits inside each layer's epilogue: conv -> noise -> bias -> LReLU -> AdaIN;
that wiring belongs to the chapter's model file.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nn.equalized import EqualizedLinear

PROJECTIONS = ("equalized", "linear")


def pixel_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(B, C, ...) -> same shape: x / sqrt(mean over dim 1 of x^2 + eps)."""
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(
            f"pixel_norm expects (B, C) or (B, C, H, W), got {getattr(x, 'shape', type(x))}"
        )
    return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


class PixelNorm(nn.Module):
    """Module form of :func:`pixel_norm` (no parameters)."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return pixel_norm(x, self.eps)

    def extra_repr(self) -> str:
        return f"eps={self.eps:g}"


def instance_norm(x: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """(B, C, H, W) -> same: (x - mean_HW) / sqrt(biased var_HW + eps), computed in float32.

    The statistics are taken in float32 and the result cast back to x's dtype, as StyleGAN's
    ``instance_norm`` does, so a bf16 activation does not lose its small variances.
    """
    if not isinstance(x, torch.Tensor) or x.dim() != 4:
        raise ValueError(f"instance_norm expects (B, C, H, W), got {getattr(x, 'shape', type(x))}")
    # the formula above, as PyTorch's fused kernel (about 2.5x faster forward and backward on
    # CPU than the written-out mean / var / rsqrt; tests compare the two)
    return F.instance_norm(x.float(), eps=eps).to(x.dtype)


class AdaIN(nn.Module):
    """Adaptive instance normalisation with its style projection A.

    forward(x (B, channels, H, W), style (B, style_dim)) -> (B, channels, H, W):
    ``(1 + y_s) * IN(x) + y_b`` with ``[y_s, y_b] = A(style)`` (first / next ``channels``
    columns). ``projection``: "equalized" (StyleGAN: :class:`EqualizedLinear`, gain 1) or
    "linear" (StarGAN v2: ``nn.Linear``). ``eps``: the IN epsilon (1e-8 StyleGAN, 1e-5
    StarGAN v2).
    """

    def __init__(
        self, channels: int, style_dim: int, *, projection: str = "equalized", eps: float = 1e-8
    ) -> None:
        super().__init__()
        if channels < 1 or style_dim < 1:
            raise ValueError(f"channels and style_dim must be >= 1, got {channels}, {style_dim}")
        if projection not in PROJECTIONS:
            raise ValueError(f"projection must be one of {PROJECTIONS}, got {projection!r}")
        self.channels, self.style_dim = channels, style_dim
        self.projection, self.eps = projection, eps
        if projection == "equalized":
            self.affine = EqualizedLinear(style_dim, 2 * channels, gain=1.0)  # A: w -> [y_s, y_b]
        else:
            self.affine = nn.Linear(style_dim, 2 * channels)  # StarGAN v2's fc: s -> [gamma, beta]

    @classmethod
    def stylegan(cls, channels: int, w_dim: int = 512) -> AdaIN:
        """StyleGAN v1's ``style_mod`` after ``instance_norm``: equalised A (gain 1), eps 1e-8."""
        return cls(channels, w_dim, projection="equalized", eps=1e-8)

    @classmethod
    def stargan_v2(cls, channels: int, style_dim: int = 64) -> AdaIN:
        """StarGAN v2's ``AdaIN``: ``nn.Linear`` fc, ``nn.InstanceNorm2d`` eps 1e-5."""
        return cls(channels, style_dim, projection="linear", eps=1e-5)

    def styles(self, style: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """style (B, style_dim) -> y_s (B, C), y_b (B, C): the first and next C columns of A."""
        if not isinstance(style, torch.Tensor) or style.dim() != 2:
            raise ValueError(
                f"style must be (B, {self.style_dim}), got {getattr(style, 'shape', type(style))}"
            )
        if style.shape[1] != self.style_dim:
            raise ValueError(f"style must be (B, {self.style_dim}), got {tuple(style.shape)}")
        y = self.affine(style)  # (B, 2C)
        return y[:, : self.channels], y[:, self.channels :]

    def forward(self, x: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"x must be (B, {self.channels}, H, W), got {getattr(x, 'shape', type(x))}"
            )
        if isinstance(style, torch.Tensor) and style.dim() == 2 and len(style) != len(x):
            raise ValueError(
                f"x and style must have the same batch size, got {len(x)} and {len(style)}"
            )
        y_s, y_b = self.styles(style)  # (B, C) each
        normed = instance_norm(x, self.eps)  # (B, C, H, W)
        return normed * (1 + y_s[:, :, None, None]) + y_b[:, :, None, None]

    def extra_repr(self) -> str:
        return (
            f"channels={self.channels}, style_dim={self.style_dim}, "
            f"projection={self.projection!r}, eps={self.eps:g}"
        )
