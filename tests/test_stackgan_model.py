"""StackGAN's two stages: shapes, official parameter counts, freezing, conditioning, losses."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.models.stackgan import (
    KL_WEIGHT,
    PAPER_KL_WEIGHT,
    BottleneckResidual,
    ResidualBlock,
    StageIDiscriminator,
    StageIGenerator,
    StageIIDiscriminator,
    StageIIGenerator,
    discriminator_loss,
    generator_loss,
    wrong_pairs,
)


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)  # after conftest's fixture: the CI machine's cores are shared


def count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny_stage1(image_size=16, text_dim=10, c_dim=4, z_dim=3, ngf=2):
    torch.manual_seed(0)
    return StageIGenerator(text_dim, c_dim=c_dim, z_dim=z_dim, ngf=ngf, image_size=image_size)


# --- shapes ------------------------------------------------------------------------------


@pytest.mark.parametrize("s1", [16, 32, 64])
def test_shapes_at_every_stage1_size(s1):
    g1 = tiny_stage1(s1)
    g2 = StageIIGenerator(g1, ngf=4, num_residual=1)
    d1 = StageIDiscriminator(c_dim=4, ndf=2, image_size=s1)
    d2 = StageIIDiscriminator(c_dim=4, ndf=1, image_size=4 * s1)
    t, z = torch.randn(2, 10), g1.sample_z(2)
    image, mu, logvar = g1(t, z)
    assert image.shape == (2, 3, s1, s1) and mu.shape == logvar.shape == (2, 4)
    assert image.abs().max() <= 1
    assert d1(image, mu.detach()).shape == (2,)
    stage1_image, big, mu2, logvar2 = g2(t, z)
    assert stage1_image.shape == (2, 3, s1, s1) and big.shape == (2, 3, 4 * s1, 4 * s1)
    cond, uncond = d2(big, mu2.detach())
    assert cond.shape == uncond.shape == (2,)


def test_stage1_generator_has_the_official_parameter_count():
    # StackGAN-Pytorch STAGE1_G at the official sizes, counted by hand:
    ca = 1024 * 256 + 256  # FC text -> [mu, logvar]
    fc = 228 * 1024 * 16 + 2 * 1024 * 16  # Linear(z+c -> 4*4*1024, no bias) + BatchNorm1d
    ups = sum(a * b * 9 + 2 * b for a, b in [(1024, 512), (512, 256), (256, 128), (128, 64)])
    out = 64 * 3 * 9  # conv3x3 -> RGB, no bias
    assert count(StageIGenerator(1024)) == ca + fc + ups + out == 10_301_248


def test_discriminators_have_the_official_parameter_counts():
    def head(ndf, c):  # conv3x3(ndf*8 + c -> ndf*8) + BN + conv 4x4 -> 1 (with bias)
        return (ndf * 8 + c) * ndf * 8 * 9 + 2 * ndf * 8 + ndf * 8 * 16 + 1

    ndf, c = 64, 128
    convs1 = 3 * 64 * 16 + sum(a * b * 16 + 2 * b for a, b in [(64, 128), (128, 256), (256, 512)])
    assert count(StageIDiscriminator()) == convs1 + head(ndf, c)
    widths = [64, 128, 256, 512, 1024, 2048]
    convs2 = 3 * 64 * 16 + sum(a * b * 16 + 2 * b for a, b in zip(widths, widths[1:]))
    convs2 += 2048 * 1024 * 9 + 2 * 1024 + 1024 * 512 * 9 + 2 * 512
    uncond = 512 * 16 + 1
    assert count(StageIIDiscriminator()) == convs2 + head(ndf, c) + uncond
    # TF variant: D compresses the raw embedding with its own FC
    assert (
        count(StageIDiscriminator(text_dim=1024)) == count(StageIDiscriminator()) + 1024 * 128 + 128
    )


def test_stage2_generator_has_the_official_parameter_count():
    ngf, c = 128, 128
    g1 = StageIGenerator(1024)
    g2 = StageIIGenerator(g1)
    own = 1024 * 256 + 256  # its own CA
    own += 3 * ngf * 9 + ngf * 2 * ngf * 16 + 2 * 2 * ngf + 2 * ngf * 4 * ngf * 16 + 2 * 4 * ngf
    own += (4 * ngf + c) * 4 * ngf * 9 + 2 * 4 * ngf  # joint conv3x3 + BN
    own += 4 * (2 * (4 * ngf * 4 * ngf * 9 + 2 * 4 * ngf))  # 4 residual blocks
    widths = [4 * ngf, 2 * ngf, ngf, ngf // 2, ngf // 4]
    own += sum(a * b * 9 + 2 * b for a, b in zip(widths, widths[1:]))
    own += ngf // 4 * 3 * 9
    trainable = sum(p.numel() for p in g2.parameters() if p.requires_grad)
    assert trainable == own
    assert count(g2) == own + count(g1)
    assert len(StageIIGenerator(g1, num_residual=2).residual) == 2  # COCO setting


def _block_inputs(model, run):
    """The (C, H, W) of every bottleneck residual's input while ``run()`` runs."""
    sizes = []
    hooks = [
        m.register_forward_hook(lambda _m, inp, _out: sizes.append(tuple(inp[0].shape[1:])))
        for m in model.modules()
        if isinstance(m, BottleneckResidual)
    ]
    run()
    for h in hooks:
        h.remove()
    return sizes


@pytest.mark.parametrize("s1", [16, 32, 64])
def test_residual_stage1_has_the_tf_codes_branches(s1):
    """``residual=True``: G0 has a bottleneck branch on the FC's 4x4 map and after the first
    upsample (8x8), D0 one on its 4x4 features, as the TF code's default network; the
    default (the PyTorch port's) has none."""
    g, d = tiny_stage1(s1), StageIDiscriminator(c_dim=4, ndf=2, image_size=s1)
    torch.manual_seed(0)
    g_res = StageIGenerator(10, c_dim=4, z_dim=3, ngf=2, image_size=s1, residual=True)
    d_res = StageIDiscriminator(c_dim=4, ndf=2, image_size=s1, residual=True)
    t, z = torch.randn(2, 10), torch.randn(2, 3)
    image, mu, _ = g_res(t, z)
    assert image.shape == (2, 3, s1, s1) and image.abs().max() <= 1
    assert _block_inputs(g_res, lambda: g_res(t, z)) == [(16, 4, 4), (8, 8, 8)]
    assert _block_inputs(d_res, lambda: d_res(image, mu.detach())) == [(16, 4, 4)]
    assert _block_inputs(g, lambda: g(t, z)) == _block_inputs(d, lambda: d(image, mu)) == []
    assert isinstance(g_res.fc[-1], nn.Identity)  # BN's output enters the block, ReLU after
    assert not any(isinstance(m, nn.ReLU) for m in g_res.upsample[1][:-1])


def test_residual_stage1_generator_has_the_tf_codes_parameter_count():
    def bottleneck(c):  # 1x1 c -> c/4, 3x3 c/4 -> c/4, 3x3 c/4 -> c; BN after each
        return c * c // 4 + 2 * c // 4 + (c // 4) ** 2 * 9 + 2 * c // 4 + c // 4 * c * 9 + 2 * c

    extra = bottleneck(1024) + bottleneck(512)
    assert count(StageIGenerator(1024, residual=True)) == count(StageIGenerator(1024)) + extra
    d_extra = bottleneck(512)
    assert count(StageIDiscriminator(residual=True)) == count(StageIDiscriminator()) + d_extra


# --- Stage-II freezes Stage-I -----------------------------------------------------------


def test_stage1_is_frozen_detached_and_stays_in_eval_mode():
    g1 = tiny_stage1()
    g2 = StageIIGenerator(g1, ngf=4, num_residual=1)
    assert all(not p.requires_grad for p in g1.parameters())
    g2.train()
    assert g2.training and not g1.training and g2.encoder.training
    stats = {k: v.clone() for k, v in g1.state_dict().items()}
    t, z = torch.randn(4, 10), g1.sample_z(4)
    stage1_image, image, mu, logvar = g2(t, z)
    assert not stage1_image.requires_grad
    (image.sum() + mu.sum()).backward()
    assert all(p.grad is None for p in g1.parameters())
    assert all(p.grad is not None for p in g2.parameters() if p.requires_grad)
    for k, v in g1.state_dict().items():  # BN running stats did not move
        assert torch.equal(v, stats[k]), k


def test_stage2_reuses_stage1_image_and_draws_a_fresh_ca_sample():
    g1 = tiny_stage1()
    g2 = StageIIGenerator(g1, ngf=4, num_residual=1).eval()
    assert g2.ca is not g1.ca
    t, z = torch.randn(3, 10), g1.sample_z(3)
    stage1_image, _, mu, logvar = g2(t, z, generator=torch.Generator().manual_seed(9))
    want, mu1, _ = g1(t, z, generator=torch.Generator().manual_seed(9))
    torch.testing.assert_close(stage1_image, want)  # Stage-I drew its eps first
    torch.testing.assert_close(mu, g2.ca.encode(t)[0])  # Stage-II's own CA
    assert not torch.allclose(mu, mu1)
    # the fresh CA sample reaches the image: a different eps, a different image
    _, a, _, _ = g2(t, z, generator=torch.Generator().manual_seed(1))
    _, b, _, _ = g2(t, z, generator=torch.Generator().manual_seed(1))
    _, c, _, _ = g2(t, z, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_refine_sketch_adds_a_correction_to_the_upsampled_sketch():
    g2 = StageIIGenerator(tiny_stage1(), ngf=4, num_residual=1, refine_sketch=True).eval()
    t, z = torch.randn(3, 10), g2.sample_z(3)
    with torch.no_grad():
        g2.to_image[0].weight.zero_()  # no correction (the conv has no bias)
        sketch, image, _, _ = g2(t, z, generator=torch.Generator().manual_seed(3))
    assert image.shape == (3, 3, 64, 64)
    up = F.interpolate(sketch, scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(image, up.clamp(-0.99, 0.99))  # exactly the sketch, 4x
    with torch.no_grad():
        g2.to_image[0].weight.fill_(1.0)  # h >= 0 after ReLU: a correction >= 0
        _, moved, _, _ = g2(t, z, generator=torch.Generator().manual_seed(3))
    assert (moved - image).min() > -1e-6 and (moved - image).max() > 0 and moved.abs().max() < 1
    # the default is the paper's: the image is tanh(conv(h)), the sketch only through the code
    plain = StageIIGenerator(tiny_stage1(), ngf=4, num_residual=1).eval()
    assert not plain.refine_sketch
    with torch.no_grad():
        plain.to_image[0].weight.zero_()
        assert plain(t, z)[1].abs().max() == 0


@pytest.mark.parametrize("code_size, up_blocks", [(None, 4), (4, 4), (8, 3), (16, 2)])
def test_code_size_is_the_papers_m_g(code_size, up_blocks):
    """M_g, the side of the sketch's code: a quarter of the sketch by default (the paper's 16 of
    64), or finer; the encoder halves the size fewer times and fewer up blocks regrow it."""
    g2 = StageIIGenerator(tiny_stage1(), ngf=8, num_residual=1, code_size=code_size).eval()
    assert g2.code_size == (code_size or 4) and len(g2.upsample) == up_blocks
    codes = []
    g2.encoder.register_forward_hook(lambda m, i, o: codes.append(o.shape))
    with torch.no_grad():
        _, image, _, _ = g2(torch.randn(2, 10), g2.sample_z(2))
    assert codes == [(2, 32, g2.code_size, g2.code_size)] and image.shape == (2, 3, 64, 64)
    assert g2.to_image[0].in_channels == 32 // 2**up_blocks


@pytest.mark.parametrize("refine", [False, True])
@pytest.mark.parametrize("code_size, up_blocks", [(None, 3), (8, 2), (16, 1)])
def test_scale_two_grows_the_sketch_twice_with_one_up_block_fewer(code_size, up_blocks, refine):
    """``scale=2`` (a course option; the paper's is 4): a 16 px sketch becomes 32 px, one
    upsample block fewer than the paper's Stage-II for the same code; its D reads 32 px."""
    g2 = StageIIGenerator(
        tiny_stage1(), ngf=8, num_residual=1, code_size=code_size, scale=2, refine_sketch=refine
    ).eval()
    paper = StageIIGenerator(tiny_stage1(), ngf=8, num_residual=1, code_size=code_size)
    assert len(g2.upsample) == up_blocks == len(paper.upsample) - 1
    assert (g2.scale, g2.image_size, paper.image_size) == (2, 32, 64)
    with torch.no_grad():
        sketch, image, _, _ = g2(torch.randn(2, 10), g2.sample_z(2))
    assert sketch.shape == (2, 3, 16, 16) and image.shape == (2, 3, 32, 32)
    assert image.abs().max() <= 1
    d2 = StageIIDiscriminator(c_dim=4, ndf=1, image_size=32)
    assert [x.shape for x in d2(image, torch.randn(2, 4))] == [(2,), (2,)]
    strided = [m for m in d2.encode.modules() if isinstance(m, nn.Conv2d) and m.stride == (2, 2)]
    assert len(strided) == 3  # 32 -> 4


def test_scale_two_refines_the_sketch_upsampled_twice():
    """With a zero correction, a scale-2 refining Stage-II returns its sketch upsampled 2x."""
    g2 = StageIIGenerator(tiny_stage1(), ngf=4, num_residual=1, refine_sketch=True, scale=2)
    g2.eval()
    with torch.no_grad():
        g2.to_image[0].weight.zero_()
        g2.to_image[0].bias.zero_() if g2.to_image[0].bias is not None else None
        sketch, image, _, _ = g2(torch.randn(2, 10), g2.sample_z(2))
    up = F.interpolate(sketch, scale_factor=2, mode="bilinear", align_corners=False)
    torch.testing.assert_close(image, up.clamp(-0.99, 0.99), atol=1e-5, rtol=0)


@pytest.mark.parametrize("bad", [1, 3, 8])
def test_stage2_scale_must_be_two_or_four(bad):
    with pytest.raises(ValueError, match=r"scale \(Stage-II's size over Stage-I's\)"):
        StageIIGenerator(tiny_stage1(), ngf=8, scale=bad)


def test_code_size_must_divide_the_sketch_into_its_whole_half_or_quarter():
    for bad in (2, 3, 32):
        with pytest.raises(ValueError, match="code_size .M_g. must be the sketch's side s1 = 16"):
            StageIIGenerator(tiny_stage1(), ngf=8, code_size=bad)


def test_stage2_rejects_a_non_stage1_model():
    with pytest.raises(TypeError, match="StageIGenerator"):
        StageIIGenerator(nn.Linear(2, 2))


# --- conditioning inside D ---------------------------------------------------------------


def test_discriminator_replicates_the_condition_over_4x4():
    torch.manual_seed(3)
    d = StageIDiscriminator(c_dim=5, ndf=2, image_size=32).eval()
    x = torch.rand(3, 3, 32, 32) * 2 - 1
    cond = torch.randn(3, 5)
    feats = d.features(x)
    assert feats.shape == (3, 16, 4, 4)
    maps = cond.view(3, 5, 1, 1).repeat(1, 1, 4, 4)  # as the official code does
    head = d.get_cond_logits
    want = head.out(head.joint(torch.cat([feats, maps], 1))).view(-1)
    torch.testing.assert_close(d(x, cond), want)
    assert not torch.allclose(d(x, cond), d(x, cond.flip(0)))


def test_discriminator_with_text_dim_compresses_the_raw_embedding():
    torch.manual_seed(4)
    d = StageIDiscriminator(c_dim=5, ndf=2, image_size=16, text_dim=12).eval()
    x, t = torch.rand(2, 3, 16, 16) * 2 - 1, torch.randn(2, 12)
    compressed = F.leaky_relu(t @ d.compress[0].weight.T + d.compress[0].bias, 0.2)
    torch.testing.assert_close(d(x, t), d.get_cond_logits(d.features(x), compressed))
    with pytest.raises(ValueError, match=r"\(2, 12\)"):
        d(x, torch.randn(2, 5))


def test_stage2_discriminator_unconditional_logits_ignore_the_text():
    torch.manual_seed(5)
    d = StageIIDiscriminator(c_dim=3, ndf=1, image_size=64).eval()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    c1, u1 = d(x, torch.randn(2, 3))
    c2, u2 = d(x, torch.randn(2, 3))
    torch.testing.assert_close(u1, u2)
    assert not torch.allclose(c1, c2)


def test_wrong_pairs_shift_the_conditions_like_the_port():
    f, c = torch.arange(4.0), torch.arange(4.0) * 10
    fw, cw = wrong_pairs(f, c)
    assert fw.tolist() == [0, 1, 2] and cw.tolist() == [10, 20, 30]
    with pytest.raises(ValueError):
        wrong_pairs(f[:1], c[:1])


# --- residual block ----------------------------------------------------------------------


def test_residual_block_matches_a_functional_reference():
    torch.manual_seed(6)
    block = ResidualBlock(4)
    x = torch.randn(2, 4, 5, 5)
    for mode in (True, False):
        block.train(mode)
        with torch.no_grad():
            h = F.relu(block.bn1(block.conv1(x)))
            want = F.relu(block.bn2(block.conv2(h)) + x)
        torch.testing.assert_close(block(x), want)
    assert sorted(block.state_dict()) == sorted(
        [f"conv{i}.weight" for i in (1, 2)]
        + [
            f"bn{i}.{k}"
            for i in (1, 2)
            for k in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")
        ]
    )


# --- losses ------------------------------------------------------------------------------


def softplus(x):
    return torch.log1p(torch.exp(x))  # fine for the moderate logits used here


def test_discriminator_loss_is_matching_aware():
    gen = torch.Generator().manual_seed(7)
    r, w, f = (torch.randn(n, generator=gen, dtype=torch.float64) for n in (6, 5, 6))
    want = softplus(-r).mean() + (softplus(w).mean() + softplus(f).mean()) / 2
    torch.testing.assert_close(discriminator_loss(r, w, f), want)
    ru, fu = (
        torch.randn(6, generator=gen, dtype=torch.float64),
        torch.randn(6, generator=gen, dtype=torch.float64),
    )
    port = (softplus(-r).mean() + softplus(-ru).mean()) / 2 + (
        softplus(f).mean() + softplus(w).mean() + softplus(fu).mean()
    ) / 3
    torch.testing.assert_close(discriminator_loss(r, w, f, ru, fu), port)
    with pytest.raises(ValueError, match="both"):
        discriminator_loss(r, w, f, real_uncond=ru)
    with pytest.raises(ValueError, match=r"\(B,\)"):
        discriminator_loss(r[:, None], w, f)


def test_generator_loss_matches_the_official_kl_scale():
    gen = torch.Generator().manual_seed(8)
    f = torch.randn(4, generator=gen, dtype=torch.float64)
    fu = torch.randn(4, generator=gen, dtype=torch.float64)
    mu = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    logvar = torch.randn(4, 6, generator=gen, dtype=torch.float64)
    official_kl = (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean()  # port's KL_loss
    assert KL_WEIGHT == 2.0 and PAPER_KL_WEIGHT == 1.0
    torch.testing.assert_close(
        generator_loss(f, mu, logvar), softplus(-f).mean() + 2.0 * official_kl
    )
    torch.testing.assert_close(
        generator_loss(f, mu, logvar, kl_weight=PAPER_KL_WEIGHT, fake_uncond=fu),
        softplus(-f).mean() + softplus(-fu).mean() + official_kl,
    )


# --- validation and init -----------------------------------------------------------------


def test_validation_errors_name_what_was_expected():
    with pytest.raises(ValueError, match=r"\(16, 32, 64\)"):
        StageIGenerator(10, image_size=128)
    with pytest.raises(ValueError, match=r"\(32, 64, 128, 256\)"):  # 2x or 4x a Stage-I size
        StageIIDiscriminator(image_size=16)
    with pytest.raises(ValueError, match="multiple of 4"):
        StageIIGenerator(tiny_stage1(), ngf=6)
    g1 = tiny_stage1()
    with pytest.raises(ValueError, match=r"z must have shape \(2, 3\)"):
        g1(torch.randn(2, 10), torch.randn(2, 4))
    d = StageIDiscriminator(c_dim=4, ndf=2, image_size=16).eval()
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        d(torch.zeros(2, 3, 32, 32), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        d(torch.full((2, 3, 16, 16), 3.0), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"shape \(2, 4\) \(one row per image\)"):
        d(torch.zeros(2, 3, 16, 16), torch.zeros(3, 4))


def test_weights_start_from_n_0_002():
    d = StageIIDiscriminator(c_dim=8, ndf=8, image_size=64)
    w = d.encode[-3].weight  # conv3x3 256 -> 64: 147k weights
    assert abs(w.mean().item()) < 1e-3 and abs(w.std().item() - 0.02) < 1e-3
    bn = d.encode[-2]
    assert abs(bn.weight.mean().item() - 1) < 0.01 and bn.bias.abs().max() == 0
