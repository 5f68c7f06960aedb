"""The bottleneck residual block of GAN-INT-CLS's and StackGAN's official codes."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nn import BottleneckResidual


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.2)])
def test_matches_a_hand_written_block(act):
    torch.manual_seed(0)
    block = BottleneckResidual(8, act)
    for m in block.modules():  # non-trivial BN affine parameters
        if isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.3)
            nn.init.normal_(m.bias, 0.0, 0.3)
    x = torch.randn(3, 8, 5, 5)
    c1, b1, _, c2, b2, _, c3, b3 = block.branch
    block.eval()  # running statistics: the reference below uses the same
    with torch.no_grad():
        h = act(b1(F.conv2d(x, c1.weight)))
        h = act(b2(F.conv2d(h, c2.weight, padding=1)))
        want = act(x + b3(F.conv2d(h, c3.weight, padding=1)))
        torch.testing.assert_close(block(x), want)


def test_bottleneck_is_a_quarter_wide_and_convs_have_no_bias():
    block = BottleneckResidual(16, nn.ReLU())
    convs = [m for m in block.branch if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels, m.kernel_size) for m in convs] == [
        (16, 4, (1, 1)),
        (4, 4, (3, 3)),
        (4, 16, (3, 3)),
    ]
    assert all(m.bias is None for m in convs)
    assert BottleneckResidual(2, nn.ReLU()).branch[0].out_channels == 1  # never zero wide


def test_activation_follows_the_add():
    """With the branch's last BN zeroed the block is act(x): the skip carries x unchanged."""
    block = BottleneckResidual(4, nn.ReLU())
    nn.init.zeros_(block.branch[-1].weight)
    nn.init.zeros_(block.branch[-1].bias)
    x = torch.randn(2, 4, 3, 3)
    torch.testing.assert_close(block(x), F.relu(x))
