"""WGAN-GP, drift and R1 against closed forms; fp32 under bf16 autocast; lazy Adam settings."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from ganlab.nn import drift_penalty, lazy_regularisation_adam, r1_penalty, wgan_gp_penalty

F64 = torch.float64


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def _linear_d(w=(3.0, 4.0), b=0.5):
    """D(x) = w . x + b on (B, 2): its input gradient is w for every sample, ||w|| = 5."""
    d = nn.Linear(2, 1)
    with torch.no_grad():
        d.weight.copy_(torch.tensor([w]))
        d.bias.fill_(b)
    return d


def test_wgan_gp_of_a_linear_critic_by_hand():
    d = _linear_d()
    real, fake = torch.randn(5, 2), torch.randn(5, 2)
    # ||grad|| = ||w|| = 5 at every interpolate: 10 * (5 - 1)^2 = 160, whatever the epsilons
    gp = wgan_gp_penalty(d, real, fake)
    assert gp.dtype == torch.float32 and gp.item() == pytest.approx(160.0)
    # create_graph: d gp / d w = 2 * 10 * (5 - 1) * w / ||w|| = 80 * (0.6, 0.8) = (48, 64)
    gp.backward()
    torch.testing.assert_close(d.weight.grad, torch.tensor([[48.0, 64.0]]))


def test_r1_of_a_linear_critic_by_hand():
    d = _linear_d()
    real = torch.randn(4, 2)
    # gamma / 2 * ||w||^2 = 0.5 * 25 with StarGAN v2's lambda_reg 1; 125 with gamma 10
    assert r1_penalty(d, real).item() == pytest.approx(12.5)
    r1 = r1_penalty(d, real, gamma=10.0)
    assert r1.item() == pytest.approx(125.0)
    r1.backward()  # d (5 * ||w||^2) / d w = 10 w
    torch.testing.assert_close(d.weight.grad, torch.tensor([[30.0, 40.0]]))


def test_per_sample_gradient_norms_of_a_quadratic_critic():
    # D(x) = 0.5 * ||x_b||^2 per sample: grad = x; with real = fake the interpolates are the reals
    d = lambda x: 0.5 * x.flatten(1).pow(2).sum(1)
    real = torch.tensor([[3.0, 4.0], [0.0, 1.0]], dtype=F64).reshape(2, 1, 1, 2)
    # norms 5 and 1: WGAN-GP 10 * mean(16, 0) = 80; R1 with gamma 2: mean(25, 1) = 13
    assert wgan_gp_penalty(d, real, real.clone()).item() == pytest.approx(80.0)
    assert r1_penalty(d, real, gamma=2.0).item() == pytest.approx(13.0)


def test_one_uniform_epsilon_per_sample():
    seen = []

    def recording_d(x):
        seen.append(x.detach().clone())
        return x.flatten(1).sum(1)

    real, fake = torch.zeros(6, 3, 2, 2), torch.ones(6, 3, 2, 2)
    gp = wgan_gp_penalty(recording_d, real, fake, generator=torch.Generator().manual_seed(0))
    x_hat = seen[0]  # = epsilon_b everywhere in sample b
    eps = x_hat.flatten(1)[:, 0]
    torch.testing.assert_close(x_hat, eps[:, None, None, None].expand_as(x_hat))
    assert ((eps >= 0) & (eps < 1)).all() and len(set(eps.tolist())) == 6
    # grad of sum is all ones: norm sqrt(12) for every sample, by hand 10 * (sqrt(12) - 1)^2
    assert gp.item() == pytest.approx(10 * (12**0.5 - 1) ** 2)
    wgan_gp_penalty(recording_d, real, fake, generator=torch.Generator().manual_seed(0))
    assert torch.equal(seen[1], x_hat)  # reproducible from the generator


def test_drift_by_hand():
    scores = torch.tensor([1.0, -2.0, 3.0])
    assert drift_penalty(scores).item() == pytest.approx(0.001 * 14 / 3)
    out = drift_penalty(scores.bfloat16(), weight=0.5)
    assert out.dtype == torch.float32 and out.item() == pytest.approx(0.5 * 14 / 3)


def test_penalties_are_float32_and_equal_to_fp32_under_bf16_autocast():
    torch.manual_seed(3)
    d = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(8 * 8 * 8, 1)
    )
    real, fake = torch.randn(4, 3, 8, 8), torch.randn(4, 3, 8, 8)
    want_gp = wgan_gp_penalty(d, real, fake, generator=torch.Generator().manual_seed(1))
    want_r1 = r1_penalty(d, real, gamma=10.0)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert d(real).dtype == torch.bfloat16  # autocast is on for ordinary forwards here
        gp = wgan_gp_penalty(d, real, fake.bfloat16(), generator=torch.Generator().manual_seed(1))
        r1, scores = r1_penalty(d, real.bfloat16(), gamma=10.0, return_scores=True)
    # fake.bfloat16() rounds the fake images, so compare the GP to fp32 on the same rounding
    want_gp_rounded = wgan_gp_penalty(
        d, real, fake.bfloat16().float(), generator=torch.Generator().manual_seed(1)
    )
    want_r1_rounded = r1_penalty(d, real.bfloat16().float(), gamma=10.0)
    assert gp.dtype == r1.dtype == scores.dtype == torch.float32
    torch.testing.assert_close(gp, want_gp_rounded)
    torch.testing.assert_close(r1, want_r1_rounded)
    torch.testing.assert_close(scores, d(real.bfloat16().float()))
    assert want_gp.item() > 0 and want_r1.item() > 0
    # and with fp32 inputs under autocast, exactly the fp32 values
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r1_same = r1_penalty(d, real, gamma=10.0)
    torch.testing.assert_close(r1_same, want_r1)
    # the penalty still trains D from inside the autocast region
    with torch.autocast("cpu", dtype=torch.bfloat16):
        r1_penalty(d, real, gamma=10.0).backward()
    assert d[0].weight.grad is not None and d[0].weight.grad.dtype == torch.float32


def test_errors_name_what_was_expected():
    d = _linear_d()
    with pytest.raises(ValueError, match="same shape"):
        wgan_gp_penalty(d, torch.zeros(2, 2), torch.zeros(3, 2))
    with pytest.raises(TypeError, match="float tensor"):
        r1_penalty(d, torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(TypeError, match="one tensor of scores"):
        r1_penalty(lambda x: (x.sum(1), x), torch.zeros(2, 2))


def test_lazy_regularisation_adam_settings():
    # StyleGAN2's D: lr 0.002, betas (0, 0.99), R1 every 16 steps: c = 16 / 17
    lr, (b1, b2) = lazy_regularisation_adam(0.002, (0.0, 0.99), 16)
    assert lr == pytest.approx(0.0018823529411764706)
    assert b1 == 0.0 and b2 == pytest.approx(0.9905854573074332)
    with pytest.raises(ValueError, match="interval"):
        lazy_regularisation_adam(0.002, (0.0, 0.99), 1)


def test_r1_settings_checks_name_the_setting_and_refuse_bools():
    from ganlab.nn import check_lazy_r1, check_r1_gamma

    check_r1_gamma(0.0)
    check_lazy_r1(10.0, 16)
    for gamma in (-1.0, float("nan"), True):
        with pytest.raises(ValueError, match="r1_gamma must be >= 0"):
            check_lazy_r1(gamma, 16)
    for every in (0, 2.0, True):  # True is an int to Python, not a number of steps
        with pytest.raises(ValueError, match="r1_every must be an int >= 1"):
            check_lazy_r1(1.0, every)


def test_lazy_r1_config_records_r1_only_when_on():
    from ganlab.nn import lazy_r1_config

    assert lazy_r1_config(0.0, 16) == {}
    assert lazy_r1_config(0.1, 4) == {"r1_gamma": 0.1, "r1_every": 4}
