"""StyleGAN's model against the paper and the official code: shapes, the mapping network, the
constant input, noise (init 0, per layer), AdaIN's statistics, style mixing, truncation and
w_avg, the blur after every upsample, equalised LR everywhere, the losses and R1 by hand, and
the parameter count at the official widths against the paper's 26.2M."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.models import stylegan as sg
from ganlab.nn import Blur, EqualizedConv2d, EqualizedLinear, PixelNorm

Z, W = 8, 8  # tiny latents; widths nf(s) = min(64 / 2^s, 16): 16, 16, 8, 4 ... channels


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def _g(resolution=16, seed=0, **kw):
    torch.manual_seed(seed)
    kw = {"z_dim": Z, "w_dim": W, "fmap_base": 64, "fmap_max": 16, **kw}
    return sg.Generator(resolution, **kw)


def _d(resolution=16, seed=1, **kw):
    torch.manual_seed(seed)
    return sg.Discriminator(resolution, fmap_base=64, fmap_max=16, **kw)


def _z(b=4, seed=2):
    return torch.randn(b, Z, generator=torch.Generator().manual_seed(seed))


def _set_noise_scales(g, value=0.5):
    with torch.no_grad():
        for layer in g.synthesis.layers:
            layer.noise.weight.fill_(value)


# --------------------------------------------------------------------------------------
# Sizes
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_shapes_generator_discriminator(resolution):
    g, d = _g(resolution), _d(resolution)
    images, ws = g(_z(), return_ws=True)
    n = 2 * int(math.log2(resolution)) - 2
    assert g.num_layers == sg.num_style_layers(resolution) == n
    assert images.shape == (4, 3, resolution, resolution)
    assert ws.shape == (4, n, W)
    assert d(images).shape == (4,)
    _, acts = g.synthesis(ws, return_activations=True)
    assert [a.shape[-1] for a in acts] == [sg.layer_resolution(i) for i in range(n)]
    assert [sg.layer_resolution(i) for i in range(6)] == [4, 4, 8, 8, 16, 16]


def test_official_widths_and_parameter_count_near_paper():
    """At 1024 px with fmap_base 8192, fmap_max 512: 18 layers, widths 512 (4-32 px) then
    halving to 16; trainable parameters within 0.5% of the paper's 26.2M."""
    torch.manual_seed(0)
    g = sg.Generator(1024)
    widths = [layer.adain.channels for layer in g.synthesis.layers]
    assert widths == [512] * 8 + [256, 256, 128, 128, 64, 64, 32, 32, 16, 16]
    assert g.synthesis.const.shape == (1, 512, 4, 4)
    count = sum(p.numel() for p in g.parameters() if p.requires_grad)
    mapping = sum(p.numel() for p in g.mapping.parameters())
    assert mapping == 8 * (512 * 512 + 512)
    assert abs(count - sg.PAPER_G_PARAMS) / sg.PAPER_G_PARAMS < 0.005, count


@pytest.mark.parametrize("bad", [4, 12, 2048, 100])
def test_resolution_must_be_power_of_two_in_range(bad):
    with pytest.raises(ValueError, match="power of 2 in \\[8, 1024\\]"):
        sg.Generator(bad)
    with pytest.raises(ValueError, match="power of 2"):
        sg.Discriminator(bad)
    with pytest.raises(TypeError):
        sg.num_style_layers(16.0)


def test_style_groups_paper_bands_and_course_adaptation():
    at_1024 = sg.style_groups(1024)
    assert at_1024 == sg.style_groups(1024, "paper")
    assert at_1024 == {"coarse": range(0, 4), "middle": range(4, 8), "fine": range(8, 18)}
    assert sg.style_groups(64) == sg.style_groups(64, "paper")
    assert sg.style_groups(32, "paper")["fine"] == range(0)  # no 64+ px layers at 32 px
    assert sg.style_groups(32) == {
        "coarse": range(0, 4),
        "middle": range(4, 6),
        "fine": range(6, 8),
    }
    for r in sg.RESOLUTIONS:  # the course's groups partition the layers, in order
        groups = sg.style_groups(r)
        covered = [i for name in ("coarse", "middle", "fine") for i in groups[name]]
        assert covered == list(range(sg.num_style_layers(r)))
        assert len(groups["coarse"]) > 0 and len(groups["fine"]) > 0
        for name, (lo, hi) in sg.STYLE_GROUP_PIXELS.items():
            assert all(
                lo <= sg.layer_resolution(i) <= hi for i in sg.style_groups(r, "paper")[name]
            )
    with pytest.raises(ValueError, match="scheme"):
        sg.style_groups(32, "thirds")
    assert sg.noise_groups(1024) == {"coarse": range(0, 8), "fine": range(8, 18)}  # Fig. 5
    assert sg.noise_groups(32) == {"coarse": range(0, 6), "fine": range(6, 8)}
    assert sg.noise_groups(32, "paper") == {"coarse": range(0, 8), "fine": range(0)}


# --------------------------------------------------------------------------------------
# Mapping network and constant input
# --------------------------------------------------------------------------------------


def test_mapping_has_8_equalised_layers_with_lr_mul_001_and_pixel_norm():
    g = _g()
    layers = list(g.mapping.layers)
    assert len(layers) == sg.MAPPING_LAYERS == 8
    assert all(isinstance(layer, EqualizedLinear) for layer in layers)
    assert all(layer.lr_mul == 0.01 for layer in layers)
    assert all(math.isclose(layer.gain, math.sqrt(2)) for layer in layers)
    assert all(layer.scale == pytest.approx(math.sqrt(2) / math.sqrt(W) * 0.01) for layer in layers)
    assert isinstance(g.mapping.norm, PixelNorm)
    z = _z()
    torch.testing.assert_close(g.mapping(3.0 * z), g.mapping(z))  # z is pixel-normalised first
    with pytest.raises(ValueError, match=f"z must be \\(B, {Z}\\)"):
        g(torch.randn(4, Z + 1))
    with pytest.raises(ValueError, match="z must be a float tensor"):
        g(torch.randn(4, 2, Z))


def test_constant_input_is_ones_and_no_z_reaches_the_synthesis_input():
    g = _g().eval()
    torch.testing.assert_close(g.synthesis.const, torch.ones_like(g.synthesis.const))
    seen = {}
    hook = g.synthesis.layers[0].adain.register_forward_hook(
        lambda mod, args, out: seen.setdefault("x", args[0].detach())
    )
    _set_noise_scales(g)  # noise on, but switched off below: layer 0's input is the constant
    g(_z(4), noise_mode="none")
    hook.remove()
    x = seen["x"]  # layer 0's activations before its style: (B, C, 4, 4)
    assert torch.equal(x, x[:1].expand_as(x))  # identical for 4 different z
    # the image depends on z only through ws
    z = _z(3)
    ws = g.mapping(z)[:, None].expand(-1, g.num_layers, -1)
    torch.testing.assert_close(g(z, noise_mode="const"), g.synthesis(ws, noise_mode="const"))
    torch.testing.assert_close(g.synthesis(ws[:, 0], noise_mode="const"), g(z, noise_mode="const"))


# --------------------------------------------------------------------------------------
# Noise
# --------------------------------------------------------------------------------------


def test_noise_scale_starts_at_zero_so_noise_has_no_effect_at_init():
    g = _g().eval()
    assert all(torch.equal(layer.noise.weight, torch.zeros_like(layer.noise.weight))
               for layer in g.synthesis.layers)  # fmt: skip
    z = _z()
    a, b = g(z, noise_mode="random"), g(z, noise_mode="random")
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(a, g(z, noise_mode="none"))


def test_noise_changes_outputs_only_through_the_noise_images():
    g = _g().eval()
    _set_noise_scales(g)
    z = _z()
    a, b = g(z), g(z)
    assert (a - b).abs().max() > 1e-3  # fresh draws differ
    torch.testing.assert_close(g(z, noise_mode="const"), g(z, noise_mode="const"))
    zeros = [torch.zeros(1, 1, sg.layer_resolution(i), sg.layer_resolution(i))
             for i in range(g.num_layers)]  # fmt: skip
    torch.testing.assert_close(g(z, noise=zeros), g(z, noise_mode="none"))
    fixed = [torch.randn(4, 1, sg.layer_resolution(i), sg.layer_resolution(i))
             for i in range(g.num_layers)]  # fmt: skip
    torch.testing.assert_close(g(z, noise=fixed), g(z, noise=fixed))
    gen = [torch.Generator().manual_seed(5) for _ in range(2)]
    torch.testing.assert_close(g(z, generator=gen[0]), g(z, generator=gen[1]))
    # noise is per pixel, shared by the channels, scaled per channel: layer 0 (no conv)
    layer = g.synthesis.layers[0]
    with torch.no_grad():
        layer.noise.weight.copy_(torch.arange(layer.noise.channels, dtype=torch.float32))
    n = torch.randn(1, 1, 4, 4)
    x = torch.zeros(1, layer.noise.channels, 4, 4)
    torch.testing.assert_close(layer.noise(x, n), layer.noise.weight.view(1, -1, 1, 1) * n)


def test_per_layer_noise_switches():
    g = _g(32).eval()
    _set_noise_scales(g)
    groups = sg.style_groups(32)
    z = _z()

    def acts(**kw):
        return g.synthesis(g.styles(z), return_activations=True, **kw)[1]

    fine_only = [acts(noise_layers=groups["fine"]) for _ in range(2)]
    for i in range(g.num_layers):
        same = torch.equal(fine_only[0][i], fine_only[1][i])
        assert same == (i < groups["fine"].start), i  # layers before fine: no noise at all
    coarse_only = [acts(noise_layers=groups["coarse"]) for _ in range(2)]
    assert not torch.equal(coarse_only[0][0], coarse_only[1][0])  # layer 0 sees noise
    for a, b in zip(acts(noise_mode="none"), acts(noise_mode="none")):
        assert torch.equal(a, b)
    with pytest.raises(ValueError, match="noise_layers must be layer indices"):
        g(z, noise_layers=[g.num_layers])
    with pytest.raises(ValueError, match="noise_mode"):
        g(z, noise_mode="off")
    with pytest.raises(ValueError, match="sequence of 8"):
        g(z, noise=[None] * 3)


# --------------------------------------------------------------------------------------
# AdaIN inside a layer, blur, equalisation
# --------------------------------------------------------------------------------------


def test_adain_sets_channel_mean_to_y_b_and_std_to_one_plus_y_s():
    g = _g()
    layer = g.synthesis.layers[3]  # 8 px, second conv
    with torch.no_grad():  # a style projection that is far from the identity
        layer.adain.affine.weight.normal_()
        layer.adain.affine.bias.normal_()
    x = torch.randn(2, layer.adain.channels, 8, 8) * 3 + 1
    w = torch.randn(2, W)
    out = layer(x, w, use_noise=False)
    y_s, y_b = layer.adain.styles(w)  # (B, C) each
    torch.testing.assert_close(out.mean(dim=(2, 3)), y_b, atol=1e-4, rtol=1e-4)
    std = out.var(dim=(2, 3), unbiased=False).sqrt()
    torch.testing.assert_close(std, (1 + y_s).abs(), atol=1e-4, rtol=1e-4)


def _call_order(module: nn.Module, x) -> list[str]:
    order, hooks = [], []
    for name, sub in module.named_children():
        hooks.append(sub.register_forward_hook(lambda m, a, o, name=name: order.append(name)))
    module(*x)
    for h in hooks:
        h.remove()
    return order


def test_blur_follows_every_upsample_in_the_official_order():
    g = _g(32)
    ups = [layer for layer in g.synthesis.layers if layer.kind == "up"]
    assert len(ups) == int(math.log2(32)) - 2  # one per resolution above 4 px
    assert [i for i, layer in enumerate(g.synthesis.layers) if layer.kind == "up"] == [2, 4, 6]
    for layer in ups:
        assert isinstance(layer.blur, Blur) and layer.blur.f == (1.0, 2.0, 1.0)
        x, w = torch.randn(2, layer.conv.in_channels, 4, 4), torch.randn(2, W)
        assert _call_order(layer, (x, w))[:3] == ["upsample", "conv", "blur"]
    for layer in g.synthesis.layers:
        if layer.kind != "up":
            assert layer.blur is None and layer.upsample is None
    d = _d(32)
    assert len(d.blocks) == 3
    for block in d.blocks:  # D: conv, blur, conv, 2x2 mean (official D_basic)
        x = torch.randn(2, block.conv0.in_channels, 8, 8)
        assert _call_order(block, (x,)) == ["conv0", "blur", "conv1", "downsample"]


def test_every_weight_layer_is_equalised_with_the_official_gains():
    g, d = _g(32), _d(32)
    for model in (g, d):
        for m in model.modules():
            assert not isinstance(m, (nn.Linear, nn.Conv2d, nn.ConvTranspose2d)), m
        weights = [m for m in model.modules() if isinstance(m, (EqualizedLinear, EqualizedConv2d))]
        params = sum(m.weight.numel() for m in weights)
        assert params == sum(p.numel() for n, p in model.named_parameters() if n.endswith("weight")
                             and p.dim() > 1)  # fmt: skip
    sqrt2 = math.sqrt(2)
    for layer in g.synthesis.layers:
        assert layer.adain.affine.gain == 1.0 and layer.adain.projection == "equalized"
        assert layer.conv is None or math.isclose(layer.conv.gain, sqrt2)
        assert layer.conv is None or layer.conv.bias is None  # the bias comes after the noise
    assert g.synthesis.to_rgb.gain == 1.0 and g.synthesis.to_rgb.kernel_size == 1
    assert d.dense1.gain == 1.0 and d.dense1.out_features == 1
    assert all(math.isclose(m.gain, sqrt2) for m in (d.from_rgb, d.conv, d.dense0))
    assert d.mbstd.group_size == 4 and d.conv.in_channels == 16 + 1


# --------------------------------------------------------------------------------------
# Style mixing, truncation, w_avg
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 3, 6])
def test_explicit_style_mixing_takes_layers_below_k_from_z_and_the_rest_from_mix_z(k):
    g = _g(16).eval()
    z1, z2 = _z(3, seed=1), _z(3, seed=2)
    _, ws = g(z1, mix_z=z2, crossover=k, return_ws=True)
    w1, w2 = g.mapping(z1), g.mapping(z2)
    for layer in range(g.num_layers):
        torch.testing.assert_close(ws[:, layer], w1 if layer < k else w2)
    torch.testing.assert_close(ws, sg.mix_styles(w1[:, None].expand(-1, 6, -1),
                                                 w2[:, None].expand(-1, 6, -1), k))  # fmt: skip


def test_style_mixing_errors():
    g = _g(16).eval()
    z = _z(3)
    for bad in (-1, 7):
        with pytest.raises(ValueError, match="crossover must lie in \\[0, 6\\]"):
            g(z, mix_z=z, crossover=bad)
    with pytest.raises(TypeError, match="crossover must be an int"):
        g(z, mix_z=z, crossover=2.0)
    with pytest.raises(ValueError, match="both mix_z and crossover"):
        g(z, mix_z=z)
    with pytest.raises(ValueError, match="batch size"):
        g(z, mix_z=_z(2), crossover=2)


def test_random_style_mixing_in_training_only_with_probability_p():
    g = _g(16)
    z = _z(2)
    w1 = g.mapping(z)
    gen = torch.Generator().manual_seed(0)

    def crossover(ws):  # the number of leading layers that carry w1
        first = [torch.allclose(ws[:, i], w1) for i in range(g.num_layers)]
        k = first.index(False) if False in first else g.num_layers
        assert all(first[:k]) and not any(first[k:])
        for i in range(k, g.num_layers):  # the rest is one second w
            torch.testing.assert_close(ws[:, i], ws[:, k])
        return k

    with torch.no_grad():
        ks = [crossover(g.styles(z, generator=gen)) for _ in range(200)]
    mixed = [k for k in ks if k < g.num_layers]
    assert set(mixed) == set(range(1, g.num_layers))  # k ~ U{1, ..., L-1}
    assert 0.82 <= len(mixed) / len(ks) <= 0.97  # p = 0.9 (binomial sd 0.02)
    g.eval()
    assert all(crossover(g.styles(z)) == g.num_layers for _ in range(20))  # no mixing in eval
    g.train()
    g.style_mixing_prob = 0.0
    assert all(crossover(g.styles(z)) == g.num_layers for _ in range(20))


def test_truncation_toward_w_avg_on_the_first_cutoff_layers():
    g = _g(32).eval()
    with torch.no_grad():
        g.w_avg.normal_()
    z = _z(3)
    w = g.mapping(z)
    _, ws = g(z, psi=0.0, return_ws=True)
    cutoff = g.truncation_cutoff
    assert cutoff == min(sg.TRUNCATION_CUTOFF, g.num_layers) == 8
    _, ws = g(z, psi=0.0, truncation_cutoff=3, return_ws=True)
    for i in range(g.num_layers):
        torch.testing.assert_close(ws[:, i], g.w_avg.expand(3, -1) if i < 3 else w)
    _, ws = g(z, psi=1.0, return_ws=True)
    torch.testing.assert_close(ws, w[:, None].expand(-1, g.num_layers, -1))
    _, ws = g(z, psi=0.7, return_ws=True)
    torch.testing.assert_close(ws[:, 0], g.w_avg + 0.7 * (w - g.w_avg))
    torch.testing.assert_close(ws[:, -1], g.w_avg + 0.7 * (w - g.w_avg))  # cutoff 8 = all
    for bad in (1.5, -2.0, float("nan")):
        with pytest.raises(ValueError, match="psi must lie in"):
            g(z, psi=bad)
    with pytest.raises(ValueError, match="cutoff"):
        g(z, psi=0.5, truncation_cutoff=9)
    with pytest.raises(ValueError, match="truncation_cutoff must be an int >= 0"):
        _g(32, truncation_cutoff=-1)
    g.train()
    with pytest.raises(ValueError, match="truncation is off during training"):
        g(z, psi=0.7)


def test_w_avg_moving_average_updates_only_in_training():
    g = _g(16)
    assert torch.equal(g.w_avg, torch.zeros(W))
    z1, z2 = _z(4, seed=1), _z(4, seed=2)
    with torch.no_grad():
        m1, m2 = g.mapping(z1).mean(0), g.mapping(z2).mean(0)
        g(z1)
        torch.testing.assert_close(g.w_avg, 0.005 * m1)
        g(z2)
        torch.testing.assert_close(g.w_avg, 0.995 * 0.005 * m1 + 0.005 * m2)
        before = g.w_avg.clone()
        g.eval()
        g(z1)
        g(z1, psi=0.5)
    assert torch.equal(g.w_avg, before)
    assert "w_avg" in g.state_dict()  # saved with the weights, copied by the G EMA


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


def test_logistic_losses_by_hand():
    real = torch.tensor([2.0, -1.0, 0.5])
    fake = torch.tensor([-0.5, 1.5, 0.0])
    sp = lambda t: math.log1p(math.exp(t))
    g_hand = sum(sp(-f) for f in fake.tolist()) / 3
    d_hand = sum(sp(f) for f in fake.tolist()) / 3 + sum(sp(-r) for r in real.tolist()) / 3
    assert sg.generator_loss(fake).item() == pytest.approx(g_hand, rel=1e-6)
    assert sg.discriminator_loss(real, fake).item() == pytest.approx(d_hand, rel=1e-6)
    with pytest.raises(ValueError, match="one logit per image"):
        sg.generator_loss(fake[:, None])


class _LinearCritic(nn.Module):
    """D(x) = sum(a * x) + c: grad_x D = a for every sample, so R1 = gamma/2 ||a||^2."""

    def __init__(self, shape):
        super().__init__()
        self.a = nn.Parameter(torch.randn(shape))
        self.c = nn.Parameter(torch.tensor(0.3))

    def forward(self, x):
        return (x * self.a).flatten(1).sum(1) + self.c


def test_r1_by_hand_on_a_linear_critic():
    torch.manual_seed(0)
    d = _LinearCritic((3, 4, 4))
    real, fake = torch.randn(5, 3, 4, 4), torch.randn(5, 3, 4, 4)
    gamma = 0.25
    loss, r1 = sg.discriminator_loss_r1(d, real, fake, gamma)
    a = d.a.detach()
    assert r1.item() == pytest.approx(gamma / 2 * a.pow(2).sum().item(), rel=1e-5)
    with torch.no_grad():
        hand = sg.discriminator_loss(d(real), d(fake)) + gamma / 2 * a.pow(2).sum()
    assert loss.item() == pytest.approx(hand.item(), rel=1e-5)
    (grad_a,) = torch.autograd.grad(r1, d.a)  # R1 trains D: d/da gamma/2 ||a||^2 = gamma a
    torch.testing.assert_close(grad_a, gamma * a)
    loss0, r1_0 = sg.discriminator_loss_r1(d, real, fake, 0.0)
    assert r1_0.item() == 0.0 and loss0.item() == pytest.approx(
        sg.discriminator_loss(d(real), d(fake)).item(), rel=1e-6
    )
    with pytest.raises(ValueError, match="gamma must be >= 0"):
        sg.discriminator_loss_r1(d, real, fake, -1.0)


def test_a_training_step_reaches_every_parameter():
    g, d = _g(16), _d(16)
    real = torch.randn(4, 3, 16, 16)
    loss, _ = sg.discriminator_loss_r1(d, real, g(_z()), sg.r1_gamma(16))
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in d.parameters())
    _set_noise_scales(g, 0.1)  # so that the noise scales get a gradient too
    sg.generator_loss(d(g(_z()))).backward()
    missing = [n for n, p in g.named_parameters() if p.grad is None or p.grad.abs().sum() == 0]
    assert missing == []


def test_constants_and_schedules():
    assert sg.r1_gamma(1024) == sg.R1_GAMMA_PAPER == 10.0
    assert sg.r1_gamma(32) == pytest.approx(10.0 / 32**2)  # (32/1024)^2 = 1/1024
    assert sg.r1_gamma(64) == pytest.approx(4 * sg.r1_gamma(32))
    assert (sg.ADAM_LR, sg.ADAM_BETAS, sg.ADAM_EPS) == (0.001, (0.0, 0.99), 1e-8)
    beta = sg.g_ema_decay(32)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)  # half-life of 10k images
    assert sg.g_ema_decay(64) == pytest.approx(beta**2)
    assert (sg.STYLE_MIXING_PROB, sg.TRUNCATION_PSI, sg.W_AVG_BETA) == (0.9, 0.7, 0.995)
    with pytest.raises(ValueError):
        sg.g_ema_decay(0)


def test_discriminator_rejects_wrong_images():
    d = _d(16)
    with pytest.raises(ValueError, match="\\(B, 3, 16, 16\\)"):
        d(torch.randn(4, 3, 32, 32))
    assert torch.isfinite(F.softplus(d(torch.randn(4, 3, 16, 16)))).all()
