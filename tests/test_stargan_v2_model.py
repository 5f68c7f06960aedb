"""StarGAN v2's nets, losses and iteration: shapes, the official parameter counts, the residual
scaling, AdaIN's (1 + gamma), per-domain heads, each loss part against a hand computation,
lambda_ds's decay, the optimisers, the EMA copies, and which nets each step trains."""

from __future__ import annotations

import copy
import math
import warnings

import pytest
import torch
import torch.nn.functional as F

from ganlab.models.stargan_v2 import (
    BATCH_SIZE,
    DS_ITER,
    AdainResBlk,
    Discriminator,
    Generator,
    LossWeights,
    MappingNetwork,
    ResBlk,
    StarGANv2,
    StyleEncoder,
    adv_loss,
    build_optimizers,
    compute_d_loss,
    compute_g_loss,
    evaluation_pairs,
    lambda_ds_at,
    official_dim_in,
    train_step,
)
from ganlab.nn.normalization import AdaIN


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


K, S, LATENT, STYLE = 3, 16, 4, 6


def _tiny(seed: int = 0, **kw) -> StarGANv2:
    torch.manual_seed(seed)
    size = dict(img_size=S, num_domains=K, latent_dim=LATENT, style_dim=STYLE, hidden_dim=8)
    size.update(dim_in=4, max_conv_dim=8, repeat_num=1)  # G: 16 -> 8 and back
    size.update(kw)
    return StarGANv2(**size)


def _batch(b: int = 4, seed: int = 1) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return dict(
        x_real=torch.rand(b, 3, S, S, generator=gen) * 2 - 1,
        y_org=torch.tensor([0, 1, 2, 0, 1, 2, 0, 1][:b]),
        x_ref=torch.rand(b, 3, S, S, generator=gen) * 2 - 1,
        x_ref2=torch.rand(b, 3, S, S, generator=gen) * 2 - 1,
        y_trg=torch.tensor([1, 2, 0, 2, 0, 1, 1, 2][:b]),  # != y_org row by row
        z_trg=torch.randn(b, LATENT, generator=gen),
        z_trg2=torch.randn(b, LATENT, generator=gen),
    )


def _count(module) -> int:
    return sum(p.numel() for p in module.parameters())


# ------------------------------------------------------------------------------ shapes


@pytest.mark.parametrize("img_size", [16, 32])
def test_shapes(img_size):
    torch.manual_seed(0)
    g = Generator(img_size, STYLE, dim_in=4, max_conv_dim=16)
    f = MappingNetwork(LATENT, STYLE, K, hidden_dim=8)
    e = StyleEncoder(img_size, STYLE, K, dim_in=4, max_conv_dim=16)
    d = Discriminator(img_size, K, dim_in=4, max_conv_dim=16)
    x, y = torch.randn(2, 3, img_size, img_size), torch.tensor([0, 2])
    s = f(torch.randn(2, LATENT), y)
    assert s.shape == (2, STYLE) and e(x, y).shape == (2, STYLE)
    assert g(x, s).shape == (2, 3, img_size, img_size)
    assert d(x, y).shape == (2,) and d.all_logits(x).shape == (2, K)
    assert f.all_styles(torch.randn(2, LATENT)).shape == (2, K, STYLE)
    # official repeat_num = log2(S) - 4 down/up blocks, + 2 bottlenecks on each side
    n = int(math.log2(img_size)) - 4
    assert len(g.encode) == len(g.decode) == n + 2
    assert sum(b.upsample for b in g.decode) == n and sum(b.downsample for b in g.encode) == n
    # E and D halve down to 4x4: log2(S) - 2 blocks
    assert sum(isinstance(m, ResBlk) for m in d.main) == int(math.log2(img_size)) - 2


def test_widths_official_formula_and_cap():
    assert official_dim_in(256) == 64 and official_dim_in(32) == 512
    with torch.device("meta"):
        # the trap: the formula at 32 px makes every layer 512 wide
        assert Generator(32).widths == [512, 512]
        assert Generator(256).widths == [64, 128, 256, 512, 512]
        assert Generator(32, dim_in=32, max_conv_dim=256).widths == [32, 64]
        assert Generator(64, dim_in=32, max_conv_dim=48).widths == [32, 48, 48]
        # the cap applies to the first width too
        assert Generator(32, max_conv_dim=128).widths == [128, 128]
        d = Discriminator(32, 3, dim_in=32, max_conv_dim=64)
    widths = [m.conv2.out_channels for m in d.main if isinstance(m, ResBlk)]
    assert widths == [64, 64, 64]


def test_parameter_counts_match_the_official_model():
    """CelebA-HQ: the official log quoted in clovaai/stargan-v2 issue #29 (w_hpf 1: one extra
    down/up block, the high-pass filter itself has no parameters). AFHQ (K = 3, w_hpf 0):
    counted by running the official core/model.py on the meta device."""
    with torch.device("meta"):
        celeba = StarGANv2(256, num_domains=2, repeat_num=5)
        afhq = StarGANv2(256, num_domains=3)
    counts = {name: _count(net) for name, net in celeba.nets().items()}
    assert counts == dict(generator=43_467_395, mapping_network=2_438_272,
                          style_encoder=20_916_928, discriminator=20_852_290)  # fmt: skip
    counts = {name: _count(net) for name, net in afhq.nets().items()}
    assert counts == dict(generator=33_892_995, mapping_network=3_259_072,
                          style_encoder=20_949_760, discriminator=20_852_803)  # fmt: skip


# ------------------------------------------------------------------------------ blocks


def test_resblk_sum_is_scaled_by_one_over_sqrt2():
    torch.manual_seed(0)
    x = torch.randn(2, 4, 8, 8)
    same = ResBlk(4, 4, normalize=True)
    torch.nn.init.zeros_(same.conv2.weight)
    torch.nn.init.zeros_(same.conv2.bias)  # residual = 0, identity shortcut
    torch.testing.assert_close(same(x), x / math.sqrt(2))
    down = ResBlk(4, 6, downsample=True)
    assert down.conv1x1.bias is None  # learned shortcut without bias
    torch.nn.init.zeros_(down.conv2.weight)
    torch.nn.init.zeros_(down.conv2.bias)
    torch.testing.assert_close(down(x), F.avg_pool2d(down.conv1x1(x), 2) / math.sqrt(2))


def test_resblk_residual_is_pre_activation_with_affine_instance_norm():
    torch.manual_seed(0)
    blk = ResBlk(4, 6, normalize=True, downsample=True)
    for norm in (blk.norm1, blk.norm2):
        torch.nn.init.normal_(norm.weight)
        torch.nn.init.normal_(norm.bias)
    x = torch.randn(2, 4, 8, 8)

    def inorm(h, n):
        return F.instance_norm(h, weight=n.weight, bias=n.bias, eps=1e-5)

    h = blk.conv1(F.leaky_relu(inorm(x, blk.norm1), 0.2))
    h = blk.conv2(F.leaky_relu(inorm(F.avg_pool2d(h, 2), blk.norm2), 0.2))
    want = (F.avg_pool2d(blk.conv1x1(x), 2) + h) / math.sqrt(2)
    torch.testing.assert_close(blk(x), want)
    assert blk(x).shape == (2, 6, 4, 4)


def test_adain_resblk_one_plus_gamma_and_scaled_sum():
    torch.manual_seed(0)
    blk = AdainResBlk(4, 2, style_dim=STYLE, upsample=True)
    assert isinstance(blk.norm1, AdaIN) and blk.norm1.projection == "linear"
    assert blk.norm1.eps == 1e-5  # nn.InstanceNorm2d's
    x, s = torch.randn(2, 4, 4, 4), torch.randn(2, STYLE)

    def adain(h, norm):
        gamma, beta = norm.affine(s).chunk(2, dim=1)  # official torch.chunk order
        return (1 + gamma[:, :, None, None]) * F.instance_norm(h, eps=1e-5) + beta[:, :, None, None]

    h = F.leaky_relu(adain(x, blk.norm1), 0.2)
    h = blk.conv1(F.interpolate(h, scale_factor=2, mode="nearest"))
    h = blk.conv2(F.leaky_relu(adain(h, blk.norm2), 0.2))
    shortcut = blk.conv1x1(F.interpolate(x, scale_factor=2, mode="nearest"))
    torch.testing.assert_close(blk(x, s), (shortcut + h) / math.sqrt(2))
    # a zero style leaves IN(x) as it is: the "1 +" convention
    torch.nn.init.zeros_(blk.norm1.affine.weight)
    torch.nn.init.zeros_(blk.norm1.affine.bias)
    torch.testing.assert_close(blk.norm1(x, s), F.instance_norm(x, eps=1e-5))
    # zero residual: the nearest-upsampled shortcut over sqrt 2
    torch.nn.init.zeros_(blk.conv2.weight)
    torch.nn.init.zeros_(blk.conv2.bias)
    torch.testing.assert_close(blk(x, s), shortcut / math.sqrt(2))


# ------------------------------------------------------------------------------ domain heads


def _perturb(module):
    with torch.no_grad():
        for p in module.parameters():
            p.add_(1.0)


@pytest.mark.parametrize("net", ["mapping", "encoder"])
def test_style_nets_pick_the_head_of_domain_y(net):
    torch.manual_seed(0)
    if net == "mapping":
        model, inp = MappingNetwork(LATENT, STYLE, K, hidden_dim=8), torch.randn(3, LATENT)
    else:
        model = StyleEncoder(S, STYLE, K, dim_in=4, max_conv_dim=8)
        inp = torch.randn(3, 3, S, S)
    y = torch.tensor([2, 0, 2])
    s = model(inp, y)
    torch.testing.assert_close(s, model.all_styles(inp)[torch.arange(3), y])
    torch.testing.assert_close(model(inp, 2)[0], s[0])  # an int: one domain for all
    _perturb(model.unshared[1])  # a head no sample uses
    torch.testing.assert_close(model(inp, y), s)
    _perturb(model.unshared[0])  # sample 1's head
    out = model(inp, y)
    torch.testing.assert_close(out[[0, 2]], s[[0, 2]])
    assert not torch.allclose(out[1], s[1])


def test_discriminator_returns_the_logit_of_domain_y():
    torch.manual_seed(0)
    d = Discriminator(S, K, dim_in=4, max_conv_dim=8)
    x, y = torch.randn(3, 3, S, S), torch.tensor([1, 1, 0])
    out = d(x, y)
    torch.testing.assert_close(out, d.all_logits(x)[torch.arange(3), y])
    head = d.main[-1]  # conv1x1 to K logits
    with torch.no_grad():
        head.weight[2].add_(1.0)  # domain 2's output, not used
    torch.testing.assert_close(d(x, y), out)
    with torch.no_grad():
        head.bias[0].add_(1.0)
    torch.testing.assert_close(d(x, y), out + torch.tensor([0.0, 0.0, 1.0]))


def test_clear_errors():
    m = _tiny()
    x, z = torch.randn(2, 3, S, S), torch.randn(2, LATENT)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        m.F(z, torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        m.D(x, -1)
    with pytest.raises(TypeError, match="integer tensor"):
        m.E(x, torch.tensor([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\)"):
        m.E(x, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"z must have shape \(B, 4\)"):
        m.F(torch.randn(2, 5), 0)
    with pytest.raises(ValueError, match=r"style s must have shape \(2, 6\)"):
        m.G(x, torch.randn(2, 7))
    with pytest.raises(ValueError, match=r"\(B, 3, 16, 16\)"):
        m.G(torch.randn(2, 3, 32, 32), torch.randn(2, STYLE))
    for bad in (8, 24, 48):
        with pytest.raises(ValueError, match="power of 2 >= 16"):
            Generator(bad)
    with pytest.raises(ValueError, match="repeat_num"):
        Generator(16, repeat_num=3)
    with pytest.raises(ValueError, match="exactly one"):
        m.translate(x, 1)
    with pytest.raises(ValueError, match="exactly one"):
        compute_d_loss(m, None, x, 0, 1, z_trg=z, x_ref=x)
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        compute_g_loss(m, None, x, 0, torch.tensor([1, 5]), z_trgs=(z, z))
    with pytest.raises(TypeError, match="a pair"):
        compute_g_loss(m, None, x, 0, 1, z_trgs=z)


# ------------------------------------------------------------------------------ losses


def test_d_loss_parts_by_hand():
    m, b = _tiny(), _batch()
    args = LossWeights(lambda_reg=3.0)
    x, y_org, y_trg = b["x_real"], b["y_org"], b["y_trg"]
    for guide in (dict(z_trg=b["z_trg"]), dict(x_ref=b["x_ref"])):
        loss, parts = compute_d_loss(m, args, x, y_org, y_trg, **guide)
        xr = x.clone().requires_grad_(True)
        out = m.D(xr, y_org)
        (grad,) = torch.autograd.grad(out.sum(), xr)
        reg = 0.5 * grad.pow(2).flatten(1).sum(1).mean()
        s = m.F(b["z_trg"], y_trg) if "z_trg" in guide else m.E(b["x_ref"], y_trg)
        fake = F.softplus(m.D(m.G(x, s), y_trg)).mean()  # -log(1 - sigmoid)
        torch.testing.assert_close(parts["real"], F.softplus(-out).mean().detach())
        torch.testing.assert_close(parts["fake"], fake.detach())
        torch.testing.assert_close(parts["reg"], reg)
        want = F.softplus(-out).mean() + fake + 3 * reg
        torch.testing.assert_close(loss.detach(), want.detach())


def test_g_loss_parts_by_hand_and_the_cycle_uses_the_source_style():
    m, b = _tiny(), _batch()
    args = LossWeights(lambda_sty=2.0, lambda_ds=0.5, lambda_cyc=3.0)
    x, y_org, y_trg = b["x_real"], b["y_org"], b["y_trg"]
    for mode in ("latent", "ref"):
        if mode == "latent":
            loss, parts = compute_g_loss(m, args, x, y_org, y_trg, z_trgs=(b["z_trg"], b["z_trg2"]))
            s1, s2 = m.F(b["z_trg"], y_trg), m.F(b["z_trg2"], y_trg)
        else:
            loss, parts = compute_g_loss(m, args, x, y_org, y_trg, x_refs=(b["x_ref"], b["x_ref2"]))
            s1, s2 = m.E(b["x_ref"], y_trg), m.E(b["x_ref2"], y_trg)
        with torch.no_grad():
            fake = m.G(x, s1)
            want = dict(
                adv=F.softplus(-m.D(fake, y_trg)).mean(),
                sty=(m.E(fake, y_trg) - s1).abs().mean(),
                ds=(fake - m.G(x, s2)).abs().mean(),
                cyc=(m.G(fake, m.E(x, y_org)) - x).abs().mean(),
            )
            cyc_with_target_style = (m.G(fake, m.E(x, y_trg)) - x).abs().mean()
        for name, value in want.items():
            torch.testing.assert_close(parts[name], value, msg=name)
        assert not torch.allclose(parts["cyc"], cyc_with_target_style)
        total = want["adv"] + 2 * want["sty"] - 0.5 * want["ds"] + 3 * want["cyc"]
        torch.testing.assert_close(loss.detach(), total)


def test_g_loss_second_image_of_diversity_term_is_detached():
    m, b = _tiny(), _batch()
    z1 = b["z_trg"].clone().requires_grad_(True)
    z2 = b["z_trg2"].clone().requires_grad_(True)
    loss, _ = compute_g_loss(m, None, b["x_real"], b["y_org"], b["y_trg"], z_trgs=(z1, z2))
    g1, g2 = torch.autograd.grad(loss, (z1, z2), allow_unused=True)
    assert g1 is not None and g1.abs().sum() > 0
    assert g2 is None  # G(x, s2) is a fixed target, as in the official solver


def test_adv_loss_is_non_saturating_bce():
    logits = torch.tensor([-2.0, 0.5, 3.0])
    torch.testing.assert_close(adv_loss(logits, 1), F.softplus(-logits).mean())
    torch.testing.assert_close(adv_loss(logits, 0), F.softplus(logits).mean())
    with pytest.raises(ValueError, match="1 \\(real\\) or 0"):
        adv_loss(logits, 0.5)


def test_lambda_ds_decays_linearly_to_zero_like_the_official_loop():
    assert DS_ITER == 100_000
    assert lambda_ds_at(0, 2.0) == 2.0
    assert lambda_ds_at(25_000, 2.0) == pytest.approx(1.5)
    assert lambda_ds_at(100_000, 2.0) == 0.0 and lambda_ds_at(150_000, 2.0) == 0.0
    # the official solver subtracts initial / ds_iter after each iteration while > 0
    official, initial, ds_iter = 1.0, 1.0, 8
    for step in range(ds_iter):
        assert lambda_ds_at(step, initial, ds_iter) == pytest.approx(official, abs=1e-12)
        official -= initial / ds_iter
    values = [lambda_ds_at(t, 1.0, 10) for t in range(12)]
    steps = [a - b for a, b in zip(values, values[1:11])]
    assert steps == pytest.approx([0.1] * 10) and values[10:] == [0.0, 0.0]
    with pytest.raises(ValueError, match="ds_iter"):
        lambda_ds_at(0, 1.0, 0)


# ------------------------------------------------------------------------------ optimisers, EMA


def test_optimisers_as_the_official_solver():
    m = _tiny()
    opts = build_optimizers(m)
    assert set(opts) == {"generator", "mapping_network", "style_encoder", "discriminator"}
    for name, opt in opts.items():
        (group,) = opt.param_groups
        assert isinstance(opt, torch.optim.Adam)
        assert group["lr"] == (1e-6 if name == "mapping_network" else 1e-4)
        assert tuple(group["betas"]) == (0.0, 0.99) and group["weight_decay"] == 1e-4
        assert {id(p) for p in group["params"]} == {id(p) for p in m.nets()[name].parameters()}


def test_ema_copies_of_g_f_e_and_not_d():
    m = _tiny()
    assert set(m.ema) == {"generator", "mapping_network", "style_encoder"}
    assert all(e.decay == 0.999 for e in m.ema.values())
    keys = {k.split(".")[0] for k in m.state_dict()}
    assert {"generator_ema", "mapping_network_ema", "style_encoder_ema"} <= keys
    assert "discriminator_ema" not in keys
    for name, ema_net in m.ema_nets().items():
        assert ema_net is not m.nets()[name]
        assert not any(p.requires_grad for p in ema_net.parameters())
    b = _batch()
    y = b["y_trg"]
    with torch.no_grad():
        s = m.mapping_network_ema(b["z_trg"], y)
        want = m.generator_ema(b["x_real"], s)
    torch.testing.assert_close(m.translate(b["x_real"], y, z=b["z_trg"]), want)


# ------------------------------------------------------------------------------ the iteration


class _Recorder:
    """Wraps an optimiser; at each step records which nets hold gradients."""

    def __init__(self, name, opt, model, log):
        self.name, self.opt, self.model, self.log = name, opt, model, log

    def zero_grad(self, set_to_none=True):
        self.opt.zero_grad(set_to_none=set_to_none)

    def step(self):
        has_grad = {
            n: any(p.grad is not None for p in net.parameters())
            for n, net in self.model.nets().items()
        }
        self.log.append((self.name, {n for n, g in has_grad.items() if g}))
        self.opt.step()


def test_train_step_updates_the_right_nets_in_the_official_order():
    m, b = _tiny(), _batch(BATCH_SIZE)
    log: list = []
    opts = {n: _Recorder(n, o, m, log) for n, o in build_optimizers(m).items()}
    flags = [p.requires_grad for p in m.parameters()]
    logs = train_step(m, opts, LossWeights(), **b)
    d, g, f, e = "discriminator", "generator", "mapping_network", "style_encoder"
    assert log == [
        (d, {d}),  # D, latent-guided fakes: G, F, E get no gradients
        (d, {d}),  # D, reference-guided fakes
        (g, {g, f, e}),  # latent-guided G step: D's gradients stay None
        (f, {g, f, e}),
        (e, {g, f, e}),
        (g, {g}),  # reference-guided step: G alone
    ]
    assert [p.requires_grad for p in m.parameters()] == flags  # frozen nets restored
    assert set(logs) == {f"D/{mode}_{k}" for mode in ("latent", "ref") for k in
                         ("real", "fake", "reg")} | {f"G/{mode}_{k}" for mode in ("latent", "ref")
                         for k in ("adv", "sty", "ds", "cyc")} | {"G/lambda_ds"}  # fmt: skip
    assert all(torch.isfinite(v) for v in logs.values())
    assert all(e.updates == 1 for e in m.ema.values())


def _official_iteration(m, opts, args, b):
    """The official Solver.train body, without freezing anything."""

    def reset():
        for o in opts.values():
            o.zero_grad()

    x, y_org, y_trg = b["x_real"], b["y_org"], b["y_trg"]
    for guide in (dict(z_trg=b["z_trg"]), dict(x_ref=b["x_ref"])):
        loss, _ = compute_d_loss(m, args, x, y_org, y_trg, **guide)
        reset()
        loss.backward()
        opts["discriminator"].step()
    loss, _ = compute_g_loss(m, args, x, y_org, y_trg, z_trgs=(b["z_trg"], b["z_trg2"]))
    reset()
    loss.backward()
    for name in ("generator", "mapping_network", "style_encoder"):
        opts[name].step()
    loss, _ = compute_g_loss(m, args, x, y_org, y_trg, x_refs=(b["x_ref"], b["x_ref2"]))
    reset()
    loss.backward()
    opts["generator"].step()


def test_freezing_changes_no_update():
    ours, b = _tiny(), _batch(BATCH_SIZE)
    official = copy.deepcopy(ours)
    args = LossWeights(lambda_ds=2.0)
    train_step(ours, build_optimizers(ours), args, **b)
    _official_iteration(official, build_optimizers(official), args, b)
    before = _tiny()  # the same seed: the initial weights
    for name, net in ours.nets().items():
        moved = False
        for p, q, p0 in zip(net.parameters(), official.nets()[name].parameters(),
                            before.nets()[name].parameters()):  # fmt: skip
            torch.testing.assert_close(p, q, msg=name)
            moved |= not torch.equal(p, p0)
        assert moved, f"{name} was not updated"


def test_small_batch_warns():
    m = _tiny()
    with pytest.warns(UserWarning, match="batch size 2 < 8"):
        train_step(m, build_optimizers(m), LossWeights(), **_batch(2))
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        train_step(m, build_optimizers(m), LossWeights(), **_batch(BATCH_SIZE))
    with pytest.raises(ValueError, match="x_ref2 must have the batch size"):
        b = _batch(4)
        b["x_ref2"] = b["x_ref2"][:3]
        train_step(m, build_optimizers(m), LossWeights(), **b)


def test_evaluation_pairs():
    pairs = evaluation_pairs(3)
    assert len(pairs) == 6 == len(set(pairs)) and all(s != t for s, t in pairs)
    with pytest.raises(ValueError):
        evaluation_pairs(1)
