"""Checks for Chapter 5's assignment (PGGAN, Karras et al. 2018).

1. ``EqualizedConv2d(in_channels, out_channels, kernel_size, gain=sqrt(2))``: a conv layer
   whose stored weight is N(0, 1) and is scaled by gain / sqrt(fan_in) at RUN time (Sec. 4.1).
2. ``pixel_norm(x, eps=1e-8)``: each pixel's feature vector divided by its root mean square
   over the channels (Sec. 4.2).
3. ``minibatch_stddev(x, group_size=4)``: one more feature map holding, per group of samples,
   the standard deviation over the group averaged over features and pixels (Sec. 3).
4. ``fade_in(old_rgb, new_rgb, alpha)`` and ``fade_reals(x, alpha)``: the fade-in blend in G
   and the same blend on the real images (Sec. 2, Fig. 2).
5. ``critic_loss(D, reals, fakes, eps)``: WGAN-GP with lambda 10 and the drift term 0.001
   (Sec. A.1), with the interpolation weights ``eps`` given.

Each check makes its own inputs, at more than one size, computes its own golden, and names
the recognisable mistakes (the scale baked into the initial weights, the wrong axis, no
groups, alpha reversed, the penalty on the wrong interpolate or without ``create_graph``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.grading.checks.common import close, require_tensor
from ganlab.grading.checks.common import shape as _shape
from ganlab.grading.registry import CheckFailed, Exercise, register

CHAPTER = "pggan"


def _close(a, b, atol=1e-5, rtol=1e-4) -> bool:
    return close(a, b, atol=atol, rtol=rtol)


def _diagnose(got, hints: dict, atol=1e-5, rtol=1e-4) -> str:
    for hint, value in hints.items():
        if value is not None and _close(got, value, atol, rtol):
            return f": it looks like {hint}"
    return ""


def _require_close(got, want, what: str, hints: dict | None = None, atol=1e-5, rtol=1e-4):
    got = require_tensor(got, what)
    if got.shape != want.shape:
        raise CheckFailed(f"{what}: expected shape {_shape(want)}, got {_shape(got)}")
    if not torch.isfinite(got).all():
        raise CheckFailed(f"{what}: expected finite values, got NaN or inf")
    if not _close(got, want, atol, rtol):
        err = (got.detach().double() - want.detach().double()).abs().max().item()
        hint = _diagnose(got, hints or {}, atol, rtol)
        raise CheckFailed(
            f"{what}: values differ from the expected ones (largest difference {err:.3g})" + hint
        )


# --------------------------------------------------------------------------------------
# Exercise 1: the equalised learning rate
# --------------------------------------------------------------------------------------


def _build_layer(cls, *args, **kwargs) -> nn.Module:
    try:
        layer = cls(*args, **kwargs)
    except NotImplementedError:
        raise
    except Exception as exc:  # the student's constructor
        raise CheckFailed(
            f"EqualizedConv2d{args} with {kwargs or 'the default gain'} raised "
            f"{type(exc).__name__}: {exc}"
        ) from exc
    if not isinstance(layer, nn.Module):
        raise CheckFailed("EqualizedConv2d should be an nn.Module subclass")
    for name in ("weight", "bias"):
        if not isinstance(getattr(layer, name, None), nn.Parameter):
            raise CheckFailed(f"EqualizedConv2d should keep its {name} as an nn.Parameter")
    return layer


def check_equalized_conv(cls) -> None:
    """N(0, 1) stored weights, zero bias, run-time scale gain / sqrt(in * k * k), SAME padding;
    the gradient reaches the stored weight through the scale."""
    big = _build_layer(cls, 64, 32, 3)
    w = big.weight.detach()
    if w.shape != (32, 64, 3, 3):
        raise CheckFailed(
            f"EqualizedConv2d(64, 32, 3).weight should have shape (out, in, k, k) = "
            f"(32, 64, 3, 3), got {_shape(w)}"
        )
    he = math.sqrt(2 / (64 * 9))
    std = w.std().item()
    if abs(std - he) < 0.2 * he:
        raise CheckFailed(
            f"EqualizedConv2d(64, 32, 3).weight has std {std:.3f}, the He constant "
            f"sqrt(2 / fan_in) = {he:.3f}: the scale was applied to the INITIAL weights. The "
            "equalised learning rate stores N(0, 1) weights and multiplies by the constant at "
            "run time, in forward, so that Adam's steps are the same size for every layer"
        )
    if not 0.9 < std < 1.1 or abs(w.mean().item()) > 0.05:
        raise CheckFailed(
            f"EqualizedConv2d(64, 32, 3).weight should be drawn from N(0, 1); its mean is "
            f"{w.mean().item():.3f} and std {std:.3f}"
        )
    if big.bias.shape != (32,) or big.bias.detach().abs().max() != 0:
        raise CheckFailed("the bias should have shape (out_channels,) and start at zero")

    gen = torch.Generator().manual_seed(5)
    cases = [((3, 5, 3), {}, (2, 3, 5, 7)), ((4, 2, 1), {}, (3, 4, 6, 6)),
             ((2, 3, 3), {"gain": 1.0}, (2, 2, 8, 8))]  # fmt: skip
    for args, kwargs, x_shape in cases:
        c_in, c_out, k = args
        layer = _build_layer(cls, *args, **kwargs)
        weight = torch.randn(c_out, c_in, k, k, generator=gen)
        bias = torch.randn(c_out, generator=gen)
        with torch.no_grad():
            layer.weight.copy_(weight)
            layer.bias.copy_(bias)
        x = torch.randn(x_shape, generator=gen)
        gain = kwargs.get("gain", math.sqrt(2))
        scale = gain / math.sqrt(c_in * k * k)
        want = F.conv2d(x, weight * scale, bias, padding=k // 2)
        layer.zero_grad(set_to_none=True)
        try:
            got = layer(x)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise CheckFailed(
                f"EqualizedConv2d{args}({_shape(x)}) raised {type(exc).__name__}: {exc}"
            ) from exc
        what = f"EqualizedConv2d{args}, gain {gain:.4g}, on x {tuple(x_shape)}"
        got = require_tensor(got, what)
        if got.shape != want.shape:
            hint = (
                ": pad by kernel_size // 2 so that the output keeps H and W"
                if got.shape[-1] < want.shape[-1]
                else ""
            )
            raise CheckFailed(f"{what}: expected shape {_shape(want)}, got {_shape(got)}{hint}")
        p = k // 2
        _require_close(
            got,
            want,
            what,
            {
                "forward does not apply the run-time scale (the equalised learning rate "
                "multiplies the stored weight by gain / sqrt(fan_in) in forward)": (
                    F.conv2d(x, weight, bias, padding=p)
                ),
                "fan_in counts the OUTPUT channels: it is in_channels * k * k": F.conv2d(
                    x, weight * gain / math.sqrt(c_out * k * k), bias, padding=p
                ),
                "the scale has no square root: gain / sqrt(fan_in)": F.conv2d(
                    x, weight * gain / (c_in * k * k), bias, padding=p
                ),
                "the bias is scaled too (only the weight is)": F.conv2d(
                    x, weight * scale, None, padding=p
                )
                + (bias * scale)[:, None, None],
            },
        )
        got.square().sum().backward()
        w_leaf = weight.clone().requires_grad_()
        F.conv2d(x, w_leaf * scale, bias, padding=p).square().sum().backward()
        grad = layer.weight.grad
        if grad is None or not _close(grad, w_leaf.grad, 1e-4):
            raise CheckFailed(
                f"{what}: the gradient does not reach the stored weight through the scale "
                "(use the parameter itself, times the constant, in forward; not .data)"
            )


# --------------------------------------------------------------------------------------
# Exercise 2: PixelNorm
# --------------------------------------------------------------------------------------


def _pixel_norm_golden(x, eps=1e-8):
    return x / torch.sqrt(x.pow(2).mean(dim=1, keepdim=True) + eps)


def check_pixel_norm(pixel_norm) -> None:
    """Over dim 1 (the channels), the root MEAN square, eps inside the square root."""
    gen = torch.Generator().manual_seed(7)
    for x_shape in ((3, 6, 4, 5), (5, 7), (2, 16, 3, 3)):
        x = torch.randn(x_shape, generator=gen, dtype=torch.float64) * 3
        x[0] = x[0] * 1e-5  # a near-zero feature vector: eps matters
        want = _pixel_norm_golden(x)
        what = f"pixel_norm on x {x_shape}"
        try:
            got = pixel_norm(x.clone())
        except NotImplementedError:
            raise
        except Exception as exc:
            raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc
        hints = {
            "a sum over the channels, not the mean (PixelNorm divides by the root MEAN "
            "square: the output has mean square 1 per pixel)": x
            / torch.sqrt(x.pow(2).sum(1, keepdim=True) + 1e-8),
            "an L2 normalisation (unit length); PixelNorm divides by the root MEAN square, "
            "so the output has length sqrt(C)": x / x.norm(dim=1, keepdim=True).clamp_min(1e-12),
            "eps is added outside the square root (sqrt(mean x^2 + eps))": x
            / (torch.sqrt(x.pow(2).mean(1, keepdim=True)) + 1e-8),
            "the norm runs over the batch (dim 0); it runs over the channels (dim 1)": x
            / torch.sqrt(x.pow(2).mean(0, keepdim=True) + 1e-8),
        }
        if x.dim() == 4:
            hints["the norm runs over the last axis (width); it runs over dim 1, the "
                  "channels"] = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 1e-8)  # fmt: skip
            hints["the norm runs over all of C, H, W; PixelNorm normalises each pixel's "
                  "feature vector (dim 1 alone)"] = x / torch.sqrt(
                x.pow(2).mean((1, 2, 3), keepdim=True) + 1e-8)  # fmt: skip
        _require_close(got, want, what, hints, atol=1e-6)


# --------------------------------------------------------------------------------------
# Exercise 3: minibatch standard deviation
# --------------------------------------------------------------------------------------


def _mbstd_golden(x, group_size, groups=True, unbiased=False, strided=True, axis=0):
    n, c, h, w = x.shape
    g = min(group_size, n) if groups else n
    m = n // g
    y = x.reshape(g, m, c, h, w) if strided else x.reshape(m, g, c, h, w).transpose(0, 1)
    if axis == 2:  # over the channels instead of the group
        s = y.std(dim=2, unbiased=unbiased, keepdim=True).expand(g, m, c, h, w)
        s = s.mean(dim=(2, 3, 4))  # (G, M): per sample
        stat = s.reshape(n) if strided else s.transpose(0, 1).reshape(n)
        return torch.cat([x, stat[:, None, None, None].expand(n, 1, h, w)], 1)
    var = y.var(dim=0, unbiased=unbiased) if g > 1 else torch.zeros_like(y[0])
    s = (var + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (M,)
    stat = s.repeat(g) if strided else s.repeat_interleave(g)
    return torch.cat([x, stat[:, None, None, None].expand(n, 1, h, w)], 1)


def check_minibatch_stddev(minibatch_stddev) -> None:
    """(N, C, H, W) -> (N, C + 1, H, W): strided groups of min(group_size, N), the biased std
    over each group, averaged over C, H, W, appended as the last channel."""
    gen = torch.Generator().manual_seed(11)
    cases = [((8, 3, 4, 4), 4), ((6, 2, 4, 4), 3), ((4, 5, 2, 3), 4), ((2, 3, 4, 4), 4)]
    for x_shape, group in cases:
        x = torch.randn(x_shape, generator=gen, dtype=torch.float64)
        x = x * torch.linspace(0.5, 3.0, x_shape[0], dtype=torch.float64)[:, None, None, None]
        want = _mbstd_golden(x, group)
        what = f"minibatch_stddev(x {x_shape}, group_size={group})"
        try:
            got = minibatch_stddev(x.clone(), group)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc
        got = require_tensor(got, what)
        if got.shape != want.shape:
            raise CheckFailed(
                f"{what}: expected shape (N, C + 1, H, W) = {_shape(want)}, got {_shape(got)}"
            )
        if not _close(got[:, :-1], x):
            raise CheckFailed(f"{what}: the first C channels should be x unchanged")
        hints = {
            "the std over the whole minibatch: split it into groups of group_size (the "
            "official code; each group gets its own statistic)": (
                _mbstd_golden(x, group, groups=False) if min(group, len(x)) < len(x) else None
            ),
            "the std over the CHANNELS of each sample; it is over the samples of a group "
            "(dim 0 after the reshape), for every feature and pixel": _mbstd_golden(
                x, group, axis=2
            ),
            "the unbiased std (divisor G - 1); the paper's is the biased one (divisor G)": (
                _mbstd_golden(x, group, unbiased=True)
            ),
            "groups of consecutive samples; the official reshape [G, -1, ...] makes sample n "
            "a member of group n % M (M = N / G groups)": _mbstd_golden(x, group, strided=False),
        }
        _require_close(got, want, what, hints, atol=1e-6)


# --------------------------------------------------------------------------------------
# Exercise 4: the fade-in blend, in G and on the reals
# --------------------------------------------------------------------------------------


def _up(x):
    return x.repeat_interleave(2, -2).repeat_interleave(2, -1)


def _down(x):
    return F.avg_pool2d(x, 2)


def check_fade_in(fade_in, fade_reals) -> None:
    """fade_in: (1 - alpha) up(old) + alpha new; fade_reals: (1 - alpha) up(down(x)) + alpha x,
    nearest-neighbour up and 2x2 average down."""
    gen = torch.Generator().manual_seed(13)
    for b, c, s in ((2, 3, 8), (3, 1, 16)):
        old = torch.randn(b, c, s // 2, s // 2, generator=gen, dtype=torch.float64)
        new = torch.randn(b, c, s, s, generator=gen, dtype=torch.float64)
        x = torch.randn(b, c, s, s, generator=gen, dtype=torch.float64)
        for alpha in (0.3, 0.0, 1.0):
            what = f"fade_in(old {tuple(old.shape)}, new {tuple(new.shape)}, alpha={alpha})"
            try:
                got = fade_in(old.clone(), new.clone(), alpha)
            except NotImplementedError:
                raise
            except Exception as exc:
                raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc
            up = F.interpolate(old, scale_factor=2, mode="bilinear", align_corners=False)
            _require_close(
                got,
                (1 - alpha) * _up(old) + alpha * new,
                what,
                {
                    "alpha is reversed: alpha = 0 is the OLD path only (the new block "
                    "fades IN as alpha rises to 1)": alpha * _up(old) + (1 - alpha) * new,
                    "a bilinear upsample; the official upscale2d repeats each pixel "
                    "(nearest neighbour)": (1 - alpha) * up + alpha * new,
                },
            )
            what = f"fade_reals(x {tuple(x.shape)}, alpha={alpha})"
            try:
                got = fade_reals(x.clone(), alpha)
            except NotImplementedError:
                raise
            except Exception as exc:
                raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc
            low = _up(_down(x))
            _require_close(
                got,
                (1 - alpha) * low + alpha * x,
                what,
                {
                    "the reals are returned unchanged: D would see sharper reals than "
                    "the fading G can draw": x if alpha < 1 else None,
                    "alpha is reversed: at alpha = 0 D sees the reals as the previous "
                    "level drew them (down then up); at 1, the full detail": (
                        alpha * low + (1 - alpha) * x
                    ),
                    "the low-resolution half is not replicated back to S x S the way G's "
                    "upsample does (2x2 average down, nearest up)": (
                        (1 - alpha) * F.interpolate(_down(x), scale_factor=2, mode="bilinear")
                        + alpha * x
                    ),
                },
            )


# --------------------------------------------------------------------------------------
# Exercise 5: WGAN-GP with the drift term
# --------------------------------------------------------------------------------------


class _Critic(nn.Module):
    """A small critic for the check: conv, LReLU, conv, mean over pixels, dense -> (B,)."""

    def __init__(self, channels=3, width=6):
        super().__init__()
        self.conv0 = nn.Conv2d(channels, width, 3, padding=1)
        self.conv1 = nn.Conv2d(width, width, 3, padding=1)
        self.dense = nn.Linear(width, 1)

    def forward(self, x):
        h = F.leaky_relu(self.conv1(F.leaky_relu(self.conv0(x), 0.2)), 0.2)
        return self.dense(h.mean(dim=(2, 3))).squeeze(1)


def _critic_golden(D, reals, fakes, eps, interpolate=None, graph=True, drift=True, gp="norm"):
    fakes = fakes.detach()
    real_scores, fake_scores = D(reals), D(fakes)
    x_hat = reals + eps * (fakes - reals) if interpolate is None else interpolate
    x_hat = x_hat.detach().requires_grad_()
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=graph)
    norms = grad.flatten(1).norm(dim=1)
    penalty = (norms - 1).pow(2).mean() if gp == "norm" else grad.pow(2).flatten(1).sum(1).mean()
    loss = fake_scores.mean() - real_scores.mean() + 10.0 * penalty
    return loss + 0.001 * real_scores.pow(2).mean() if drift else loss


def _grads(D, loss) -> torch.Tensor:
    D.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                      for p in D.parameters()])  # fmt: skip


def check_critic_loss(critic_loss) -> None:
    """mean D(fake) - mean D(real) + 10 mean (||grad D(x_hat)|| - 1)^2 + 0.001 mean D(real)^2,
    x_hat = real + eps (fake - real); the penalty backpropagates into D (create_graph)."""
    for b, s, seed in ((4, 8, 17), (3, 16, 19)):
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        D = _Critic().double()
        reals = torch.randn(b, 3, s, s, generator=gen, dtype=torch.float64)
        fakes = torch.randn(b, 3, s, s, generator=gen, dtype=torch.float64) * 0.5 + 0.3
        eps = torch.tensor([0.1, 0.8, 0.35, 0.6][:b], dtype=torch.float64)[:, None, None, None]
        what = f"critic_loss on reals and fakes ({b}, 3, {s}, {s})"
        try:
            got = critic_loss(D, reals.clone(), fakes.clone(), eps.clone())
        except NotImplementedError:
            raise
        except Exception as exc:
            raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc
        got = require_tensor(got, what)
        if got.dim() != 0:
            raise CheckFailed(f"{what}: expected a scalar loss, got shape {_shape(got)}")
        want = _critic_golden(D, reals, fakes, eps)
        wrong_mix = eps * reals + (1 - eps) * fakes
        _require_close(
            got,
            want,
            what,
            {
                "the penalty is taken at eps * real + (1 - eps) * fake; x_hat = real + eps "
                "(fake - real), eps weighting the FAKE": _critic_golden(
                    D, reals, fakes, eps, interpolate=wrong_mix
                ),
                "the drift term 0.001 * mean D(real)^2 is missing": _critic_golden(
                    D, reals, fakes, eps, drift=False
                ),
                "the penalty is on the squared gradient norm; WGAN-GP's is "
                "(||grad|| - 1)^2, pulling the norm to 1": _critic_golden(
                    D, reals, fakes, eps, gp="square"
                ),
                "the drift term is on the fakes' scores; it keeps D(real) near 0": (
                    _critic_golden(D, reals, fakes, eps, drift=False)
                    + 0.001 * D(fakes).pow(2).mean()
                ),
                "the Wasserstein term's sign is flipped: D should score reals HIGH "
                "(loss = D(fake) - D(real))": _critic_golden(D, reals, fakes, eps, drift=False)
                - 2 * (D(fakes).mean() - D(reals).mean())
                + 0.001 * D(reals).pow(2).mean(),
            },
            atol=1e-9,
            rtol=1e-9,  # float64 throughout: the drift term is small beside the rest
        )
        if not got.requires_grad:
            raise CheckFailed(f"{what}: the loss does not depend on D's parameters (detached?)")
        got_grads = _grads(D, got)
        want_grads = _grads(D, _critic_golden(D, reals, fakes, eps))
        if not _close(got_grads, want_grads, 1e-7):
            no_graph = _grads(D, _critic_golden(D, reals, fakes, eps, graph=False))
            hint = (
                ": the gradient penalty does not reach D's parameters: take the input "
                "gradient with create_graph=True so that the penalty can be backpropagated"
                if _close(got_grads, no_graph, 1e-7)
                else ""
            )
            raise CheckFailed(
                f"{what}: the loss has the right value but the wrong gradients for D's "
                f"parameters{hint}"
            )


# --------------------------------------------------------------------------------------
# Exercise 6: a number from the official schedule
# --------------------------------------------------------------------------------------

CODE_PHASE_IMAGES = 600_000  # lod_training_kimg = lod_transition_kimg = 600


def _images_before_fade(final_level: int, phase: int = CODE_PHASE_IMAGES) -> int:
    """Real images shown before the fade-in of ``final_level`` starts: stabilise 4x4, then a
    fade-in and a stabilise phase for each level 1 .. final_level - 1."""
    return phase + 2 * phase * (final_level - 1)


def check_images_before(images_before) -> None:
    """images_before(level, phase_images): real images shown before ``level`` fades in."""
    for level, phase in ((8, CODE_PHASE_IMAGES), (3, 800_000), (1, 1000), (5, 250)):
        what = f"images_before({level}, {phase})"
        try:
            got = images_before(level, phase)
        except NotImplementedError:
            raise
        except Exception as exc:
            raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc
        if isinstance(got, torch.Tensor) and got.numel() == 1:
            got = got.item()
        if isinstance(got, bool) or not isinstance(got, int | float):
            raise CheckFailed(f"{what} should return a number, got {type(got).__name__}")
        want = _images_before_fade(level, phase)
        if got == want:
            continue
        hints = {
            _images_before_fade(level + 1, phase): "it counts one level too many (level k "
            "works at 4 * 2**k px; levels 1 .. k-1 each fade in and stabilise before k fades in)",
            _images_before_fade(level - 1, phase): "it stops one level early (level k-1 also "
            "fades in and stabilises before level k fades in)",
            want + phase: "it counts one phase too many: level k's own fade-in, or a fade-in "
            "at 4x4 (which has none: nothing is below it)",
            want // 1000: "it is in thousands (kimg); return the number of images",
        }
        raise CheckFailed(
            f"{what} = {got}, expected {want}" + (f": {hints[got]}" if got in hints else "")
        )


# --------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------

for _id, _title, _names, _check in (
    ("1", "the equalised learning rate (conv)", ("EqualizedConv2d",), check_equalized_conv),
    ("2", "pixelwise feature normalisation", ("pixel_norm",), check_pixel_norm),
    ("3", "minibatch standard deviation", ("minibatch_stddev",), check_minibatch_stddev),
    ("4", "the fade-in blend, in G and on the reals", ("fade_in", "fade_reals"), check_fade_in),
    ("5", "WGAN-GP with the drift term", ("critic_loss",), check_critic_loss),
    ("6", "a number: images before a level fades in", ("images_before",), check_images_before),
):
    register(Exercise(chapter=CHAPTER, id=_id, title=_title, points=2, names=_names, check=_check))
