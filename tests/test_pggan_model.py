"""PGGAN's growing G and D, the fade-in (G, D and the real images), the schedule's phases and
level index against the official formula, PixelNorm after every conv of G, minibatch stddev,
equalised layers everywhere, the losses by hand, and the parameter count at full size."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.models import pggan
from ganlab.models.pggan import (
    CODE_BATCH_SIZES,
    CODE_PHASE_IMAGES,
    FADE,
    PAPER_PARAMETERS,
    STABILISE,
    Discriminator,
    Generator,
    ProgressiveSchedule,
    adam,
    d_loss,
    fade_reals,
    g_loss,
    level_of,
    reals_for,
)
from ganlab.nn import EqualizedConv2d, EqualizedLinear, MinibatchStdDev, PixelNorm


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


RES, LATENT = 32, 16  # levels 0..3 (4, 8, 16, 32 px)
TINY = dict(fmap_base=64, fmap_max=16)  # widths 16, 16, 8, 4


def _tiny(seed=0):
    torch.manual_seed(seed)
    return Generator(RES, LATENT, **TINY), Discriminator(RES, **TINY)


def _images(b, size, seed=1):
    return torch.randn(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _up(x):  # nearest x2 by hand
    return x.repeat_interleave(2, dim=-2).repeat_interleave(2, dim=-1)


def _down(x):  # 2x2 means by hand
    return (x[..., 0::2, 0::2] + x[..., 0::2, 1::2] + x[..., 1::2, 0::2] + x[..., 1::2, 1::2]) / 4


def _conv(layer: EqualizedConv2d, x):  # w = gain / sqrt(fan_in) * w_hat, by hand
    fan_in = layer.weight[0].numel()
    w = layer.weight * layer.gain / math.sqrt(fan_in)
    return F.conv2d(x, w, layer.bias, padding=layer.weight.shape[-1] // 2)


def _pn(x):
    return x / torch.sqrt((x**2).mean(dim=1, keepdim=True) + 1e-8)


def _lrelu(x):
    return torch.where(x >= 0, x, 0.2 * x)


def _hand_generator(G, z, level):
    """h_level by hand from G's parameters (official G_paper order)."""
    first = G.blocks[0]
    w = first.dense.weight * (math.sqrt(2) / 4) / math.sqrt(G.latent_size)
    h = (_pn(z) @ w.T).view(len(z), -1, 4, 4) + first.bias.view(1, -1, 1, 1)
    h = _pn(_lrelu(h))
    h = _pn(_lrelu(_conv(first.conv[0], h)))
    for k in range(1, level + 1):
        block = G.blocks[k]
        h = _pn(_lrelu(_conv(block.conv0[0], _up(h))))
        h = _pn(_lrelu(_conv(block.conv1[0], h)))
    return h


def _hand_discriminator_tail(D, h, level):
    """D's blocks level-1 .. 0 by hand on features h at level-1's resolution."""
    for k in range(level - 1, 0, -1):
        block = D.blocks[k]
        h = _down(_lrelu(_conv(block.conv1[0], _lrelu(_conv(block.conv0[0], h)))))
    out = D.blocks[0]
    b = len(h)
    groups = h.reshape(4, b // 4, *h.shape[1:])  # sample n in group n % (B/4)
    std = torch.sqrt(groups.var(dim=0, unbiased=False) + 1e-8).mean(dim=(1, 2, 3))  # (B/4,)
    h = torch.cat([h, std.repeat(4)[:, None, None, None].expand(b, 1, 4, 4)], dim=1)
    h = _lrelu(_conv(out.conv[0], h)).flatten(1)
    h = _lrelu(F.linear(h, out.dense0.weight * out.dense0.scale, out.dense0.bias))
    return F.linear(h, out.dense1.weight * out.dense1.scale, out.dense1.bias).squeeze(1)


# ----------------------------------------------------------------------------- shapes


@pytest.mark.parametrize("level", [0, 1, 2, 3])
def test_shapes_at_every_level(level):
    G, D = _tiny()
    size = 4 * 2**level
    for alpha in [1.0] if level == 0 else [0.0, 0.3, 1.0]:
        x = G(G.sample_z(4), level, alpha)
        assert x.shape == (4, 3, size, size)
        assert D(x, level, alpha).shape == (4,)
    assert [level_of(s) for s in (4, 8, 16, 32, 1024)] == [0, 1, 2, 3, 8]


def test_official_widths_and_latent_at_1024():
    G = Generator(1024)
    assert G.latent_size == 512
    assert G.widths == [512, 512, 512, 512, 256, 128, 64, 32, 16]  # 4, 8, ..., 1024 px
    assert Discriminator(1024).widths == G.widths


def test_parameter_count_at_full_size_is_the_papers_23_1M():
    """Paper (Table 2): 23.1M parameters for G and for D at 1024 px. Counted here (every
    level's toRGB / fromRGB included): G 23,079,115 and D 23,087,249 (printed by this test)."""
    torch.manual_seed(0)
    n_g = sum(p.numel() for p in Generator(1024).parameters())
    n_d = sum(p.numel() for p in Discriminator(1024).parameters())
    print(f"PGGAN at 1024 px: G {n_g:,} D {n_d:,} parameters (paper: 23.1M each)")
    assert round(n_g / 1e6, 1) == round(n_d / 1e6, 1) == PAPER_PARAMETERS / 1e6
    assert (n_g, n_d) == (23_079_115, 23_087_249)


# ----------------------------------------------------------------------------- fade-in


@pytest.mark.parametrize("level", [1, 2, 3])
def test_generator_fade_in_by_hand(level):
    G = _tiny()[0].double()  # float64: the hand computation may round differently
    z = G.sample_z(4, generator=torch.Generator().manual_seed(3)).double()
    with torch.no_grad():
        h_prev, h_new = _hand_generator(G, z, level - 1), _hand_generator(G, z, level)
        old = _up(_conv(G.to_rgb[level - 1], h_prev))  # previous level's image, upsampled
        new = _conv(G.to_rgb[level], h_new)  # the new block only
        torch.testing.assert_close(G(z, level, 0.0), old)
        torch.testing.assert_close(G(z, level, 0.0), _up(G(z, level - 1, 1.0)))
        torch.testing.assert_close(G(z, level, 1.0), new)
        torch.testing.assert_close(G(z, level, 0.25), 0.75 * old + 0.25 * new)
        alpha = torch.tensor(0.25)  # a float32 tensor works too (the dtype follows G's)
        torch.testing.assert_close(G(z, level, alpha), 0.75 * old + 0.25 * new)


@pytest.mark.parametrize("level", [1, 2, 3])
def test_discriminator_fade_in_by_hand(level):
    D = _tiny()[1].double()
    size = 4 * 2**level
    x = _images(8, size).double()
    with torch.no_grad():
        from_new = _lrelu(_conv(D.from_rgb[level][0], x))
        block = D.blocks[level]
        new = _down(_lrelu(_conv(block.conv1[0], _lrelu(_conv(block.conv0[0], from_new)))))
        old = _lrelu(_conv(D.from_rgb[level - 1][0], _down(x)))
        torch.testing.assert_close(D(x, level, 1.0), _hand_discriminator_tail(D, new, level))
        torch.testing.assert_close(D(x, level, 0.0), _hand_discriminator_tail(D, old, level))
        torch.testing.assert_close(D(x, level, 0.0), D(_down(x), level - 1, 1.0))
        mixed = 0.6 * old + 0.4 * new
        torch.testing.assert_close(D(x, level, 0.4), _hand_discriminator_tail(D, mixed, level))


def test_discriminator_level_0_by_hand():
    _, D = _tiny()
    x = _images(8, 4)
    with torch.no_grad():
        h = _lrelu(_conv(D.from_rgb[0][0], x))
        torch.testing.assert_close(D(x, 0), _hand_discriminator_tail(D, h, 0))


def test_fade_reals_by_hand():
    x = torch.tensor([[1.0, 2.0, 5.0, 5.0], [3.0, 4.0, 7.0, 9.0]]).view(1, 1, 2, 4)
    blurred = torch.tensor([[2.5, 2.5, 6.5, 6.5], [2.5, 2.5, 6.5, 6.5]]).view(1, 1, 2, 4)
    assert torch.equal(fade_reals(x, 1.0), x)  # stabilise: the reals as they are
    assert torch.equal(fade_reals(x, 0.0), blurred)  # the previous level's image, upsampled
    torch.testing.assert_close(fade_reals(x, 0.25), 0.75 * blurred + 0.25 * x)
    y = _images(2, 16)
    torch.testing.assert_close(fade_reals(y, 0.0), _up(_down(y)))


def test_reals_for_downsamples_then_fades():
    y = _images(4, 32)
    torch.testing.assert_close(reals_for(y, 3, 1.0), y)
    torch.testing.assert_close(reals_for(y, 1, 1.0), _down(_down(y)))
    torch.testing.assert_close(reals_for(y, 2, 0.0), _up(_down(_down(y))))
    torch.testing.assert_close(reals_for(y, 0, 1.0), _down(_down(_down(y))))
    with pytest.raises(ValueError, match="level must be in 0..3"):
        reals_for(y, 4, 1.0)


def test_d_sees_the_same_at_the_start_of_a_fade_in():
    """At alpha = 0 the faded reals at level k score as the reals at level k-1: no jump."""
    _, D = _tiny()
    y = _images(8, 32)
    with torch.no_grad():
        for level in (1, 2, 3):
            torch.testing.assert_close(
                D(reals_for(y, level, 0.0), level, 0.0), D(reals_for(y, level - 1, 1.0), level - 1)
            )


# ----------------------------------------------------------------------------- layers


def test_pixelnorm_after_every_conv_of_g():
    """Every layer's input after z (the first conv, every later conv and every toRGB) has unit
    mean square over the channels at every pixel, and is pixel_norm(lrelu(previous output))."""
    G, _ = _tiny()
    inputs, outputs = [], []
    layers = [m for m in G.modules() if isinstance(m, (EqualizedConv2d, EqualizedLinear))]

    def record(module, args, out):
        inputs.append(args[0])
        outputs.append(out)

    hooks = [m.register_forward_hook(record) for m in layers]
    with torch.no_grad():
        G(G.sample_z(4), 3, 0.5)
    for hook in hooks:
        hook.remove()
    # dense, conv(4x4), 2 convs x 3 blocks, toRGB_2 and toRGB_3; a hook fires once per call
    assert len(inputs) == 2 + 6 + 2
    assert torch.allclose(inputs[0].pow(2).mean(dim=1), torch.ones(4))  # z pixel-normalised
    for x in inputs[1:]:
        ms = x.pow(2).mean(dim=1)  # (B, H, W)
        assert torch.allclose(ms, torch.ones_like(ms), atol=1e-4)  # eps 1e-8 under the root
    first = G.blocks[0]
    h = outputs[0].view(4, -1, 4, 4) + first.bias.view(1, -1, 1, 1)
    torch.testing.assert_close(inputs[1], _pn(_lrelu(h)))  # dense -> first conv
    # execution order: dense, block 0's conv, (conv0, conv1) of blocks 1..3, toRGB_3, toRGB_2
    for i in (2, 4, 6):  # a block's conv0 gets the previous conv's output, normed, upsampled
        torch.testing.assert_close(inputs[i], _up(_pn(_lrelu(outputs[i - 1]))))
    for i in (3, 5, 7):  # conv1 gets conv0's output, normed
        torch.testing.assert_close(inputs[i], _pn(_lrelu(outputs[i - 1])))
    torch.testing.assert_close(inputs[8], _pn(_lrelu(outputs[7])))  # toRGB_3 on h_3
    torch.testing.assert_close(inputs[9], _pn(_lrelu(outputs[5])))  # toRGB_2 on h_2
    n_norms = sum(isinstance(m, PixelNorm) for m in G.modules())
    assert n_norms == 2 + 2 * G.max_level  # after the dense and after every conv


def test_minibatch_stddev_in_d_at_4x4_only():
    _, D = _tiny()
    stddevs = [m for m in D.modules() if isinstance(m, MinibatchStdDev)]
    assert stddevs == [D.blocks[0].minibatch_stddev] and stddevs[0].group_size == 4
    assert D.blocks[0].conv[0].weight.shape[1] == D.widths[0] + 1  # the extra feature map
    # the critic compares samples within a group of 4: sample 0's score depends on sample 4
    # (the same group n % 2 for B = 8) and not on sample 1 (the other group)
    x = _images(8, 16)
    with torch.no_grad():
        base = D(x, 2)
        x4, x1 = x.clone(), x.clone()
        x4[4] *= 3.0
        x1[1] *= 3.0
        assert (D(x4, 2)[0] - base[0]).abs() > 1e-4
        torch.testing.assert_close(D(x1, 2)[0], base[0])


def test_equalised_layers_everywhere():
    G, D = _tiny()
    for net in (G, D):
        assert not any(isinstance(m, (nn.Conv2d, nn.Linear)) for m in net.modules())
        eq = [m for m in net.modules() if isinstance(m, (EqualizedConv2d, EqualizedLinear))]
        owned = {id(p) for m in eq for p in m.parameters()}
        others = [n for n, p in net.named_parameters() if id(p) not in owned]
        assert others == (["blocks.0.bias"] if net is G else [])  # G's per-channel dense bias
        for m in eq:
            assert m.lr_mul == 1.0
    assert all(m.gain == 1.0 for m in G.to_rgb) and D.blocks[0].dense1.gain == 1.0
    assert math.isclose(G.blocks[0].dense.gain, math.sqrt(2) / 4)
    hidden = [m for m in G.blocks.modules() if isinstance(m, EqualizedConv2d)]
    hidden += [m for m in D.modules() if isinstance(m, (EqualizedConv2d, EqualizedLinear))]
    hidden.remove(D.blocks[0].dense1)
    assert all(math.isclose(m.gain, math.sqrt(2)) for m in hidden)


# ----------------------------------------------------------------------------- losses


class LinearCritic(nn.Module):
    """D(x) = <w, x> + b per sample, whatever the level: grad_x D = w for every input."""

    def __init__(self, size):
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-0.5, 0.7, 3 * size * size).view(1, 3, size, size))
        self.b = nn.Parameter(torch.tensor(0.3))

    def forward(self, x, level, alpha):
        return (x * self.w).flatten(1).sum(1) + self.b


def test_d_loss_and_g_loss_by_hand_on_a_linear_critic():
    critic = LinearCritic(4)
    reals, fakes = _images(4, 4, seed=5), _images(4, 4, seed=6)
    with torch.no_grad():
        w, b = critic.w, critic.b
        d_real = (reals * w).flatten(1).sum(1) + b
        d_fake = (fakes * w).flatten(1).sum(1) + b
        gp = 10 * (w.norm() - 1) ** 2  # the same at every interpolate
        expected = d_fake.mean() - d_real.mean() + gp + 0.001 * (d_real**2).mean()
    loss, terms = d_loss(critic, reals, fakes, 0, 1.0, return_terms=True)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(terms["wasserstein"], d_real.mean() - d_fake.mean())
    torch.testing.assert_close(terms["gp"], gp)
    torch.testing.assert_close(g_loss(critic, fakes, 0, 1.0), -d_fake.mean())
    loss.backward()  # d/db: -1 + 1 + 0.001 * 2 mean(D(real)); d/dw includes the penalty
    torch.testing.assert_close(critic.b.grad, 0.002 * d_real.mean())


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_gradients_flow_to_the_active_layers_only(alpha):
    G, D = _tiny()
    z = G.sample_z(4, generator=torch.Generator().manual_seed(0))
    reals = reals_for(_images(4, 32), 2, alpha)
    fakes = G(z, 2, alpha)
    d_loss(D, reals, fakes, 2, alpha).backward()
    assert all(p.grad is None for p in G.parameters())  # fakes are detached
    fading = alpha < 1
    d_used = {"from_rgb.2", "blocks.2", "blocks.1", "blocks.0"} | (
        {"from_rgb.1"} if fading else set()
    )
    for name, p in D.named_parameters():
        active = ".".join(name.split(".")[:2]) in d_used
        assert (p.grad is not None and p.grad.abs().sum() > 0) == active, name
    D.zero_grad(set_to_none=True)
    g_loss(D, fakes, 2, alpha).backward()
    g_used = {"to_rgb.2", "blocks.2", "blocks.1", "blocks.0"} | ({"to_rgb.1"} if fading else set())
    for name, p in G.named_parameters():
        active = ".".join(name.split(".")[:2]) in g_used
        assert (p.grad is not None and p.grad.abs().sum() > 0) == active, name


def test_adam_settings():
    opt = adam(nn.Linear(2, 2).parameters())
    group = opt.param_groups[0]
    assert (group["lr"], group["betas"], group["eps"]) == (1e-3, (0.0, 0.99), 1e-8)


# ----------------------------------------------------------------------------- schedule


def _official_lod(images, max_level, stabilise, fade):
    """The official TrainingSchedule's lod at ``images`` real images shown (train.py)."""
    phase_dur = stabilise + fade
    phase_idx = images // phase_dur
    phase_images = images - phase_idx * phase_dur
    lod = max_level - phase_idx - max(phase_images - stabilise, 0) / fade
    return max(lod, 0.0)


def test_schedule_phases_fade_before_stabilise():
    s = ProgressiveSchedule(max_level=3, stabilise_images=12, fade_images=8, batch_size=4)
    kinds = [(p.level, p.kind, p.steps) for p in s.phases]
    assert kinds == [(0, STABILISE, 3), (1, FADE, 2), (1, STABILISE, 3), (2, FADE, 2),
                     (2, STABILISE, 3), (3, FADE, 2), (3, STABILISE, 3)]  # fmt: skip
    states = [s(t) for t in range(s.total_steps + 5)]
    assert all(st.phase == STABILISE and st.alpha == 1.0 for st in states if st.level == 0)
    assert [st.alpha for st in states[3:6]] == [0.0, 0.5, 1.0]  # fade 1 -> stabilise 1
    assert [(st.level, st.phase) for st in states[3:6]] == [(1, FADE), (1, FADE), (1, STABILISE)]
    assert [st.resolution for st in states[:6]] == [4, 4, 4, 8, 8, 8]
    assert all(st.level == 3 and st.phase == STABILISE for st in states[15:])  # to the end
    assert s(10**6).level == 3 and s(10**6).alpha == 1.0
    assert s.reset_steps == [0, 3, 5, 8, 10, 13, 15]
    assert [t for t, st in enumerate(states) if st.reset_optimizer] == s.reset_steps
    assert [t for t, st in enumerate(states) if st.new_level] == [0, 3, 8, 13]
    assert [st.images_seen for st in states[:5]] == [0, 4, 8, 12, 16]


def test_schedule_level_index_matches_the_official_lod():
    """Batch 1: step = images shown; lod = max_level - level + (1 - alpha) everywhere."""
    s = ProgressiveSchedule(max_level=3, stabilise_images=7, fade_images=5, batch_size=1)
    for t in range(s.total_steps + 10):
        assert s(t).lod(3) == pytest.approx(_official_lod(t, 3, 7, 5), abs=1e-12), t


def test_schedule_batch_per_resolution_and_variants():
    s = ProgressiveSchedule(3, CODE_PHASE_IMAGES, CODE_PHASE_IMAGES, CODE_BATCH_SIZES)
    assert [p.batch_size for p in s.phases] == [128, 128, 128, 128, 128, 64, 64]
    assert [p.steps for p in s.phases][:2] == [4688, 4688]  # ceil(600000 / 128)
    full = ProgressiveSchedule(3, 10, 10, 2, start_level=3)  # no growing: full size at once
    assert [(p.level, p.kind) for p in full.phases] == [(3, STABILISE)]
    sudden = ProgressiveSchedule(2, 10, 0, 2)  # growing without fading
    assert [(p.level, p.kind) for p in sudden.phases] == [(0, STABILISE), (1, STABILISE),
                                                         (2, STABILISE)]  # fmt: skip
    with pytest.raises(ValueError, match="missing \\[16\\]"):
        ProgressiveSchedule(2, 10, 10, {4: 2, 8: 2})
    with pytest.raises(ValueError, match="stabilise_images"):
        ProgressiveSchedule(2, 0, 10, 2)


def test_schedule_scaled_to_a_run():
    s = ProgressiveSchedule.for_steps(100, max_level=3, batch_size=8)
    assert [p.steps for p in s.phases] == [14] * 7  # 100 // 7 steps per phase
    assert [s(t).level for t in (0, 13, 14, 41, 42, 70, 99)] == [0, 0, 1, 1, 2, 3, 3]
    assert (s(70).phase, s(70).alpha, s(77).alpha) == (FADE, 0.0, 0.5)  # fade 3: steps 70..83
    assert s(84).phase == STABILISE and s(84).reset_optimizer and s(99).phase == STABILISE
    assert s(14).images_seen == 14 * 8
    fixed = ProgressiveSchedule.for_steps(50, max_level=3, batch_size=8, start_level=3)
    assert {(s.level, s.alpha) for s in map(fixed, range(50))} == {(3, 1.0)}
    with pytest.raises(ValueError, match="total_steps must be >= 7"):
        ProgressiveSchedule.for_steps(6, max_level=3, batch_size=8)


# ----------------------------------------------------------------------------- bad input


def test_clear_errors_on_bad_input():
    G, D = _tiny()
    z = G.sample_z(4)
    with pytest.raises(ValueError, match=r"z must have shape \(B, 16\)"):
        G(torch.randn(4, 15), 1, 1.0)
    with pytest.raises(TypeError, match="z must be a float"):
        G(torch.ones(4, 16, dtype=torch.long), 1, 1.0)
    with pytest.raises(ValueError, match="level must be in 0..3"):
        G(z, 4, 1.0)
    with pytest.raises(TypeError, match="level must be an int"):
        G(z, 1.0, 1.0)
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\]"):
        G(z, 2, 1.5)
    with pytest.raises(ValueError, match="level 0 .* has no fade-in"):
        G(z, 0, 0.5)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, 8, 8\).*level 1"):
        D(_images(4, 16), 1, 1.0)
    with pytest.raises(ValueError, match="divisible by the group size"):
        D(_images(6, 8), 1, 1.0)
    with pytest.raises(ValueError, match="power of two"):
        Generator(48)
    with pytest.raises(ValueError, match="channels at the last level"):
        Discriminator(64, fmap_base=8, fmap_max=8)
    with pytest.raises(ValueError, match="same shape"):
        d_loss(D, _images(4, 8), _images(4, 16), 1, 1.0)


def test_the_fade_in_blend_accepts_mixed_dtypes():
    """Under CUDA autocast one path of a fade-in can be bf16 and the other float32."""
    old = torch.randn(2, 3, 4, 4, dtype=torch.bfloat16)
    new = torch.randn(2, 3, 4, 4)
    out = pggan._lerp(old, new, torch.tensor(0.25))
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, old.float() + 0.25 * (new - old.float()))
