"""GAN-INT-CLS (Reed et al. 2016): shapes, the official layer list, losses, INT, CLS pairs.

Goldens are independent of the module: parameter counts summed by hand from the layer list
of reedscot/icml2016 ``main_cls_int.lua``, losses from ``math.log`` on a few logits.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.models import gan_int_cls as M

TEXT, PROJ, Z = 12, 6, 5  # tiny sizes for CI


def tiny(image_size=16, ngf=4, ndf=4):
    torch.manual_seed(0)
    G = M.Generator(TEXT, PROJ, Z, ngf, image_size)
    D = M.Discriminator(TEXT, PROJ, ndf, image_size)
    return G, D


# --- shapes and the official architecture ------------------------------------------------


@pytest.mark.parametrize("size", [16, 32, 64])
def test_output_shapes(size):
    G, D = tiny(size)
    z, t = torch.randn(3, Z), torch.randn(3, TEXT)
    x = G(z, t)
    assert x.shape == (3, 3, size, size)
    assert x.abs().max() <= 1  # tanh
    logits = D(x, t)
    assert logits.shape == (3,)  # ONE logit per image
    assert logits.dtype == torch.float32


def test_grayscale_channels():
    G = M.Generator(TEXT, PROJ, Z, 4, 16, channels=1)
    D = M.Discriminator(TEXT, PROJ, 4, 16, channels=1)
    x = G(torch.randn(2, Z), torch.randn(2, TEXT))
    assert x.shape == (2, 1, 16, 16) and D(x, torch.randn(2, TEXT)).shape == (2,)


def official_generator_parameters(text=1024, nt=128, nz=100, ngf=128, nc=3):
    """main_cls_int.lua's netG, layer by layer. Conv biases are zeroed before every step in the
    official code, so only Linear and BatchNorm layers carry biases."""
    bn = lambda c: 2 * c  # noqa: E731
    fc = text * nt + nt
    stem = (nz + nt) * ngf * 8 * 16 + bn(ngf * 8)
    res4 = ngf * 8 * ngf * 2 + bn(ngf * 2) + ngf * 2 * ngf * 2 * 9 + bn(ngf * 2)
    res4 += ngf * 2 * ngf * 8 * 9 + bn(ngf * 8)
    up8 = ngf * 8 * ngf * 4 * 16 + bn(ngf * 4)
    res8 = ngf * 4 * ngf + bn(ngf) + ngf * ngf * 9 + bn(ngf) + ngf * ngf * 4 * 9 + bn(ngf * 4)
    up16 = ngf * 4 * ngf * 2 * 16 + bn(ngf * 2)
    up32 = ngf * 2 * ngf * 16 + bn(ngf)
    up64 = ngf * nc * 16
    return fc + stem + res4 + up8 + res8 + up16 + up32 + up64


def official_discriminator_parameters(text=1024, nt=128, ndf=64, nc=3):
    bn = lambda c: 2 * c  # noqa: E731
    convs = nc * ndf * 16 + ndf * ndf * 2 * 16 + bn(ndf * 2)
    convs += ndf * 2 * ndf * 4 * 16 + bn(ndf * 4) + ndf * 4 * ndf * 8 * 16 + bn(ndf * 8)
    res = ndf * 8 * ndf * 2 + bn(ndf * 2) + ndf * 2 * ndf * 2 * 9 + bn(ndf * 2)
    res += ndf * 2 * ndf * 8 * 9 + bn(ndf * 8)
    fc = text * nt + nt + bn(nt)
    joint = (ndf * 8 + nt) * ndf * 8 + bn(ndf * 8) + ndf * 8 * 16
    return convs + res + fc + joint


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_default_models_have_the_official_parameter_counts():
    assert count(M.Generator()) == official_generator_parameters()
    assert count(M.Discriminator()) == official_discriminator_parameters()
    # ...and the counts follow the widths (no hard-coded 128/64 anywhere).
    assert count(M.Generator(64, 16, 10, 8, 64)) == official_generator_parameters(64, 16, 10, 8)
    assert count(M.Discriminator(64, 16, 8, 64)) == official_discriminator_parameters(64, 16, 8)


def _residual_sizes(model, x, t):
    sizes = []
    hooks = [
        m.register_forward_hook(lambda _m, inp, _out: sizes.append(tuple(inp[0].shape[1:])))
        for m in model.modules()
        if isinstance(m, M.BottleneckResidual)
    ]
    model(x, t)
    for h in hooks:
        h.remove()
    return sizes


@pytest.mark.parametrize("size", [16, 32, 64])
def test_residual_blocks_where_the_official_code_has_them(size):
    G, D = tiny(size, ngf=4, ndf=4)
    t = torch.randn(2, TEXT)
    # G: one at 4x4 (8 ngf channels), one at 8x8 (4 ngf); D: one at 4x4 (8 ndf).
    assert _residual_sizes(G, torch.randn(2, Z), t) == [(32, 4, 4), (16, 8, 8)]
    assert _residual_sizes(D, torch.rand(2, 3, size, size) * 2 - 1, t) == [(32, 4, 4)]


def test_convolutions_have_no_bias_and_d_first_layer_no_batchnorm():
    G, D = tiny(64)
    for m in list(G.modules()) + list(D.modules()):
        if isinstance(m, nn.Conv2d | nn.ConvTranspose2d):
            assert m.bias is None
    assert isinstance(D.features[0], nn.Conv2d) and isinstance(D.features[1], nn.LeakyReLU)
    assert isinstance(D.project_text[1], nn.BatchNorm1d)  # text: Linear + BN + LReLU
    assert D.project_text[2].negative_slope == 0.2 and G.project_text[1].negative_slope == 0.2


@pytest.mark.parametrize("size", [16, 32, 64])
def test_discriminator_stages_follow_the_paper(size):
    """Every stride-2 conv but the last is followed by LReLU 0.2 (BN from the second on); the
    last (into 4x4) has BN and then the residual block, whose LReLU follows the add."""
    _, D = tiny(size)
    kinds = [type(m).__name__ for m in D.features]
    stages = int(math.log2(size // 4))
    assert kinds == (
        ["Conv2d", "LeakyReLU"]
        + ["Conv2d", "BatchNorm2d", "LeakyReLU"] * (stages - 2)
        + ["Conv2d", "BatchNorm2d", "BottleneckResidual"]
    )
    widths = [m.out_channels for m in D.features if isinstance(m, nn.Conv2d)]
    assert widths == [4 * 8 // 2**k for k in reversed(range(stages))]  # ..., 2 ndf, 4 ndf, 8 ndf


def test_generator_concatenates_z_first_then_text():
    G, _ = tiny(16)
    G.eval()
    z, t = torch.randn(3, Z), torch.randn(3, TEXT)
    with torch.no_grad():
        G.net[0].weight[Z:] = 0  # cut the text channels of the first (transposed) conv
        assert torch.allclose(G(z, t), G(z, torch.randn(3, TEXT)))
        assert not torch.allclose(G(z, t), G(torch.randn(3, Z), t))


def test_text_changes_the_outputs():
    G, D = tiny(16)
    G.eval(), D.eval()
    z, t, other = torch.randn(4, Z), torch.randn(4, TEXT), torch.randn(4, TEXT)
    with torch.no_grad():
        x = G(z, t)
        assert (x - G(z, other)).abs().amax(dim=(1, 2, 3)).min() > 1e-6
        assert (D(x, t) - D(x, other)).abs().min() > 1e-6


def test_replicate_text_repeats_the_text_after_the_features():
    features = torch.randn(2, 3, 4, 4)
    text = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    out = M.replicate_text(features, text)
    assert out.shape == (2, 5, 4, 4)
    assert torch.equal(out[:, :3], features)
    for b in range(2):
        for p in range(2):
            assert torch.equal(out[b, 3 + p], torch.full((4, 4), text[b, p].item()))


# --- gradients ---------------------------------------------------------------------------


def test_gradients_reach_both_text_projections_and_every_parameter():
    G, D = tiny(16)
    n = 4
    t = torch.randn(n, TEXT)
    x = torch.rand(n, 3, 16, 16) * 2 - 1
    wrong = torch.rand(n, 3, 16, 16) * 2 - 1
    loss_d = M.discriminator_loss(D(x, t), D(wrong, t), D(G(torch.randn(n, Z), t).detach(), t))
    loss_d.backward()
    for name, p in D.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert all(p.grad is None for p in G.parameters())  # D's step leaves G alone
    D.zero_grad()
    t_int = M.interpolate_embeddings(t, t.roll(1, 0))
    loss_g = M.generator_loss(D(G(torch.randn(n, Z), t), t), D(G(torch.randn(n, Z), t_int), t_int))
    loss_g.backward()
    for name, p in G.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert G.project_text[0].weight.grad.abs().sum() > 0


def test_gradient_reaches_the_text_embedding_itself():
    G, D = tiny(16)
    t = torch.randn(3, TEXT, requires_grad=True)
    M.generator_loss(D(G(torch.randn(3, Z), t), t)).backward()
    assert t.grad is not None and t.grad.abs().sum() > 0


# --- losses against hand-computed values -------------------------------------------------


def sp(x: float) -> float:
    """softplus, by hand: log(1 + e^x)."""
    return math.log1p(math.exp(x))


def test_discriminator_loss_with_cls_by_hand():
    r, w, f = torch.tensor([2.0, -1.0]), torch.tensor([0.5, 3.0]), torch.tensor([-2.0, 1.0])
    # BCE(x, 1) = log(1 + e^-x), BCE(x, 0) = log(1 + e^x), each a mean over 2.
    want = (sp(-2) + sp(1)) / 2 + 0.5 * (sp(0.5) + sp(3)) / 2 + 0.5 * (sp(-2) + sp(1)) / 2
    assert M.discriminator_loss(r, w, f).item() == pytest.approx(want, rel=1e-6)
    zeros = torch.zeros(5)
    assert M.discriminator_loss(zeros, zeros, zeros).item() == pytest.approx(2 * math.log(2))


def test_discriminator_loss_without_cls_by_hand():
    r, f = torch.tensor([2.0, -1.0]), torch.tensor([-2.0, 1.0])
    want = (sp(-2) + sp(1)) / 2 + (sp(-2) + sp(1)) / 2
    assert M.discriminator_loss(r, None, f, cls=False).item() == pytest.approx(want, rel=1e-6)
    with pytest.raises(ValueError, match="wrong_right=None"):
        M.discriminator_loss(r, r, f, cls=False)
    with pytest.raises(ValueError, match="needs wrong_right"):
        M.discriminator_loss(r, None, f)
    with pytest.raises(TypeError, match="logits"):
        M.discriminator_loss(torch.tensor([1, 0]), r, f)


def test_discriminator_loss_is_stable_for_confident_logits():
    big = torch.tensor([200.0, -200.0])
    loss = M.discriminator_loss(big, -big, big)
    assert loss.item() == pytest.approx(100 + 0.5 * 100 + 0.5 * 100)


def test_generator_loss_by_hand():
    f, i = torch.tensor([-2.0, 1.0]), torch.tensor([0.0, 4.0, -3.0])
    plain = (sp(2) + sp(-1)) / 2  # non-saturating: BCE(f, 1) = log(1 + e^-f)
    interp = (sp(0) + sp(-4) + sp(3)) / 3
    assert M.generator_loss(f).item() == pytest.approx(plain, rel=1e-6)
    assert M.generator_loss(f, i).item() == pytest.approx(plain + interp, rel=1e-6)
    assert M.generator_loss(f, i, int_weight=0.5).item() == pytest.approx(plain + interp / 2)


def test_interpolate_embeddings():
    t1, t2 = torch.randn(4, 7, requires_grad=True), torch.randn(4, 7, requires_grad=True)
    out = M.interpolate_embeddings(t1, t2, beta=0.25)
    assert torch.allclose(out, 0.25 * t1 + 0.75 * t2)
    assert torch.allclose(M.interpolate_embeddings(t1, t2), (t1 + t2) / 2)  # beta = 0.5
    assert torch.equal(M.interpolate_embeddings(t1, t2, 1.0), t1.detach())
    out.sum().backward()
    assert torch.allclose(t1.grad, torch.full((4, 7), 0.25))
    assert torch.allclose(t2.grad, torch.full((4, 7), 0.75))
    beta = torch.tensor([[0.0], [1.0], [0.5], [0.2]])  # one beta per sample
    per_sample = M.interpolate_embeddings(t1, t2, beta)
    assert torch.allclose(per_sample[0], t2[0]) and torch.allclose(per_sample[1], t1[1])
    with pytest.raises(ValueError, match="same shape"):
        M.interpolate_embeddings(t1, t2[:3])


# --- CLS pairs: mismatched_indices -------------------------------------------------------


def test_mismatched_indices_always_pick_another_class():
    gen = torch.Generator().manual_seed(0)
    for trial in range(50):
        b = 2 + trial % 30
        classes = torch.randint(0, 2 + trial % 5, (b,), generator=gen)
        if classes.unique().numel() < 2:
            continue
        idx = M.mismatched_indices(classes, gen)
        assert idx.dtype == torch.int64 and idx.shape == (b,)
        assert ((idx >= 0) & (idx < b)).all()
        assert (classes[idx] != classes).all()


def test_mismatched_indices_reach_every_other_class_sample():
    classes = torch.tensor([0, 0, 1, 1, 2])
    gen = torch.Generator().manual_seed(1)
    seen = torch.stack([M.mismatched_indices(classes, gen) for _ in range(300)])  # (300, 5)
    # Sample 0 (class 0) may pair with 2, 3, 4: each about a third of the time.
    counts = torch.bincount(seen[:, 0], minlength=5)
    assert counts[:2].sum() == 0 and (counts[2:] > 60).all()
    assert set(seen[:, 4].tolist()) == {0, 1, 2, 3}


def test_mismatched_indices_are_deterministic_under_a_generator():
    classes = torch.arange(16) % 4
    a = M.mismatched_indices(classes, torch.Generator().manual_seed(7))
    b = M.mismatched_indices(classes, torch.Generator().manual_seed(7))
    c = M.mismatched_indices(classes, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)
    state = torch.get_rng_state()
    M.mismatched_indices(classes, torch.Generator().manual_seed(7))
    assert torch.equal(torch.get_rng_state(), state)  # the global generator is untouched


def test_mismatched_indices_errors():
    with pytest.raises(ValueError, match="only one class"):
        M.mismatched_indices(torch.full((6,), 3))
    with pytest.raises(ValueError, match="only one class"):
        M.mismatched_indices(torch.tensor([1]))
    with pytest.raises(TypeError, match="integer"):
        M.mismatched_indices(torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"\(B,\)"):
        M.mismatched_indices(torch.zeros(2, 3, dtype=torch.long))


# --- variants ----------------------------------------------------------------------------


def test_variants_are_two_switches():
    assert {k: (v.cls, v.int) for k, v in M.VARIANTS.items()} == {
        "gan": (False, False),
        "gan-cls": (True, False),
        "gan-int": (False, True),
        "gan-int-cls": (True, True),
    }
    assert M.variant("GAN_INT_CLS") == M.Variant(cls=True, int=True)
    with pytest.raises(ValueError, match="gan-int-cls"):
        M.variant("gan-cls-int-wgan")
    with pytest.raises(AttributeError):
        M.variant("gan").cls = True  # frozen


@pytest.mark.parametrize("name", list(M.VARIANTS))
def test_one_training_step_of_each_variant(name):
    """The losses each variant uses, wired as a training step; D never sees interpolations."""
    switches = M.variant(name)
    G, D = tiny(16)
    n = 4
    x = torch.rand(n, 3, 16, 16) * 2 - 1
    classes = torch.tensor([0, 1, 0, 2])
    t = torch.randn(n, TEXT)
    s_r, s_f = D(x, t), D(G(torch.randn(n, Z), t).detach(), t)
    s_w = D(x[M.mismatched_indices(classes)], t) if switches.cls else None
    loss_d = M.discriminator_loss(s_r, s_w, s_f, cls=switches.cls)
    want = F.softplus(-s_r).mean() + (
        0.5 * F.softplus(s_w).mean() + 0.5 * F.softplus(s_f).mean()
        if switches.cls
        else F.softplus(s_f).mean()
    )
    assert torch.allclose(loss_d, want)
    g_int = None
    if switches.int:
        t_int = M.interpolate_embeddings(t, t.roll(1, 0))
        g_int = D(G(torch.randn(n, Z), t_int), t_int)
    loss_g = M.generator_loss(D(G(torch.randn(n, Z), t), t), g_int)
    loss_g.backward()
    assert torch.isfinite(loss_g) and G.project_text[0].weight.grad.abs().sum() > 0


# --- init --------------------------------------------------------------------------------


def test_init_statistics():
    torch.manual_seed(0)
    G = M.Generator(64, 16, 16, 16, 16)  # built initialised
    D = M.Discriminator(64, 16, 16, 16)
    conv = torch.cat([m.weight.flatten() for m in [*G.modules(), *D.modules()]
                      if isinstance(m, nn.Conv2d | nn.ConvTranspose2d)])  # fmt: skip
    assert conv.numel() > 50_000
    assert abs(conv.mean().item()) < 1e-3 and conv.std().item() == pytest.approx(0.02, rel=0.03)
    bn = [m for m in [*G.modules(), *D.modules()] if isinstance(m, nn.BatchNorm1d | nn.BatchNorm2d)]
    gamma = torch.cat([m.weight for m in bn]).detach()
    assert gamma.numel() > 500
    assert gamma.mean().item() == pytest.approx(1.0, abs=3e-3)
    assert gamma.std().item() == pytest.approx(0.02, rel=0.15)
    assert all((m.bias == 0).all() for m in bn)
    # Linear layers keep the default U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the official code.
    w = G.project_text[0].weight
    bound = 1 / math.sqrt(64)
    assert w.abs().max() <= bound and w.std().item() == pytest.approx(bound / 3**0.5, rel=0.1)


def test_init_weights_resets_through_apply():
    G, _ = tiny(16)
    with torch.no_grad():
        for p in G.parameters():
            p.fill_(5.0)
    G.apply(M.init_weights)
    assert G.net[0].weight.abs().max() < 0.2  # N(0, 0.02)
    assert (G.net[1].bias == 0).all() and (G.net[1].weight - 1).abs().max() < 0.2
    assert (G.project_text[0].weight == 5.0).all()  # Linear: not the init's business


# --- validation --------------------------------------------------------------------------


def test_generator_validation():
    G, _ = tiny(16)
    with pytest.raises(ValueError, match=r"z must have shape \(B, 5\)"):
        G(torch.randn(2, 7), torch.randn(2, TEXT))
    with pytest.raises(TypeError, match="z must be a float"):
        G(torch.ones(2, Z, dtype=torch.long), torch.randn(2, TEXT))
    with pytest.raises(ValueError, match=r"text must have shape \(2, 12\)"):
        G(torch.randn(2, Z), torch.randn(2, 3, TEXT))
    with pytest.raises(ValueError, match=r"text must have shape \(2, 12\) .* got shape \(3, 12\)"):
        G(torch.randn(2, Z), torch.randn(3, TEXT))
    with pytest.raises(TypeError, match="torch.Tensor"):
        G(torch.randn(2, Z), [[0.0] * TEXT] * 2)
    with pytest.raises(ValueError, match="image_size must be one of"):
        M.Generator(image_size=48)


def test_discriminator_validation():
    _, D = tiny(16)
    t = torch.randn(2, TEXT)
    with pytest.raises(TypeError, match="float tensor in"):
        D(torch.zeros(2, 3, 16, 16, dtype=torch.uint8), t)
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        D(torch.zeros(2, 3, 32, 32), t)
    with pytest.raises(ValueError, match=r"\(N, 3, 16, 16\)"):
        D(torch.zeros(3, 16, 16), t)
    with pytest.raises(ValueError, match=r"text must have shape \(2, 12\) \(one row per image\)"):
        D(torch.zeros(2, 3, 16, 16), torch.randn(4, TEXT))
    with pytest.raises(TypeError, match="text must be a float"):
        D(torch.zeros(2, 3, 16, 16), torch.ones(2, TEXT, dtype=torch.int64))
    D.eval()
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        D(torch.full((2, 3, 16, 16), 255.0), t)
    with pytest.raises(ValueError, match="image_size must be one of"):
        M.Discriminator(image_size=128)
