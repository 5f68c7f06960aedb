r"""Noise injection with a learned per-channel scale (Karras et al., *StyleGAN*, 2019, Sec. 2).

After every conv of StyleGAN's synthesis network, a single-channel image of per-pixel Gaussian
noise is added to all the feature maps, each channel with its own learned strength B:

.. math:: x'_{b,c,h,w} = x_{b,c,h,w} + B_c\, n_{b,h,w}, \qquad n_{b,h,w} \sim \mathcal N(0, 1)

One noise value per sample and pixel, SHARED by the channels; the scale :math:`B` (shape (C,))
starts at 0, so a fresh network ignores the noise and learns how much stochastic detail each
channel wants. Shapes: x (B, C, H, W), noise (B, 1, H, W) or (1, 1, H, W) (broadcast to the
batch) -> (B, C, H, W).

``noise=`` passes a FIXED noise image (the official ``randomize_noise=False`` reads a stored
per-layer noise variable; the chapter's "noise on/off and per layer" demos pass zeros or a
fixed draw); without it, fresh noise is drawn, from ``generator`` if one is given (it must
live on x's device).
"""

from __future__ import annotations

import torch
from torch import nn


class NoiseInjection(nn.Module):
    """x (B, C, H, W) + scale (C,) * noise (B, 1, H, W); ``scale`` is learned, initialised to 0."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        if channels < 1:
            raise ValueError(f"channels must be >= 1, got {channels}")
        self.channels = channels
        self.weight = nn.Parameter(torch.zeros(channels))  # B in the paper, per channel, init 0

    def forward(
        self,
        x: torch.Tensor,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(
                f"x must be (B, {self.channels}, H, W), got {getattr(x, 'shape', type(x))}"
            )
        b, _, h, w = x.shape
        if noise is None:
            noise = torch.randn(
                (b, 1, h, w), generator=generator, device=x.device, dtype=x.dtype
            )  # per pixel, shared over the channels
        elif (
            not isinstance(noise, torch.Tensor)
            or noise.dim() != 4
            or noise.shape[1:] != (1, h, w)
            or noise.shape[0] not in (1, b)
        ):
            raise ValueError(
                f"noise must be ({b}, 1, {h}, {w}) or (1, 1, {h}, {w}) for x of shape "
                f"{tuple(x.shape)}, got {getattr(noise, 'shape', type(noise))}"
            )
        return x + self.weight.view(1, -1, 1, 1) * noise.to(x.dtype)

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
