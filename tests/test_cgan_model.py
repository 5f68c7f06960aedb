"""CGAN (Mirza & Osindero 2014): the paper's layer sizes, conditioning, losses, bad input."""

import pytest
import torch
import torch.nn.functional as F

from ganlab.models.cgan import (
    ConvDiscriminator,
    ConvGenerator,
    PaperDiscriminator,
    PaperGenerator,
    build_cgan,
    discriminator_loss,
    generator_loss,
    one_hot,
)
from ganlab.nn import Maxout


def linear_shapes(module):
    return [tuple(m.weight.shape) for m in module.modules() if isinstance(m, torch.nn.Linear)]


def test_paper_generator_layer_sizes():
    G = PaperGenerator()
    # z->200, y->1000, 1200->1200, 1200->784 (weights are (out, in))
    assert linear_shapes(G) == [(200, 100), (1000, 10), (1200, 1200), (784, 1200)]
    z, y = G.sample_z(5), torch.arange(5)
    assert z.min() >= -1 and z.max() <= 1  # uniform prior
    x = G.eval()(z, y)
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1


def test_paper_discriminator_is_maxout_240x5_50x5_240x4():
    D = PaperDiscriminator()
    maxouts = [
        (m.units, m.pieces, m.linear.in_features) for m in D.modules() if isinstance(m, Maxout)
    ]
    assert maxouts == [(240, 5, 784), (50, 5, 10), (240, 4, 290)]
    assert sum(isinstance(m, torch.nn.Dropout) and m.p == 0.5 for m in D.modules()) == 3
    assert D.eval()(torch.zeros(2, 1, 28, 28), torch.tensor([1, 2])).shape == (2,)


@pytest.mark.parametrize("arch", ["paper", "conv"])
def test_label_enters_both_players(arch):
    torch.manual_seed(0)
    G, D = build_cgan(arch, width=8)
    G.eval(), D.eval()
    z = G.sample_z(1).repeat(2, 1)
    y = torch.tensor([1, 7])
    x = G(z, y)
    assert not torch.allclose(x[0], x[1]), "same z, different labels must give different images"
    img = x[:1].detach().repeat(2, 1, 1, 1)
    out = D(img, y)
    assert not torch.isclose(out[0], out[1]), "D must depend on the label"


def test_maxout_is_max_over_pieces():
    torch.manual_seed(0)
    m = Maxout(6, 4, 3)
    x = torch.randn(5, 6)
    ref = (x @ m.linear.weight.T + m.linear.bias).view(5, 4, 3).max(-1).values
    assert torch.allclose(m(x), ref)


def test_losses_match_bce_and_are_non_saturating():
    r, f = torch.randn(16), torch.randn(16, requires_grad=True)
    ref_d = F.binary_cross_entropy(torch.sigmoid(r), torch.ones(16)) + F.binary_cross_entropy(
        torch.sigmoid(f), torch.zeros(16)
    )
    assert torch.allclose(discriminator_loss(r, f), ref_d, atol=1e-5)
    loss = generator_loss(f)
    assert torch.allclose(loss, -torch.log(torch.sigmoid(f)).mean(), atol=1e-5)
    (grad,) = torch.autograd.grad(loss, f)
    assert torch.allclose(grad, -(1 - torch.sigmoid(f)) / 16, atol=1e-6)
    big = torch.tensor([100.0, -100.0])
    assert torch.isfinite(discriminator_loss(big, -big)) and torch.isfinite(generator_loss(-big))


def test_one_hot_and_its_errors():
    assert torch.equal(one_hot(torch.tensor([0, 2]), 3), torch.tensor([[1.0, 0, 0], [0, 0, 1]]))
    with pytest.raises(ValueError, match=r"0\.\.9"):
        one_hot(torch.tensor([3, 10]))
    with pytest.raises(ValueError, match=r"0\.\.9"):
        one_hot(torch.tensor([-1]))
    with pytest.raises(TypeError, match="integer"):
        one_hot(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\(N,\)"):
        one_hot(torch.tensor([[1, 2]]))
    with pytest.raises(TypeError, match="torch.Tensor"):
        one_hot([1, 2])


@pytest.mark.parametrize("D", [PaperDiscriminator(), ConvDiscriminator(width=4)])
def test_discriminator_rejects_bad_images(D):
    D.eval()
    y = torch.tensor([1, 2])
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        D(torch.zeros(2, 3, 28, 28), y)
    with pytest.raises(ValueError, match=r"\(N, 1, 28, 28\)"):
        D(torch.zeros(2, 784), y)
    with pytest.raises(TypeError, match="float"):
        D(torch.zeros(2, 1, 28, 28, dtype=torch.uint8), y)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        D(torch.full((2, 1, 28, 28), 255.0), y)


def test_generator_rejects_bad_noise_and_labels():
    G = ConvGenerator(z_dim=8, width=4).eval()
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        G(torch.zeros(2, 9), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"0\.\.9"):
        G(torch.zeros(2, 8), torch.tensor([1, 12]))
    with pytest.raises(ValueError, match="arch"):
        build_cgan("mlp")
