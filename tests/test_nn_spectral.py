"""Spectral-norm helpers: sigma of the normalised weight is 1; which layers; removal; copies."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from ganlab.nn import EqualizedConv2d, apply_spectral_norm, has_spectral_norm, remove_spectral_norm

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def _sigma(matrix: torch.Tensor) -> float:
    return torch.linalg.svdvals(matrix.detach()).max().item()  # exact, by SVD


def test_diagonal_weight_by_hand():
    layer = nn.Linear(2, 2, bias=False).double()
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([[3.0, 0.0], [0.0, 1.0]], dtype=F64))
    apply_spectral_norm(layer)  # a single layer works too
    layer.eval()
    # sigma = 3, so W / sigma = diag(1, 1/3)
    want = torch.tensor([[1.0, 0.0], [0.0, 1 / 3]], dtype=F64)
    torch.testing.assert_close(layer.weight, want, rtol=0, atol=1e-9)
    torch.testing.assert_close(
        layer(torch.tensor([[3.0, 3.0]], dtype=F64)), torch.tensor([[3.0, 1.0]], dtype=F64)
    )


@pytest.mark.parametrize("kind", ["conv", "conv_transpose", "linear"])
def test_largest_singular_value_is_one_after_power_iterations(kind):
    torch.manual_seed(0)
    layer = {
        "conv": nn.Conv2d(4, 8, 3, padding=1),
        "conv_transpose": nn.ConvTranspose2d(4, 8, 4, stride=2, padding=1),
        "linear": nn.Linear(20, 10),
    }[kind]
    with torch.no_grad():
        layer.weight.mul_(5.0)
    w = layer.weight.detach()
    # the matrix whose sigma is normalised: rows = output channels
    as_matrix = (
        (lambda t: t.transpose(0, 1).flatten(1))
        if kind == "conv_transpose"
        else (lambda t: t.flatten(1))
    )
    assert _sigma(as_matrix(w)) > 2.0
    apply_spectral_norm(layer)
    x = torch.randn(2, 4, 6, 6) if kind != "linear" else torch.randn(2, 20)
    layer.train()
    # one power iteration per training forward; the error shrinks like (sigma_2 / sigma_1)^2
    # per step, slow for this conv (ratio 0.94), so run 100
    for _ in range(100):
        layer(x)
    assert _sigma(as_matrix(layer.weight)) == pytest.approx(1.0, abs=1e-4)
    torch.testing.assert_close(layer.parametrizations.weight.original, w)  # W itself untouched


def test_wraps_only_torch_linear_and_conv_layers_and_only_once():
    net = nn.Sequential(
        nn.Conv2d(3, 4, 3),
        nn.LeakyReLU(0.2),
        EqualizedConv2d(4, 4, 3),
        nn.Flatten(),
        nn.LazyLinear(1),
    )
    net(torch.zeros(1, 3, 8, 8))  # materialise the lazy layer
    apply_spectral_norm(net)
    apply_spectral_norm(net)  # idempotent
    assert [has_spectral_norm(m) for m in net] == [True, False, False, False, True]
    assert len(net[0].parametrizations.weight) == 1
    with pytest.raises(TypeError, match="nn.Module"):
        apply_spectral_norm(lambda x: x)


def test_remove_freezes_the_current_estimate():
    torch.manual_seed(1)
    net = apply_spectral_norm(nn.Sequential(nn.Conv2d(3, 5, 3), nn.ReLU(), nn.Conv2d(5, 2, 1)))
    x = torch.randn(2, 3, 6, 6)
    net.train()
    for _ in range(3):
        net(x)
    net.eval()
    before = net(x)
    normalised = net[0].weight.detach().clone()
    remove_spectral_norm(net)
    assert not any(has_spectral_norm(m) for m in net.modules())
    assert isinstance(net[0].weight, nn.Parameter) and set(net.state_dict()) == {
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
    }
    torch.testing.assert_close(net[0].weight, normalised)
    torch.testing.assert_close(net(x), before)


def test_copies_and_state_dicts_keep_the_normalisation():
    torch.manual_seed(2)
    make = lambda: apply_spectral_norm(
        nn.Sequential(nn.Conv2d(3, 4, 3), nn.LeakyReLU(0.2), nn.Conv2d(4, 1, 3))
    )
    net = make()
    net.train()
    x = torch.randn(2, 3, 7, 7)
    net(x)
    ema = copy.deepcopy(net).eval()  # an EMA copy of a generator with spectral norm
    fresh = make()
    fresh.load_state_dict(net.state_dict())  # the u, v vectors travel in the state dict
    net.eval()
    fresh.eval()
    torch.testing.assert_close(ema(x), net(x))
    torch.testing.assert_close(fresh(x), net(x))
