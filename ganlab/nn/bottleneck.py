r"""The bottleneck residual block of Reed et al.'s GAN-INT-CLS code, kept by StackGAN's.

Both papers' official Torch / TensorFlow codes put one such block after the generator's 4x4
and 8x8 stages and after the discriminator's last stride-2 conv (StackGAN's TensorFlow
``generator`` and ``d_encode_image``; its PyTorch port has none)::

    y = act( x + BN(conv3x3(act(BN(conv3x3(act(BN(conv1x1(x))))))) )

    (B, c, H, W) -> 1x1 conv to c/4 -> 3x3 conv at c/4 -> 3x3 conv back to c -> + x -> act

``act`` is ReLU in G and LeakyReLU(0.2) in D. No activation comes before the block: the
stage's BatchNorm output enters it, and the block's activation follows the add. Convs have no
bias (BatchNorm follows each).
"""

from __future__ import annotations

import torch
from torch import nn


class BottleneckResidual(nn.Module):
    """act(x + branch(x)), branch = [1x1 to c/4, BN, act, 3x3, BN, act, 3x3 to c, BN].

    (B, c, H, W) -> (B, c, H, W). Attribute names ``branch`` and ``act``.
    """

    def __init__(self, channels: int, act: nn.Module):
        super().__init__()
        mid = max(channels // 4, 1)
        self.branch = nn.Sequential(
            nn.Conv2d(channels, mid, 1, bias=False),  # (B, c/4, H, W)
            nn.BatchNorm2d(mid),
            act,
            nn.Conv2d(mid, mid, 3, padding=1, bias=False),  # (B, c/4, H, W)
            nn.BatchNorm2d(mid),
            act,
            nn.Conv2d(mid, channels, 3, padding=1, bias=False),  # (B, c, H, W)
            nn.BatchNorm2d(channels),
        )
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(x + self.branch(x))  # (B, c, H, W)
