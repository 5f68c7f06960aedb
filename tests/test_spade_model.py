"""SPADE (Park et al. 2019): the block against a hand computation, the nets' wiring against the
official code (spectral-norm placement, shortcut, D scales, parameter counts), the losses by
hand, TTUR and the linear decay. Tiny widths, 16-64 px."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.errors import DtypeError
from ganlab.models.spade import (
    BETAS,
    OFFICIAL_PARAMETER_COUNTS,
    SPADE,
    ConvEncoder,
    MultiscaleDiscriminator,
    NLayerDiscriminator,
    SPADEGenerator,
    SPADEResnetBlock,
    build_optimizers,
    build_schedulers,
    d_hinge_loss,
    feature_matching_loss,
    g_hinge_loss,
    generator_losses,
    instance_edges,
    kl_loss,
    lr_factor,
    one_hot_segmap,
    perceptual_loss,
    reparameterize,
    semantic_input,
)
from ganlab.nn.spectral import has_spectral_norm

L = 5  # label channels in the tiny tests


def random_map(b=2, size=16, num_classes=L, seed=0, blocks=4):
    """One-hot maps of random blocky labels (blocks x blocks regions): (B, L, size, size)."""
    g = torch.Generator().manual_seed(seed)
    coarse = torch.randint(0, num_classes, (b, blocks, blocks), generator=g)
    labels = coarse.repeat_interleave(size // blocks, 1).repeat_interleave(size // blocks, 2)
    return one_hot_segmap(labels, num_classes)


def reinit(module, std=0.3, seed=0):
    """Non-trivial weights (the official gain 0.02 makes gamma, beta nearly 0)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * std)
    return module


# ------------------------------------------------------------------ inputs


def test_one_hot_segmap_by_hand_and_bad_labels():
    labels = torch.tensor([[[0, 2], [1, 1]]])  # (1, 2, 2)
    m = one_hot_segmap(labels, 3)
    assert m.dtype == torch.float32 and m.shape == (1, 3, 2, 2)
    expected = torch.tensor([[[1, 0], [0, 0]], [[0, 0], [1, 1]], [[0, 1], [0, 0]]]).float()
    assert torch.equal(m[0], expected)
    assert torch.equal(one_hot_segmap(labels[:, None], 3), m)  # (B, 1, H, W) as the official
    with pytest.raises(ValueError, match=r"labels must lie in 0..2, got values in 0..3"):
        one_hot_segmap(torch.tensor([[[0, 3]]]), 3)
    with pytest.raises(ValueError, match="0..2"):
        one_hot_segmap(torch.tensor([[[-1, 0]]]), 3)
    with pytest.raises(DtypeError, match="integer"):
        one_hot_segmap(labels.float(), 3)


def test_instance_edges_by_hand():
    inst = torch.tensor([[[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3], [3, 3, 3, 3]]])
    edges = instance_edges(inst)
    # the 1|2 border (columns 1, 2 of rows 0-1) and the 1,2|3 border (rows 1, 2)
    expected = torch.tensor([[0, 1, 1, 0], [1, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0]]).float()
    assert edges.shape == (1, 1, 4, 4) and torch.equal(edges[0, 0], expected)
    inst = torch.tensor([[[5, 5, 5], [5, 7, 5], [5, 5, 5]]])  # one pixel object
    expected = torch.tensor([[0, 1, 0], [1, 1, 1], [0, 1, 0]]).float()
    assert torch.equal(instance_edges(inst)[0, 0], expected)


def test_semantic_input_adds_the_edge_channel():
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    inst = torch.zeros(2, 8, 8, dtype=torch.long)
    inst[:, :, 4:] = 1
    x = semantic_input(labels, 3, inst)
    assert x.shape == (2, 4, 8, 8)
    assert torch.equal(x[:, 3], instance_edges(inst)[:, 0])
    with pytest.raises(ValueError, match="instance_map must have the labels' shape"):
        semantic_input(labels, 3, inst[:, :4])


# ------------------------------------------------------------------ SPADE


def test_spade_equals_hand_computation():
    torch.manual_seed(0)
    spade = reinit(SPADE(norm_nc=4, label_nc=3, nhidden=5)).train()
    x = torch.randn(2, 4, 8, 8) * 3 + 1
    m = one_hot_segmap(torch.randint(0, 3, (2, 16, 16)), 3)  # twice x's size
    out = spade(x, m)

    mean = x.mean(dim=(0, 2, 3), keepdim=True)
    var = x.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    normalized = (x - mean) / torch.sqrt(var + 1e-5)  # parameter-free BN, batch statistics
    m_small = m[:, :, ::2, ::2]  # nearest 16 -> 8 takes every second pixel
    conv = spade.mlp_shared[0]
    a = F.relu(F.conv2d(m_small, conv.weight, conv.bias, padding=1))
    gamma = F.conv2d(a, spade.mlp_gamma.weight, spade.mlp_gamma.bias, padding=1)
    beta = F.conv2d(a, spade.mlp_beta.weight, spade.mlp_beta.bias, padding=1)
    torch.testing.assert_close(out, normalized * (1 + gamma) + beta, atol=1e-5, rtol=1e-5)
    # the plausible wrong answers give other numbers: gamma without the 1 +, a bilinear map
    assert not torch.allclose(out, normalized * gamma + beta, atol=1e-3)
    g_bil, b_bil = spade.modulation(F.interpolate(m, size=(8, 8), mode="bilinear"), (8, 8))
    assert not torch.allclose(out, normalized * (1 + g_bil) + b_bil, atol=1e-3)


@pytest.mark.parametrize("norm", ["batch", "syncbatch", "instance"])
def test_spade_norm_has_no_affine_parameters(norm):
    spade = SPADE(6, 3, norm=norm, nhidden=4)
    assert list(spade.param_free_norm.parameters()) == []
    assert not spade.param_free_norm.affine
    names = {n.split(".")[0] for n, _ in spade.named_parameters()}
    assert names == {"mlp_shared", "mlp_gamma", "mlp_beta"}
    # 3x3 convs: label_nc -> nhidden, nhidden -> norm_nc twice, with biases
    assert sum(p.numel() for p in spade.parameters()) == (3 * 9 + 1) * 4 + 2 * (4 * 9 + 1) * 6


def test_gamma_beta_follow_the_map_locally():
    """Changing the map in one block changes the output only within the receptive field of
    the two 3x3 convs (2 pixels around it) and does change it there."""
    torch.manual_seed(1)
    spade = reinit(SPADE(3, L, nhidden=6)).train()
    x = torch.randn(2, 3, 16, 16)
    m0 = random_map(size=16)
    labels = m0.argmax(1)
    labels[:, 6:9, 6:9] = (labels[:, 6:9, 6:9] + 1) % L  # a 3x3 region takes another class
    m1 = one_hot_segmap(labels, L)
    diff = (spade(x, m1) - spade(x, m0)).abs().amax(dim=(0, 1))  # (16, 16)
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[4:11, 4:11] = True  # rows/cols 6..8 widened by 2
    assert diff[~inside].max() == 0
    assert diff[6:9, 6:9].min() > 1e-3


# ------------------------------------------------------------------ ResBlk


def test_resblock_learned_shortcut_only_when_widths_change():
    same = SPADEResnetBlock(8, 8, L, nhidden=4)
    assert not same.learned_shortcut and not hasattr(same, "conv_s")
    assert not hasattr(same, "norm_s")
    down = SPADEResnetBlock(8, 4, L, nhidden=4)
    assert down.learned_shortcut
    assert down.conv_s.kernel_size == (1, 1) and down.conv_s.bias is None
    assert down.norm_s.norm_nc == 8
    assert down.conv_0.out_channels == 4 and down.norm_1.norm_nc == 4  # fmiddle = min(8, 4)
    up = SPADEResnetBlock(4, 8, L, nhidden=4)
    assert up.conv_0.out_channels == 4 and up.learned_shortcut


@pytest.mark.parametrize("fin,fout", [(6, 6), (6, 3)])
def test_resblock_order_pre_activation(fin, fout):
    torch.manual_seed(2)
    block = reinit(SPADEResnetBlock(fin, fout, L, nhidden=4)).eval()  # eval: fixed SN, BN stats
    x, m = torch.randn(2, fin, 8, 8), random_map(size=8)
    lrelu = lambda t: F.leaky_relu(t, 0.2)
    dx = block.conv_1(lrelu(block.norm_1(block.conv_0(lrelu(block.norm_0(x, m))), m)))
    x_s = block.conv_s(block.norm_s(x, m)) if fin != fout else x
    torch.testing.assert_close(block(x, m), x_s + dx)


# ------------------------------------------------------------------ spectral norm placement


def tiny_g(**kw):
    args = dict(label_nc=L, image_size=32, ngf=2, nhidden=4, num_upsampling_layers="fewer")
    return SPADEGenerator(**{**args, **kw})


def test_spectral_norm_in_g_on_block_convs_only():
    g = tiny_g(num_upsampling_layers="most", image_size=128)
    normed = {n for n, m in g.named_modules() if has_spectral_norm(m)}
    blocks = ["head_0", "G_middle_0", "G_middle_1", "up_0", "up_1", "up_2", "up_3", "up_4"]
    expected = {f"{b}.conv_{i}" for b in blocks for i in (0, 1)}
    expected |= {f"{b}.conv_s" for b in blocks if getattr(g, b).learned_shortcut}
    assert normed == expected
    assert {b for b in blocks if getattr(g, b).learned_shortcut} == {f"up_{i}" for i in range(5)}
    assert not any(has_spectral_norm(m) for m in (g.fc, g.conv_img))
    assert not any(has_spectral_norm(m) for n, m in g.named_modules() if ".norm_" in n)
    assert not any(has_spectral_norm(m) for m in tiny_g(spectral=False).modules())


def test_spectral_and_instance_norm_in_d_between_first_and_last_conv():
    d = NLayerDiscriminator(L + 3, ndf=4, n_layers=4)
    convs = [m for m in d.modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 5
    assert [has_spectral_norm(c) for c in convs] == [False, True, True, True, False]
    assert [c.bias is None for c in convs] == [False, True, True, True, False]
    assert [c.stride[0] for c in convs] == [2, 2, 2, 1, 1]
    assert [c.out_channels for c in convs] == [4, 8, 16, 32, 1]
    norms = [m for m in d.modules() if isinstance(m, nn.InstanceNorm2d)]
    assert len(norms) == 3 and not any(n.affine for n in norms)


def test_encoder_spectral_instance_on_every_conv():
    e = ConvEncoder(32, ngf=4, z_dim=8)
    convs = [m for m in e.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [4, 8, 16]  # log2(32 / 4) = 3 layers
    assert all(has_spectral_norm(c) and c.bias is None for c in convs)
    assert not has_spectral_norm(e.fc_mu) and not has_spectral_norm(e.fc_var)
    assert e.fc_mu.in_features == 16 * 4 * 4


# ------------------------------------------------------------------ G


@pytest.mark.parametrize(
    "mode,size,start", [("fewer", 32, 2), ("fewer", 64, 4), ("normal", 64, 2), ("more", 64, 1)]
)
def test_generator_shapes(mode, size, start):
    g = tiny_g(image_size=size, num_upsampling_layers=mode)
    assert (g.sh, g.sw) == (start, start)
    out = g(random_map(size=size))
    assert out.shape == (2, 3, size, size) and out.abs().max() <= 1


def test_generator_non_square_and_size_errors():
    g = tiny_g(image_size=(32, 64))
    assert g(random_map(size=64)[:, :, :32]).shape == (2, 3, 32, 64)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*5 = 32.*'fewer'"):
        tiny_g(image_size=48, num_upsampling_layers="normal")
    with pytest.raises(ValueError, match="num_upsampling_layers must be one of"):
        tiny_g(num_upsampling_layers="many")


def test_generator_rejects_bad_maps():
    g = tiny_g()
    m = random_map(size=32)
    with pytest.raises(DtypeError, match="one_hot_segmap"):
        g(m.argmax(1))  # integer labels
    with pytest.raises(ValueError, match="must have 5 channels"):
        g(m[:, :4])
    with pytest.raises(ValueError, match=r"shape \(B, 5, 32, 32\)"):
        g(random_map(size=16))  # map size not the image size
    with pytest.raises(ValueError, match="one-hot"):
        g(m * 0.5)
    with pytest.raises(ValueError, match="only in VAE mode"):
        g(m, z=torch.randn(2, 8))
    gi = tiny_g(use_instance=True)
    with pytest.raises(ValueError, match="6 channels.*instance"):
        gi(m)


def test_generator_reads_the_map_only_through_spade_and_its_input():
    """Every layer that sees the map is G.fc (the downsampled map) or a SPADE's shared conv;
    fixing those to another map's values makes G's output that map's output exactly."""
    torch.manual_seed(3)
    g = reinit(tiny_g(label_nc=7), std=0.2).eval()  # 7 channels: no width of G is 7
    seen = []
    hooks = [
        mod.register_forward_pre_hook(lambda mod, args, name=name: seen.append(name))
        for name, mod in g.named_modules()
        if isinstance(mod, nn.Conv2d) and mod.in_channels == 7
    ]
    m0, m1 = random_map(size=32, num_classes=7, seed=0), random_map(size=32, num_classes=7, seed=1)
    y0 = g(m0)
    for h in hooks:
        h.remove()
    assert set(seen) == {"fc"} | {n for n in seen if n.endswith("mlp_shared.0")}
    assert len(seen) == 1 + sum(isinstance(mod, SPADE) for mod in g.modules())

    # substitute m0 wherever the map enters: the output must then ignore m1 entirely
    hooks = [g.fc.register_forward_pre_hook(lambda mod, args: (F.interpolate(m0, size=(2, 2)),))]
    hooks += [
        mod.register_forward_pre_hook(lambda mod, args: (args[0], m0))
        for mod in g.modules()
        if isinstance(mod, SPADE)
    ]
    y1 = g(m1)
    for h in hooks:
        h.remove()
    torch.testing.assert_close(y1, y0)
    assert not torch.allclose(g(m1), y0, atol=1e-4)  # and m1 itself does change the image


def test_vae_mode_encoder_and_z():
    torch.manual_seed(4)
    e = ConvEncoder(32, ngf=4, z_dim=8)
    g = tiny_g(use_vae=True, z_dim=8)
    assert not hasattr(g.fc, "in_channels") and g.fc.in_features == 8
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    mu, logvar = e(x)
    assert mu.shape == logvar.shape == (2, 8)
    z = reparameterize(mu, logvar, torch.Generator().manual_seed(0))
    m = random_map(size=32)
    assert g(m, z).shape == (2, 3, 32, 32)
    g.eval()
    a = g(m, generator=torch.Generator().manual_seed(5))
    b = g(m, generator=torch.Generator().manual_seed(5))
    c = g(m, generator=torch.Generator().manual_seed(6))
    torch.testing.assert_close(a, b)
    assert not torch.equal(a, c)
    with pytest.raises(ValueError, match=r"z must have shape \(2, 8\)"):
        g(m, torch.randn(2, 9))
    with pytest.raises(ValueError, match="image must have shape"):
        e(torch.zeros(2, 3, 16, 16))


# ------------------------------------------------------------------ D


def test_multiscale_discriminator_scales_and_features():
    torch.manual_seed(5)
    d = MultiscaleDiscriminator(L, ndf=4, use_instance=True).eval()
    m = torch.cat([random_map(size=32), torch.zeros(2, 1, 32, 32)], dim=1)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    out = d(m, x)
    assert len(out) == 2 and all(len(s) == 5 for s in out)

    def size(s, stride):  # conv 4x4, padding 2
        return (s + 4 - 4) // stride + 1

    for k, scale in enumerate(out):
        s = 32 // 2**k  # avgpool 3x3 / 2 / pad 1 halves
        sizes = []
        for stride in (2, 2, 2, 1, 1):
            s = size(s, stride)
            sizes.append(s)
        assert [t.shape[-1] for t in scale] == sizes
        assert [t.shape[1] for t in scale] == [4, 8, 16, 32, 1]
    xin = torch.cat([m, x], dim=1)
    second = d.discriminators[1](F.avg_pool2d(xin, 3, 2, 1, count_include_pad=False))
    torch.testing.assert_close(out[1][-1], second[-1])
    assert d.discriminators[0].model[0][0].in_channels == L + 1 + 3


def test_discriminator_rejects_mismatched_inputs():
    d = MultiscaleDiscriminator(L, ndf=4)
    m, x = random_map(size=32), torch.zeros(2, 3, 32, 32)
    with pytest.raises(ValueError, match=r"segmap \(same height and width as the image\)"):
        d(random_map(size=16), x)
    with pytest.raises(ValueError, match=r"image must have shape \(B, 3, H, W\)"):
        d(m, torch.zeros(2, 4, 32, 32))
    with pytest.raises(ValueError, match="must have 5 channels"):
        d(m[:, :3], x)


# ------------------------------------------------------------------ losses


def test_hinge_losses_by_hand():
    real = torch.tensor([0.5, 2.0, -1.0])
    fake = torch.tensor([-2.0, 0.3, 1.0])
    # relu(1 - real) = (0.5, 0, 2) -> 5/6; relu(1 + fake) = (0, 1.3, 2) -> 1.1
    torch.testing.assert_close(d_hinge_loss(real, fake), torch.tensor(5 / 6 + 1.1))
    torch.testing.assert_close(g_hinge_loss(fake), torch.tensor(-(-2.0 + 0.3 + 1.0) / 3))
    # multiscale: the last tensor of each list, averaged over the scales
    f = torch.zeros(1)
    real2 = [[f, real.view(1, 1, 1, 3)], [f, torch.full((1, 1, 2, 2), 3.0)]]
    fake2 = [[f, fake.view(1, 1, 1, 3)], [f, torch.full((1, 1, 2, 2), -3.0)]]
    torch.testing.assert_close(d_hinge_loss(real2, fake2), torch.tensor((5 / 6 + 1.1) / 2))
    torch.testing.assert_close(g_hinge_loss(fake2), torch.tensor((0.7 / 3 + 3.0) / 2))
    # swapped signs would reward D for calling fakes real
    assert d_hinge_loss(fake, real) != d_hinge_loss(real, fake)


def test_feature_matching_by_hand_and_real_is_constant():
    real = [[torch.zeros(1, 2, 2, 2), torch.ones(1, 1, 3, 3), torch.zeros(1, 1, 1, 1)]] * 2
    real = [[t.clone().requires_grad_() for t in s] for s in real]
    fake = [
        [
            torch.full((1, 2, 2, 2), 0.5),
            torch.full((1, 1, 3, 3), 3.0),
            torch.full((1, 1, 1, 1), 9.0),
        ],
        [torch.full((1, 2, 2, 2), -1.0), torch.ones(1, 1, 3, 3), torch.full((1, 1, 1, 1), 9.0)],
    ]
    fake = [[t.requires_grad_() for t in s] for s in fake]
    loss = feature_matching_loss(fake, real)  # logits (last) left out
    torch.testing.assert_close(loss, torch.tensor(10 / 2 * ((0.5 + 2.0) + (1.0 + 0.0))))
    loss.backward()
    assert all(t.grad is None for s in real for t in s)
    assert fake[0][0].grad is not None and fake[0][-1].grad is None
    with pytest.raises(ValueError, match="same scales and layers"):
        feature_matching_loss(fake, [real[0]])


def test_perceptual_loss_by_hand_with_a_pluggable_net():
    net = lambda x: [x, 2 * x[:, :1]]
    fake = torch.full((1, 3, 2, 2), 0.5, requires_grad=True)
    real = torch.zeros(1, 3, 2, 2, requires_grad=True)
    loss = perceptual_loss(fake, real, net, weights=(0.5, 1.0))
    torch.testing.assert_close(loss, torch.tensor(10 * (0.5 * 0.5 + 1.0 * 1.0)))
    loss.backward()
    assert real.grad is None and fake.grad is not None
    with pytest.raises(ValueError, match="returned 2 feature maps, but 5 weights"):
        perceptual_loss(fake, real, net)
    with pytest.raises(TypeError, match="callable"):
        perceptual_loss(fake, real, None)


def test_kl_loss_by_hand_is_the_official_sum():
    mu = torch.tensor([[1.0, 0.0], [0.0, -2.0]])
    logvar = torch.tensor([[0.0, 1.0], [-1.0, 0.0]])
    official = -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())
    torch.testing.assert_close(kl_loss(mu, logvar), 0.05 * official)
    # by hand: 0.5 * [(1 + 1 - 1 - 0) + (e - 1 - 1) + (1/e - 1 + 1) + (1 + 4 - 1)]
    e = torch.tensor(1.0).exp()
    torch.testing.assert_close(kl_loss(mu, logvar), 0.05 * 0.5 * (1 + e - 2 + 1 / e + 4))


def test_generator_losses_terms_and_total():
    f = [[torch.ones(1, 2, 2, 2), torch.full((1, 1, 2, 2), 0.5)]]
    r = [[torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 2, 2)]]
    mu, logvar = torch.zeros(2, 3), torch.zeros(2, 3)
    img = torch.zeros(1, 3, 4, 4)
    losses = generator_losses(
        f, r, img + 0.1, img, perceptual_net=lambda x: [x] * 5, mu=mu, logvar=logvar
    )
    assert set(losses) == {"GAN", "GAN_Feat", "VGG", "KLD", "total"}
    torch.testing.assert_close(losses["GAN"], torch.tensor(-0.5))
    torch.testing.assert_close(losses["GAN_Feat"], torch.tensor(10.0))
    torch.testing.assert_close(
        losses["VGG"], torch.tensor(10 * 0.1 * sum((1 / 32, 1 / 16, 1 / 8, 1 / 4, 1)))
    )
    torch.testing.assert_close(losses["KLD"], torch.tensor(0.0))
    torch.testing.assert_close(losses["total"], sum(v for k, v in losses.items() if k != "total"))
    assert set(generator_losses(f, r)) == {"GAN", "GAN_Feat", "total"}  # no VGG without a net


def test_gradients_flow_through_g_d_and_e():
    torch.manual_seed(6)
    g, d = tiny_g(use_vae=True, z_dim=8), MultiscaleDiscriminator(L, ndf=4)
    e = ConvEncoder(32, ngf=4, z_dim=8)
    m, x = random_map(size=32), torch.rand(2, 3, 32, 32) * 2 - 1
    mu, logvar = e(x)
    fake = g(m, reparameterize(mu, logvar))
    losses = generator_losses(d(m, fake), d(m, x), mu=mu, logvar=logvar)
    losses["total"].backward()
    for net in (g, e):
        for name, p in net.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
    d.zero_grad()
    d_hinge_loss(d(m, x), d(m, fake.detach())).backward()
    for name, p in d.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        # the logits' bias gets +1 from every fake patch and -1 from every real one while all
        # hinges are active (as at init): exactly 0, as it should
        assert p.grad.abs().sum() > 0 or name.endswith("model.4.0.bias"), name


# ------------------------------------------------------------------ optimisers and schedule


def test_ttur_optimizers():
    g, d, e = tiny_g(), MultiscaleDiscriminator(L, ndf=4), ConvEncoder(32, ngf=4, z_dim=8)
    opt_g, opt_d = build_optimizers(g, d, e)
    assert opt_g.param_groups[0]["lr"] == pytest.approx(1e-4)
    assert opt_d.param_groups[0]["lr"] == pytest.approx(4e-4)
    assert opt_g.param_groups[0]["betas"] == opt_d.param_groups[0]["betas"] == BETAS == (0.0, 0.9)
    n_ge = sum(1 for _ in g.parameters()) + sum(1 for _ in e.parameters())
    assert len(opt_g.param_groups[0]["params"]) == n_ge  # E trains with G's optimiser
    opt_g, opt_d = build_optimizers(g, d, ttur=False)
    assert opt_g.param_groups[0]["lr"] == opt_d.param_groups[0]["lr"] == pytest.approx(2e-4)
    assert opt_g.param_groups[0]["betas"] == (0.5, 0.999)


def test_linear_decay_matches_the_official_update_rule():
    niter, niter_decay, lr0 = 3, 4, 2e-4
    official, lr = [], lr0  # the official trainer: lr in effect during each epoch 1..7
    for epoch in range(1, niter + niter_decay + 1):
        official.append(lr)
        if epoch > niter:  # update_learning_rate(epoch) after the epoch
            lr = lr - lr0 / niter_decay
    ours = [lr0 * lr_factor(t, niter, niter_decay) for t in range(niter + niter_decay)]
    assert ours == pytest.approx(official)
    assert lr_factor(niter + niter_decay, niter, niter_decay) == 0.0
    g, d = tiny_g(), MultiscaleDiscriminator(L, ndf=4)
    opt_g, opt_d = build_optimizers(g, d)
    sched_g, sched_d = build_schedulers(opt_g, opt_d, niter, niter_decay)
    seen = []
    for _ in range(niter + niter_decay):
        seen.append((opt_g.param_groups[0]["lr"], opt_d.param_groups[0]["lr"]))
        opt_g.step(), opt_d.step(), sched_g.step(), sched_d.step()
    assert [s[0] for s in seen] == pytest.approx([o / 2 for o in official])
    assert [s[1] for s in seen] == pytest.approx([o * 2 for o in official])


# ------------------------------------------------------------------ official sizes


def test_parameter_counts_equal_the_official_at_ade20k_sizes():
    """151 label channels (150 classes + unknown), 256 px, ngf = ndf = 64, 'normal'; the
    official numbers come from NVlabs/SPADE's own classes (see OFFICIAL_PARAMETER_COUNTS).

    Spectral norm adds no parameters (``weight`` becomes ``parametrizations.weight.original``,
    u and v are buffers; checked on a small G), so the big nets are built without it: its
    power iterations are slow on the meta device."""
    count = lambda net: sum(p.numel() for p in net.parameters())
    assert count(tiny_g()) == count(tiny_g(spectral=False))
    assert count(ConvEncoder(32, 4, 8)) == count(ConvEncoder(32, 4, 8, spectral=False))
    d = lambda spectral: MultiscaleDiscriminator(L, 4, spectral=spectral)
    assert count(d(True)) == count(d(False))
    with torch.device("meta"):
        g = lambda **kw: SPADEGenerator(151, spectral=False, **kw)
        assert count(g()) == OFFICIAL_PARAMETER_COUNTS["generator"]
        assert count(g(use_vae=True)) == OFFICIAL_PARAMETER_COUNTS["generator_vae"]
        d_official = MultiscaleDiscriminator(151, spectral=False)
        assert count(d_official) == OFFICIAL_PARAMETER_COUNTS["discriminator"]
        assert count(ConvEncoder(256, spectral=False)) == OFFICIAL_PARAMETER_COUNTS["encoder"]
