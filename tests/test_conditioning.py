"""Conditioning Augmentation: the mu/logvar split, the KL, the reparameterisation, activations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal
from torch.distributions import kl_divergence as torch_kl

from ganlab.nn.conditioning import ConditioningAugmentation, kl_divergence


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)  # after conftest's fixture: the CI machine's cores are shared


@pytest.mark.parametrize("activation", ["leaky_relu", "relu", "glu"])
def test_mu_is_the_first_half_and_logvar_the_second(activation):
    torch.manual_seed(0)
    ca = ConditioningAugmentation(text_dim=12, c_dim=5, activation=activation)
    t = torch.randn(7, 12, dtype=torch.float64)
    ca.double()
    h = t @ ca.fc.weight.T + ca.fc.bias  # computed by hand from the FC's weights
    if activation == "leaky_relu":
        h = torch.where(h > 0, h, 0.2 * h)
    elif activation == "relu":
        h = h.clamp_min(0)
    else:  # GLU: (B, 20) -> a * sigmoid(b), a the first 10 columns
        assert ca.fc.out_features == 4 * 5
        h = h[:, :10] * torch.sigmoid(h[:, 10:])
    mu, logvar = ca.encode(t)
    assert mu.shape == logvar.shape == (7, 5)
    torch.testing.assert_close(mu, h[:, :5])
    torch.testing.assert_close(logvar, h[:, 5:])
    # forward with eps drawn from a known generator: c = mu + exp(logvar / 2) * eps
    c, mu2, logvar2 = ca(t, generator=torch.Generator().manual_seed(3))
    eps = torch.randn(7, 5, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    torch.testing.assert_close(c, h[:, :5] + torch.exp(h[:, 5:] / 2) * eps)
    torch.testing.assert_close(mu2, mu)
    torch.testing.assert_close(logvar2, logvar)


def test_default_activation_is_leaky_relu_and_relu_forces_nonnegative_mu():
    torch.manual_seed(1)
    t = torch.randn(64, 16)
    assert ConditioningAugmentation(16, 8).activation == "leaky_relu"
    mu_l, _ = ConditioningAugmentation(16, 8).encode(t)
    mu_r, logvar_r = ConditioningAugmentation(16, 8, activation="relu").encode(t)
    assert (mu_l < 0).any()  # LeakyReLU lets mu go negative
    assert (mu_r >= 0).all() and (logvar_r >= 0).all()  # the PyTorch port's deviation
    with pytest.raises(ValueError, match="activation must be one of"):
        ConditioningAugmentation(16, 8, activation="tanh")


def test_kl_matches_torch_distributions():
    gen = torch.Generator().manual_seed(2)
    mu = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    logvar = torch.randn(6, 9, generator=gen, dtype=torch.float64)
    want = torch_kl(Normal(mu, torch.exp(0.5 * logvar)), Normal(0.0, 1.0)).sum(1).mean()
    torch.testing.assert_close(kl_divergence(mu, logvar), want)
    # the official reduction (mean over all elements) is this divided by c_dim
    official = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()
    torch.testing.assert_close(official, kl_divergence(mu, logvar) / 9)
    # zero exactly at the prior
    assert kl_divergence(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0


def test_kl_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match=r"\(B, c_dim\)"):
        kl_divergence(torch.zeros(3, 4), torch.zeros(3, 5))
    with pytest.raises(TypeError):
        kl_divergence([0.0], torch.zeros(1, 1))


def test_reparameterised_gradient_reaches_mu_and_logvar():
    torch.manual_seed(4)
    ca = ConditioningAugmentation(10, 6)
    t = torch.randn(5, 10)
    mu, logvar = ca.encode(t)
    mu.retain_grad(), logvar.retain_grad()
    # recompute c from these very tensors, as forward does, with a known eps
    eps = torch.randn(5, 6, generator=torch.Generator().manual_seed(0))
    c = mu + torch.exp(0.5 * logvar) * eps
    c.sum().backward()
    torch.testing.assert_close(mu.grad, torch.ones_like(mu))
    torch.testing.assert_close(logvar.grad, 0.5 * torch.exp(0.5 * logvar.detach()) * eps)
    # and through forward, every FC parameter learns from c
    ca.zero_grad()
    c, _, _ = ca(t)
    c.pow(2).sum().backward()
    assert ca.fc.weight.grad.abs().sum() > 0 and ca.fc.bias.grad.abs().sum() > 0


def test_eps_is_standard_normal_and_reproducible():
    ca = ConditioningAugmentation(4, 3)
    with torch.no_grad():
        ca.fc.weight.zero_()
        ca.fc.bias.zero_()  # mu = 0, logvar = 0: c = eps exactly
    t = torch.zeros(20000, 4)
    c, mu, logvar = ca(t, generator=torch.Generator().manual_seed(5))
    assert mu.abs().max() == 0 and logvar.abs().max() == 0
    assert abs(c.mean().item()) < 0.02 and abs(c.std().item() - 1) < 0.02
    c2, _, _ = ca(t, generator=torch.Generator().manual_seed(5))
    assert torch.equal(c, c2)
    c3, _, _ = ca(t, generator=torch.Generator().manual_seed(6))
    assert not torch.equal(c, c3)
    # a known sigma scales eps: logvar = log 4 -> std 2
    with torch.no_grad():
        ca.fc.bias[3:] = torch.log(torch.tensor(4.0))  # positive: LeakyReLU keeps it
    c, _, logvar = ca(t, generator=torch.Generator().manual_seed(7))
    assert abs(c.std().item() - 2) < 0.05


def test_input_validation():
    ca = ConditioningAugmentation(8, 4)
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        ca(torch.zeros(2, 9))
    with pytest.raises(TypeError, match="float"):
        ca(torch.zeros(2, 8, dtype=torch.long))


def test_glu_output_halves_the_fc():
    ca = ConditioningAugmentation(8, 4, activation="glu")
    c, mu, logvar = ca(torch.randn(3, 8))
    assert c.shape == mu.shape == logvar.shape == (3, 4)
    h = F.glu(ca.fc(torch.zeros(1, 8)), dim=1)
    assert h.shape == (1, 8)
