"""Equalised learning rate: the He scale is applied at run time, and Adam's steps are equalised."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganlab.nn import HE_GAIN, EqualizedConv2d, EqualizedLinear


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def test_linear_forward_applies_the_he_scale_at_run_time():
    layer = EqualizedLinear(4, 1)  # gain sqrt(2), fan_in 4: scale sqrt(2) / 2
    with torch.no_grad():
        layer.weight.fill_(1.0)
        layer.bias.fill_(0.5)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    layer.double()
    # by hand: (1 + 2 + 3 + 4) * sqrt(2) / sqrt(4) + 0.5
    torch.testing.assert_close(layer(x), torch.tensor([[7.5710678118654755]], dtype=torch.float64))
    with torch.no_grad():
        layer.weight.mul_(2.0)  # the stored parameter is the raw one: doubling it doubles w x
    torch.testing.assert_close(
        layer(x), torch.tensor([[14.142135623730951 + 0.5]], dtype=torch.float64)
    )
    assert set(layer.state_dict()) == {"weight", "bias"}  # no baked or extra scaled copy


def test_lr_mul_divides_the_init_and_multiplies_at_run_time():
    layer = EqualizedLinear(4, 1, lr_mul=0.01).double()  # StyleGAN's mapping layers
    with torch.no_grad():
        layer.weight.fill_(100.0)  # a typical stored value: N(0, 1 / 0.01^2) has std 100
        layer.bias.fill_(50.0)
    x = torch.tensor([[1.0, 2.0, 3.0, 4.0]], dtype=torch.float64)
    # effective weight 100 * sqrt(2)/2 * 0.01 = 0.70710678..., effective bias 50 * 0.01 = 0.5
    torch.testing.assert_close(layer(x), torch.tensor([[7.5710678118654755]], dtype=torch.float64))
    # bias_init is the EFFECTIVE initial bias
    assert EqualizedLinear(3, 2, lr_mul=0.01, bias_init=1.0)(torch.zeros(1, 3)).tolist() == [
        pytest.approx([1.0, 1.0])
    ]


def test_stored_weights_are_unit_gaussian_divided_by_lr_mul():
    torch.manual_seed(0)
    for lr_mul, want_std in [(1.0, 1.0), (0.01, 100.0)]:
        layer = EqualizedLinear(512, 512, lr_mul=lr_mul)  # 262144 draws: std of std ~ 0.14 %
        assert layer.weight.std().item() == pytest.approx(want_std, rel=0.01)
        # the effective weight has He's std sqrt(2 / 512) = 0.0625 whatever lr_mul
        assert (layer.weight * layer.scale).std().item() == pytest.approx(0.0625, rel=0.01)
        assert layer.bias.abs().max().item() == 0.0


def test_conv_forward_by_hand():
    conv = EqualizedConv2d(2, 1, 3).double()  # fan_in 2 * 3 * 3 = 18, padding 'SAME'
    with torch.no_grad():
        conv.weight.fill_(1.0)
        conv.bias.zero_()
    out = conv(torch.ones(1, 2, 3, 3, dtype=torch.float64))
    # each output = (number of in-image taps) * sqrt(2) / sqrt(18) = taps / 3
    want = torch.tensor(
        [[8 / 3, 4.0, 8 / 3], [4.0, 6.0, 4.0], [8 / 3, 4.0, 8 / 3]], dtype=torch.float64
    )
    torch.testing.assert_close(out[0, 0], want)
    assert conv.scale == pytest.approx(math.sqrt(2) / math.sqrt(18))
    assert EqualizedConv2d(3, 5, 1, gain=1.0).scale == pytest.approx(1 / math.sqrt(3))  # toRGB
    with pytest.raises(ValueError, match="odd kernel"):
        EqualizedConv2d(3, 5, 4)
    assert EqualizedConv2d(3, 5, 4, stride=2, padding=1)(torch.zeros(1, 3, 8, 8)).shape == (
        1,
        5,
        4,
        4,
    )


def _first_adam_step_relative(layer, weight_scale, lr=1e-3):
    """One Adam step on a random loss; returns |change of the EFFECTIVE weight| / He std."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(16, layer.in_features, generator=gen, dtype=torch.float64)
    target = torch.randn(16, layer.out_features, generator=gen, dtype=torch.float64)
    before = (layer.weight * weight_scale).detach().clone()
    opt = torch.optim.Adam(layer.parameters(), lr=lr, eps=1e-12)
    loss = (layer(x) - target).pow(2).sum()
    loss.backward()
    opt.step()
    after = (layer.weight * weight_scale).detach()
    he_std = HE_GAIN / math.sqrt(layer.in_features)  # the effective weight's init std
    return (after - before).abs() / he_std


def test_adam_steps_are_equalised_across_fan_in():
    lr = 1e-3
    torch.manual_seed(2)
    # Adam's first step is lr * g / |g| on every stored element: lr relative to the std 1
    for fan_in in (4, 1024):
        eq = EqualizedLinear(fan_in, 8).double()
        rel = _first_adam_step_relative(eq, eq.scale, lr)
        torch.testing.assert_close(rel, torch.full_like(rel, lr), rtol=1e-6, atol=0)
    # lr_mul 0.01: the same step is 100x smaller relative to the effective weight
    slow = EqualizedLinear(64, 8, lr_mul=0.01).double()
    rel = _first_adam_step_relative(slow, slow.scale, lr)
    torch.testing.assert_close(rel, torch.full_like(rel, lr * 0.01), rtol=1e-6, atol=0)
    # plain nn.Linear with He init: relative step lr / (sqrt(2) / sqrt(fan_in)), by hand
    # sqrt(4 / 2) = 1.414... and sqrt(1024 / 2) = 22.627...: 16x apart
    for fan_in, factor in ((4, 1.4142135623730951), (1024, 22.627416997969522)):
        plain = nn.Linear(fan_in, 8).double()
        with torch.no_grad():
            plain.weight.normal_(0.0, HE_GAIN / math.sqrt(fan_in))
        rel = _first_adam_step_relative(plain, 1.0, lr)
        torch.testing.assert_close(rel, torch.full_like(rel, lr * factor), rtol=1e-6, atol=0)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="lr_mul"):
        EqualizedLinear(3, 3, lr_mul=0.0)
    with pytest.raises(ValueError, match="gain"):
        EqualizedConv2d(3, 3, 3, gain=-1.0)
    with pytest.raises(ValueError, match="in_features"):
        EqualizedLinear(0, 3)
