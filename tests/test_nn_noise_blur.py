"""Noise injection (per-channel scale, shared per-pixel noise) and the [1, 2, 1] blur, by hand."""

from __future__ import annotations

import pytest
import torch

from ganlab.nn import Blur, NoiseInjection, blur_kernel

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def test_noise_scale_starts_at_zero():
    layer = NoiseInjection(3)
    assert layer.weight.tolist() == [0.0, 0.0, 0.0]
    x = torch.randn(2, 3, 4, 4)
    assert torch.equal(layer(x), x)


def test_fixed_noise_is_scaled_per_channel_and_broadcast_over_the_batch():
    layer = NoiseInjection(2).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 2.0]))
    noise = torch.tensor([[1.0, -1.0], [0.5, 0.0]], dtype=F64).reshape(1, 1, 2, 2)
    x = torch.zeros(2, 2, 2, 2, dtype=F64)
    x[1] += 10.0
    out = layer(x, noise=noise)
    want = torch.tensor([[[1.0, -1.0], [0.5, 0.0]], [[2.0, -2.0], [1.0, 0.0]]], dtype=F64)
    torch.testing.assert_close(out[0], want)
    torch.testing.assert_close(out[1], want + 10.0)
    # d sum(out) / d weight_c = sum over the 2 samples and 4 pixels of noise = 2 * 0.5
    out.sum().backward()
    torch.testing.assert_close(layer.weight.grad, torch.tensor([1.0, 1.0], dtype=F64))


def test_drawn_noise_is_one_map_per_sample_shared_by_the_channels():
    layer = NoiseInjection(2)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([1.0, 3.0]))
    x = torch.zeros(4, 2, 64, 64)
    out = layer(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out[:, 1], 3.0 * out[:, 0])  # the same noise in both channels
    assert not torch.equal(out[0, 0], out[1, 0])  # a fresh map per sample
    n = out[:, 0]  # 16384 draws of N(0, 1)
    assert abs(n.mean().item()) < 0.05 and abs(n.std().item() - 1.0) < 0.05
    again = layer(x, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # reproducible from the generator
    with pytest.raises(ValueError, match=r"noise must be \(4, 1, 64, 64\)"):
        layer(x, noise=torch.zeros(4, 2, 64, 64))


def test_blur_kernel_is_the_normalised_outer_product():
    want = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 16
    torch.testing.assert_close(blur_kernel(), want)
    torch.testing.assert_close(blur_kernel(normalize=False), want * 16)
    with pytest.raises(ValueError, match="odd length"):
        blur_kernel((1, 3, 3, 1))


def test_blur_impulse_border_and_depthwise():
    blur = Blur()
    x = torch.zeros(1, 2, 5, 5, dtype=F64)
    x[0, 0, 2, 2] = 16.0  # an impulse: the output is the kernel, times 16
    x[0, 1] = 1.0  # a constant channel
    out = blur(x)
    assert out.shape == x.shape
    impulse = torch.zeros(5, 5, dtype=F64)
    impulse[1:4, 1:4] = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]])
    torch.testing.assert_close(out[0, 0], impulse)  # channel 1 did not leak into channel 0
    # constant map: 1 inside; zero padding keeps 12/16 on an edge and 9/16 in a corner
    const = out[0, 1]
    assert const[2, 2].item() == pytest.approx(1.0)
    assert const[0, 2].item() == pytest.approx(12 / 16)
    assert const[0, 0].item() == pytest.approx(9 / 16)
    assert "kernel" not in blur.state_dict()  # fixed, not a learned or saved tensor
    assert blur(torch.randn(1, 3, 4, 4).bfloat16()).dtype == torch.bfloat16


@pytest.mark.parametrize("f", [(1, 2, 1), (1, 3, 0)])  # symmetric, and one that is not
def test_blur_gradients_match_the_grouped_conv_twice(f):
    """BlurFunction's hand-written backward (the blur with the flipped kernel) gives the
    gradients autograd takes through a grouped conv, first and second order (R1's case)."""
    from torch.nn import functional as F

    from ganlab.nn.blur import BlurFunction

    kernel = blur_kernel(f, normalize=False).to(F64)
    x = torch.randn(2, 3, 6, 5, dtype=F64, requires_grad=True)
    w = torch.randn(2, 3, 6, 5, dtype=F64)

    def r1_like(y_of):  # || d <w, y(x)^2> / dx ||^2, differentiated once more
        (g,) = torch.autograd.grad((w * y_of(x).square()).sum(), x, create_graph=True)
        (gg,) = torch.autograd.grad(g.square().sum(), x)
        return g.detach(), gg

    got = r1_like(lambda x: BlurFunction.apply(x, kernel))
    want = r1_like(lambda x: F.conv2d(x, kernel.expand(3, 1, 3, 3), padding=1, groups=3))
    torch.testing.assert_close(got[0], want[0])
    torch.testing.assert_close(got[1], want[1])
    assert torch.autograd.gradgradcheck(lambda x: BlurFunction.apply(x, kernel), (x,))
