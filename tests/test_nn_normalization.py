"""PixelNorm, instance norm and AdaIN against hand computations."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from ganlab.nn import AdaIN, EqualizedLinear, PixelNorm, instance_norm, pixel_norm

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def test_pixel_norm_by_hand():
    # one pixel with features (3, 4): mean square 12.5, so divide by sqrt(12.5)
    z = torch.tensor([[3.0, 4.0]], dtype=F64)
    torch.testing.assert_close(
        pixel_norm(z), torch.tensor([[0.848528137423857, 1.131370849898476]], dtype=F64)
    )
    # (B, C, H, W): each pixel on its own; the second pixel (0, 2) has mean square 2
    x = torch.tensor([[[[3.0, 0.0]], [[4.0, 2.0]]]], dtype=F64)  # (1, 2, 1, 2)
    out = PixelNorm()(x)
    want = torch.tensor(
        [[[[0.848528137423857, 0.0]], [[1.131370849898476, 1.4142135623730951]]]], dtype=F64
    )
    torch.testing.assert_close(out, want)
    assert pixel_norm(torch.zeros(2, 3)).abs().max().item() == 0.0  # eps keeps zeros finite
    with pytest.raises(ValueError, match=r"\(B, C\)"):
        pixel_norm(torch.zeros(3))


def test_instance_norm_by_hand():
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64).reshape(1, 1, 2, 2)
    # mean 2.5, biased variance 1.25, std 1.1180...
    want = torch.tensor(
        [-1.3416407864998738, -0.4472135954999579, 0.4472135954999579, 1.3416407864998738],
        dtype=F64,
    )
    torch.testing.assert_close(instance_norm(x).flatten(), want)
    # bf16 in, bf16 out, statistics taken in float32
    xb = torch.randn(2, 3, 4, 4).bfloat16()
    out = instance_norm(xb)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out, instance_norm(xb.float()).bfloat16())


def test_instance_norm_is_the_written_out_formula():
    """The fused kernel against (x - mean_HW) / sqrt(biased var_HW + eps), on many maps."""
    x = torch.randn(4, 8, 5, 7) * 3 + 1
    for eps in (1e-8, 1e-5):
        centred = x - x.mean(dim=(2, 3), keepdim=True)
        want = centred / torch.sqrt(centred.pow(2).mean(dim=(2, 3), keepdim=True) + eps)
        torch.testing.assert_close(instance_norm(x, eps), want, rtol=1e-5, atol=1e-5)


def test_adain_equalized_projection_by_hand():
    ada = AdaIN(1, 2).double()  # StyleGAN: A = equalised dense, gain 1: scale 1 / sqrt(2)
    assert isinstance(ada.affine, EqualizedLinear) and ada.affine.gain == 1.0
    with torch.no_grad():
        ada.affine.weight.copy_(torch.eye(2, dtype=F64) * math.sqrt(2))  # effective A = identity
        ada.affine.bias.zero_()
    x = torch.tensor([1.0, 2.0, 3.0, 4.0], dtype=F64).reshape(1, 1, 2, 2)
    w = torch.tensor([[0.5, -1.0]], dtype=F64)  # y_s = 0.5, y_b = -1
    # (1 + 0.5) * IN(x) - 1, with IN(x) from the test above
    want = torch.tensor(
        [-3.0124611797498106, -1.6708203932499369, -0.3291796067500631, 1.0124611797498106],
        dtype=F64,
    )
    torch.testing.assert_close(ada(x, w).flatten(), want)


def test_adain_first_c_columns_scale_next_c_columns_shift():
    ada = AdaIN(2, 1, projection="linear", eps=1e-12).double()
    with torch.no_grad():
        ada.affine.weight.copy_(torch.tensor([[1.0], [2.0], [3.0], [4.0]], dtype=F64))
        ada.affine.bias.zero_()
    s = torch.tensor([[0.5]], dtype=F64)  # A(s) = (0.5, 1, 1.5, 2): y_s = (0.5, 1), y_b = (1.5, 2)
    x = torch.tensor([[[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 2.0]]], dtype=F64)[None]
    out = ada(x, s)
    # channel 0: 1.5 * IN + 1.5; channel 1 (mean 0.5, var 0.75): 2 * IN + 2
    want0 = [-0.5124611797498107, 0.8291796067500631, 2.170820393249937, 3.5124611797498106]
    want1 = [0.8452994616207485, 0.8452994616207485, 0.8452994616207485, 5.464101615137754]
    torch.testing.assert_close(out[0, 0].flatten(), torch.tensor(want0, dtype=F64))
    torch.testing.assert_close(out[0, 1].flatten(), torch.tensor(want1, dtype=F64))


def test_stargan_v2_preset_matches_its_instance_norm_and_fc():
    torch.manual_seed(3)
    ada = AdaIN.stargan_v2(4, style_dim=6)
    assert type(ada.affine) is nn.Linear and ada.eps == 1e-5
    x, s = torch.randn(3, 4, 5, 5), torch.randn(3, 6)
    h = s @ ada.affine.weight.T + ada.affine.bias  # the official: fc(s), chunk into gamma, beta
    gamma, beta = h[:, :4, None, None], h[:, 4:, None, None]
    want = (1 + gamma) * nn.InstanceNorm2d(4, affine=False)(x) + beta
    torch.testing.assert_close(ada(x, s), want, rtol=1e-5, atol=1e-5)
    sg = AdaIN.stylegan(8, w_dim=16)
    assert isinstance(sg.affine, EqualizedLinear) and sg.eps == 1e-8


def test_zero_style_leaves_the_instance_norm():
    ada = AdaIN(3, 4)
    with torch.no_grad():
        ada.affine.weight.zero_()
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(ada(x, torch.randn(2, 4)), instance_norm(x))


def test_adain_shape_errors():
    ada = AdaIN(3, 4)
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        ada(torch.zeros(2, 5, 4, 4), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\(B, 4\)"):
        ada(torch.zeros(2, 3, 4, 4), torch.zeros(2, 7))
    with pytest.raises(ValueError, match="same batch size"):
        ada(torch.zeros(2, 3, 4, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match="projection"):
        AdaIN(3, 4, projection="conv")
