"""AttnGAN's generator, discriminators and losses: shapes, the official layer sizes counted by
hand, what the words may and may not change, padding, and the losses against formulas."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from ganlab.models.attngan import (
    EMA_DECAY,
    LAMBDA_DAMSM,
    AttentionStage,
    Discriminator,
    Generator,
    InitStage,
    ResBlock,
    build_discriminators,
    discriminator_loss,
    generator_loss,
)
from ganlab.nn.attention import padding_mask
from ganlab.train.ema import EMA


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


D_TEXT, T = 8, 6


def _tiny(num_stages=3, base_size=16, seed=0):
    torch.manual_seed(seed)
    g = Generator(text_dim=D_TEXT, c_dim=5, z_dim=7, ngf=4, base_size=base_size,
                  num_stages=num_stages, num_residual=2)  # fmt: skip
    return g


def _text(b=3, seed=1):
    gen = torch.Generator().manual_seed(seed)
    sentence = torch.randn(b, D_TEXT, generator=gen)
    words = torch.randn(b, D_TEXT, T, generator=gen)
    lengths = torch.tensor([6, 3, 4, 5, 2][:b])
    return sentence, words, padding_mask(lengths, T), gen


@pytest.mark.parametrize("num_stages,base", [(1, 16), (2, 16), (3, 16), (3, 8)])
def test_generator_shapes_per_stage(num_stages, base):
    g = _tiny(num_stages, base_size=base)
    sentence, words, mask, gen = _text()
    z = g.sample_z(3, generator=gen)
    images, maps, mu, logvar = g(z, sentence, words, mask)
    sizes = [base * 2**i for i in range(num_stages)]
    assert [tuple(x.shape) for x in images] == [(3, 3, s, s) for s in sizes]
    assert [tuple(a.shape) for a in maps] == [(3, T, s, s) for s in sizes[:-1]]
    assert mu.shape == logvar.shape == (3, 5)
    assert all(x.abs().max() <= 1 for x in images)


def _linear(i, o, bias=True):
    return i * o + (o if bias else 0)


def _conv(i, o, k, bias=False):
    return i * o * k * k + (o if bias else 0)


def test_official_size_generator_has_the_official_layer_sizes():
    # Parameters counted from the official model.py (ngf 32, nef 256, c 100, z 100, R 2).
    ngf, nef, c, z = 32, 256, 100, 100
    ca = _linear(nef, 4 * c)
    init = _linear(c + z, ngf * 16 * 16 * 2, bias=False) + 2 * ngf * 16 * 16 * 2
    widths = [ngf * 16, ngf * 8, ngf * 4, ngf * 2, ngf]
    init += sum(_conv(a, 2 * b, 3) + 2 * 2 * b for a, b in zip(widths, widths[1:]))
    res = _conv(2 * ngf, 4 * ngf, 3) + 2 * 4 * ngf + _conv(2 * ngf, 2 * ngf, 3) + 2 * 2 * ngf
    stage = nef * ngf + 2 * res + _conv(2 * ngf, 2 * ngf, 3) + 2 * 2 * ngf
    heads = 3 * _conv(ngf, 3, 3)
    g = Generator()
    assert sum(p.numel() for p in g.init_stage.parameters()) == init
    assert sum(p.numel() for p in g.stages[0].parameters()) == stage
    assert sum(p.numel() for p in g.parameters()) == ca + init + 2 * stage + heads
    assert g.init_stage.width == 512  # ngf * 16 at 4x4, as INIT_STAGE_G(ngf * 16)


def test_discriminators_have_the_official_layer_sizes():
    ndf, nef = 8, 32  # the official 64, 256 take seconds to initialise; the formula is the same
    enc16 = _conv(3, ndf, 4) + sum(
        _conv(a, b, 4) + 2 * b for a, b in ((ndf, 2 * ndf), (2 * ndf, 4 * ndf), (4 * ndf, 8 * ndf))
    )
    heads = _conv(8 * ndf, 1, 4, bias=True) * 2 + _conv(8 * ndf + nef, 8 * ndf, 3) + 2 * 8 * ndf
    extra = {
        0: 0,
        1: _conv(8 * ndf, 16 * ndf, 4) + 2 * 16 * ndf + _conv(16 * ndf, 8 * ndf, 3) + 2 * 8 * ndf,
        2: _conv(8 * ndf, 16 * ndf, 4) + 2 * 16 * ndf + _conv(16 * ndf, 32 * ndf, 4)
        + 2 * 32 * ndf + _conv(32 * ndf, 16 * ndf, 3) + 2 * 16 * ndf + _conv(16 * ndf, 8 * ndf, 3)
        + 2 * 8 * ndf,
    }  # fmt: skip
    for i, size in enumerate((64, 128, 256)):
        d = Discriminator(size, base_size=64, ndf=ndf, text_dim=nef)
        assert sum(p.numel() for p in d.parameters()) == enc16 + extra[i] + heads, size


def test_init_stage_concatenates_c_then_z():
    torch.manual_seed(0)
    stage = InitStage(c_dim=3, z_dim=4, ngf=2, base_size=16).eval()
    seen = []
    stage.fc[0].register_forward_hook(lambda m, inp, out: seen.append(inp[0]))
    c, z = torch.randn(2, 3), torch.randn(2, 4)
    assert stage(c, z).shape == (2, 2, 16, 16)
    assert torch.equal(seen[0], torch.cat([c, z], 1))


def test_init_stage_width_is_halved_per_block_down_to_ngf():
    """``width``: the 4x4 map's channels (official ngf*16 = 512), halved per upsample block,
    the last block landing on ngf; None keeps ngf * s0/4 (64 at s0 = 8, ngf 32)."""
    assert InitStage(ngf=32, base_size=8).width == 64
    assert InitStage(ngf=32, base_size=64).width == 512  # the official width either way
    wide = InitStage(ngf=32, base_size=8, width=512)
    convs = [m for m in wide.upsample.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels) for c in convs] == [(512, 64)]  # GLU: 2 * ngf
    assert wide.fc[0].out_features == 2 * 512 * 16
    assert wide(torch.randn(3, 100), torch.randn(3, 100)).shape == (3, 32, 8, 8)
    deep = InitStage(ngf=8, base_size=32, width=256)
    convs = [m for m in deep.upsample.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.in_channels for c in convs] == [256, 128, 64]
    assert [c.out_channels // 2 for c in convs] == [128, 64, 8]
    with pytest.raises(ValueError, match="divisible by 2\\*\\*2"):
        InitStage(ngf=8, base_size=32, width=258)
    with pytest.raises(ValueError, match="must be >= ngf"):
        InitStage(ngf=32, base_size=8, width=16)


def test_residual_option_adds_bottleneck_branches_at_4x4_and_8x8():
    """``residual=True`` (the StackGAN TF code's Stage-I network, a course option): a
    ``BottleneckResidual`` on the FC's 4x4 map and on the first upsample block's 8x8 map, the
    output shape unchanged; zeroing the branches' last BN leaves act(x) alone."""
    from ganlab.nn.bottleneck import BottleneckResidual

    torch.manual_seed(0)
    plain = InitStage(c_dim=3, z_dim=4, ngf=4, base_size=16)
    stage = InitStage(c_dim=3, z_dim=4, ngf=4, base_size=16, residual=True)
    blocks = [m for m in stage.upsample if isinstance(m, BottleneckResidual)]
    assert [b.branch[0].in_channels for b in blocks] == [stage.width, stage.width // 2]
    assert [type(m).__name__ for m in stage.upsample] == [
        "BottleneckResidual", "Sequential", "BottleneckResidual", "Sequential"
    ]  # fmt: skip
    c, z = torch.randn(5, 3), torch.randn(5, 4)
    assert stage(c, z).shape == plain(c, z).shape == (5, 4, 16, 16)
    seen = []
    blocks[0].register_forward_hook(lambda m, inp, out: seen.append((inp[0], out)))
    with torch.no_grad():
        blocks[0].branch[-1].weight.zero_()  # the branch now adds 0
        stage.eval()(c, z)
    x, out = seen[0]
    assert torch.equal(out, torch.relu(x))
    g = Generator(text_dim=D_TEXT, c_dim=5, z_dim=7, ngf=4, base_size=8, residual=True)
    assert g.init_stage.residual and not _tiny().init_stage.residual


def test_image_skip_adds_the_previous_stage_upsampled_before_tanh():
    """``image_skip=True`` (StyleGAN2's skip generator, a course option): with stage 1's head
    zeroed, its image is the first stage's, upsampled in logit space; without it, a zeroed
    head draws flat grey (tanh 0)."""
    sentence, words, mask, _ = _text(3)
    z = torch.randn(3, 7, generator=torch.Generator().manual_seed(2))
    for skip in (True, False):
        torch.manual_seed(0)
        g = Generator(text_dim=D_TEXT, c_dim=5, z_dim=7, ngf=4, base_size=8, num_stages=2,
                      image_skip=skip).eval()  # fmt: skip
        seen: list = []  # lecture 4 hooks every head: each must run as a module, once per stage

        def hook(module, inputs, out, seen=seen):
            seen.append(tuple(out.shape))

        for head in g.heads:
            head.register_forward_hook(hook)
        with torch.no_grad():
            g.heads[1].conv.weight.zero_()
            images, maps, _, _ = g(z, sentence, words, mask, torch.Generator().manual_seed(3))
        assert images[1].shape == (3, 3, 16, 16) and len(maps) == 1
        assert seen == [(3, 3, 8, 8), (3, 3, 16, 16)]
        if skip:
            logits = torch.atanh(images[0].clamp(-1 + 1e-6, 1 - 1e-6))
            up = F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)
            assert torch.allclose(images[1], torch.tanh(up), atol=1e-4)
        else:
            assert torch.equal(images[1], torch.zeros_like(images[1]))


def test_discriminator_options_residual_and_minibatch_std():
    """``residual``: the last encoder layer's LeakyReLU follows a bottleneck branch;
    ``minibatch_std``: the heads read one more 4x4 map, the std over groups of 4, so a batch
    of identical images scores differently from the same image among others."""
    from ganlab.nn.bottleneck import BottleneckResidual

    torch.manual_seed(0)
    sentence, _, _, gen = _text(4)
    d = Discriminator(16, 16, ndf=2, text_dim=D_TEXT, residual=True, minibatch_std=True).eval()
    assert isinstance(d.encode[-2][-1], BottleneckResidual)
    x = torch.rand(4, 3, 16, 16, generator=gen) * 2 - 1
    assert d.features(x).shape == (4, 17, 4, 4)  # 8 ndf + 1
    u, c = d(x, sentence)
    assert u.shape == c.shape == (4,)
    assert d.uncond_head.in_channels == 17 and d.joint[0].in_channels == 17 + D_TEXT
    same = x[:1].expand(4, -1, -1, -1)
    std_same = d.features(same)[:, -1]
    assert torch.allclose(std_same, torch.full_like(std_same, 1e-4), atol=1e-4)  # sqrt(eps)
    assert d.features(x)[:, -1].min() > 1e-2  # different images: a visible spread
    ds = build_discriminators(16, 2, ndf=2, text_dim=D_TEXT, residual=True)
    assert all(isinstance(d.encode[-1][-1], BottleneckResidual) for d in ds)
    assert not any(isinstance(m, BottleneckResidual) for m in Discriminator(16, 16, 2).modules())


def test_res_block_adds_the_input_with_no_activation_after():
    torch.manual_seed(0)
    block = ResBlock(4)
    torch.nn.init.zeros_(block.block[-1].weight)  # last BN outputs its shift ...
    torch.nn.init.constant_(block.block[-1].bias, -3.0)  # ... which is negative
    x = torch.randn(2, 4, 5, 5)
    assert torch.allclose(block(x), x - 3.0)  # no ReLU after the sum


def test_words_steer_only_the_attention_stages_and_padding_does_not():
    g = _tiny().eval()
    sentence, words, mask, gen = _text()
    z = g.sample_z(3, generator=gen)
    eps = torch.Generator().manual_seed(5)
    images, maps, _, _ = g(z, sentence, words, mask, generator=eps)
    other = words + torch.randn(words.shape, generator=gen)
    images2, _, _, _ = g(z, sentence, other, mask, generator=torch.Generator().manual_seed(5))
    assert torch.equal(images[0], images2[0])  # stage 0 reads only the sentence
    assert (images[1] - images2[1]).abs().amax(dim=(1, 2, 3)).min() > 1e-4
    garbage = words.clone()
    garbage[1, :, 3:] = 50.0  # caption 1 has 3 words
    images3, maps3, _, _ = g(z, sentence, garbage, mask, generator=torch.Generator().manual_seed(5))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(images, images3))
    for a in maps:
        assert (a[1, 3:] == 0).all() and torch.allclose(a[1, :3].sum(0), torch.ones(a.shape[2:]))


def test_ca_noise_is_reproducible_with_a_generator():
    g = _tiny(2).eval()
    sentence, words, mask, gen = _text()
    z = g.sample_z(3, generator=gen)
    a = g(z, sentence, words, mask, generator=torch.Generator().manual_seed(1))[0][1]
    b = g(z, sentence, words, mask, generator=torch.Generator().manual_seed(1))[0][1]
    c = g(z, sentence, words, mask, generator=torch.Generator().manual_seed(2))[0][1]
    assert torch.equal(a, b) and not torch.allclose(a, c)


def test_gradients_reach_every_generator_parameter():
    g = _tiny()
    sentence, words, mask, gen = _text()
    images, maps, mu, logvar = g(g.sample_z(3, generator=gen), sentence, words, mask)
    loss = sum((x * torch.randn(x.shape, generator=gen)).sum() for x in images) + mu.sum()
    loss.backward()
    dead = [n for n, p in g.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert not dead


@pytest.mark.parametrize("base", [16, 8])
def test_discriminators_heads_and_wrong_pairs(base):
    torch.manual_seed(0)
    ds = build_discriminators(base_size=base, num_stages=3, ndf=2, text_dim=D_TEXT)
    sentence, _, _, gen = _text(4)
    for d, size in zip(ds, (base, 2 * base, 4 * base)):
        x = torch.rand(4, 3, size, size, generator=gen) * 2 - 1
        d.eval()
        u, c = d(x, sentence)
        assert u.shape == c.shape == (4,)
        h = d.features(x)
        assert h.shape == (4, 16, 4, 4)
        u2, c2 = d(x, sentence.flip(0))
        assert torch.equal(u, u2) and not torch.allclose(c, c2)  # only cond reads the text
        wrong = d.wrong_logits(h, sentence)
        assert torch.allclose(wrong, d.cond_logits(h[:-1], sentence[1:]))
        with pytest.raises(ValueError, match=r"\[-1, 1\]"):
            d(x * 3, sentence)
    # deeper with size: log2(s0 / 4) stride-2 convs at s0, plus 2 and 4 convs at 2 s0 and 4 s0
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in d.encode.modules()) for d in ds]
    first = {16: 2, 8: 1}[base]
    assert convs == [first, first + 2, first + 4]


def test_discriminator_loss_is_the_official_mix():
    gen = torch.Generator().manual_seed(3)
    ru, rc, fu, fc = (torch.randn(5, generator=gen) * 2 for _ in range(4))
    wc = torch.randn(4, generator=gen)
    sp = F.softplus  # BCE(x, 1) = softplus(-x), BCE(x, 0) = softplus(x)
    want = (sp(-ru).mean() + sp(-rc).mean()) / 2 + (
        sp(fu).mean() + sp(fc).mean() + sp(wc).mean()
    ) / 3
    got = discriminator_loss(ru, rc, fu, fc, wc)
    assert got.item() == pytest.approx(want.item(), rel=1e-6)
    with pytest.raises(ValueError, match="wrong_c"):
        discriminator_loss(ru, rc, fu, fc, wc[:, None])


def test_generator_loss_sums_stages_damsm_and_kl():
    gen = torch.Generator().manual_seed(4)
    logits = [(torch.randn(5, generator=gen), torch.randn(5, generator=gen)) for _ in range(3)]
    mu, logvar = torch.randn(5, 10, generator=gen), torch.randn(5, 10, generator=gen) * 0.3
    damsm = torch.tensor(2.5)
    adv = sum(F.softplus(-u).mean() + F.softplus(-c).mean() for u, c in logits)
    kl = (0.5 * (logvar.exp() + mu**2 - 1 - logvar)).mean()  # the official KL_loss
    got = generator_loss(logits, mu, logvar, damsm)
    assert got.item() == pytest.approx((adv + LAMBDA_DAMSM * damsm + kl).item(), rel=1e-6)
    got = generator_loss(logits, mu, logvar, damsm, lambda_damsm=50.0, kl_weight=2.0)
    assert got.item() == pytest.approx((adv + 50 * damsm + 2 * kl).item(), rel=1e-6)
    assert generator_loss(logits, mu, logvar).item() == pytest.approx((adv + kl).item(), rel=1e-6)
    with pytest.raises(ValueError, match="pair"):
        generator_loss([logits[0][0]], mu, logvar)


def test_ema_copy_samples_like_the_generator():
    g = _tiny(2)
    ema = EMA(g, decay=EMA_DECAY)
    assert EMA_DECAY == 0.999
    ema.update()
    sentence, words, mask, gen = _text()
    z = g.sample_z(3, generator=gen)
    images, _, _, _ = ema.module(z, sentence, words, mask)
    assert images[1].shape == (3, 3, 32, 32)


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="base_size"):
        Generator(base_size=48)
    with pytest.raises(ValueError, match="num_stages"):
        Generator(num_stages=4)
    with pytest.raises(ValueError, match="image_size"):
        Discriminator(image_size=96, base_size=16)
    g = _tiny(2)
    sentence, words, mask, gen = _text()
    z = g.sample_z(3)
    with pytest.raises(ValueError, match="words"):
        g(z, sentence, words[:, :5], mask)
    with pytest.raises(ValueError, match="z must"):
        g(z[:2], sentence, words, mask)
    with pytest.raises(TypeError, match="bool"):
        g(z, sentence, words, mask.float())
    with pytest.raises(ValueError, match="num_residual"):
        AttentionStage(4, 8, num_residual=-1)
