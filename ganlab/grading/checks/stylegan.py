"""Checks for Chapter 6's assignment (StyleGAN, Karras et al. 2019).

1. ``adain(x, y_s, y_b, eps=1e-8)``: instance normalisation over each sample's and channel's
   pixels, then the style: ``(1 + y_s) * IN(x) + y_b`` (the official ``style_mod``).
2. ``NoiseInjection(channels)``: one N(0, 1) noise image per sample, (B, 1, H, W), added to
   every channel with a learned per-channel scale that starts at 0.
3. ``truncate(ws, w_avg, psi, cutoff)``: the truncation trick in W, toward the average w,
   on the layers below the cutoff.
4. ``mix_styles(ws1, ws2, crossover)``: style mixing at a crossover layer.
5. ``d_loss_r1(D, reals, fakes, gamma)``: the logistic D loss with R1 on the reals.

Each check makes its own inputs at more than one size, computes its own golden, and names the
recognisable mistakes: instance norm over the wrong axes, ``y_s`` for ``(1 + y_s)``, noise
without its learned scale, shared across pixels or drawn per channel, truncation toward 0
instead of w_avg, the crossover off by one, R1 on the fakes or without ``create_graph``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.grading.checks.common import close, require_tensor
from ganlab.grading.checks.common import shape as _shape
from ganlab.grading.registry import CheckFailed, Exercise, register

CHAPTER = "stylegan"


def _call(fn, what: str, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except CheckFailed:
        raise
    except Exception as exc:  # the student's code
        raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc


def _require_close(got, want, what: str, hints: dict | None = None, atol=1e-6, rtol=1e-5):
    got = require_tensor(got, what)
    if got.shape != want.shape:
        raise CheckFailed(f"{what}: expected shape {_shape(want)}, got {_shape(got)}")
    if not torch.isfinite(got).all():
        raise CheckFailed(f"{what}: expected finite values, got NaN or inf")
    if close(got, want, atol, rtol):
        return
    err = (got.detach().double() - want.detach().double()).abs().max().item()
    hint = ""
    for text, value in (hints or {}).items():
        if value is not None and close(got, value, atol, rtol):
            hint = f": it looks like {text}"
            break
    raise CheckFailed(
        f"{what}: values differ from the expected ones (largest difference {err:.3g})" + hint
    )


# --------------------------------------------------------------------------------------
# Exercise 1: AdaIN
# --------------------------------------------------------------------------------------


def _adain_golden(x, ys, yb, eps=1e-8, axes=(2, 3), one_plus=True, unbiased=False):
    mu = x.mean(axes, keepdim=True)
    var = x.var(axes, keepdim=True, unbiased=unbiased)
    normed = (x - mu) / torch.sqrt(var + eps)
    scale = (1 + ys) if one_plus else ys
    return scale[:, :, None, None] * normed + yb[:, :, None, None]


def check_adain(adain) -> None:
    """(1 + y_s) (x - mu) / sqrt(var + eps) + y_b, mu and the biased var over H, W."""
    gen = torch.Generator().manual_seed(6)
    for b, c, h, w in ((3, 4, 5, 6), (2, 5, 4, 4)):
        # every sample and channel gets its own offset and spread: the axes matter
        x = torch.randn(b, c, h, w, generator=gen, dtype=torch.float64)
        x = x * torch.rand(b, c, 1, 1, generator=gen, dtype=torch.float64).add(0.5) * 3
        x = x + torch.randn(b, c, 1, 1, generator=gen, dtype=torch.float64) * 2
        ys = torch.randn(b, c, generator=gen, dtype=torch.float64) * 0.5
        yb = torch.randn(b, c, generator=gen, dtype=torch.float64)
        what = f"adain(x {(b, c, h, w)}, y_s {(b, c)}, y_b {(b, c)})"
        got = _call(adain, what, x.clone(), ys.clone(), yb.clone())
        hints = {
            "the scale is y_s; StyleGAN's code scales by (1 + y_s), so that a zero style "
            "(A's bias starts at 0) leaves the normalised x unchanged": _adain_golden(
                x, ys, yb, one_plus=False
            ),
            "the statistics are over (C, H, W), a layer norm; instance norm takes them "
            "per sample AND per channel, over H and W only": _adain_golden(
                x, ys, yb, axes=(1, 2, 3)
            ),
            "the statistics are over (B, H, W), a batch norm; instance norm takes them per "
            "sample, over H and W only": _adain_golden(x, ys, yb, axes=(0, 2, 3)),
            "the variance is the unbiased one (divides by HW - 1); instance norm uses the "
            "biased one (the mean of the squared deviations)": _adain_golden(
                x, ys, yb, unbiased=True
            ),
            "y_s and y_b are swapped: y_s scales, y_b shifts": _adain_golden(x, yb, ys),
        }
        _require_close(got, _adain_golden(x, ys, yb), what, hints)


# --------------------------------------------------------------------------------------
# Exercise 2: noise injection
# --------------------------------------------------------------------------------------


def _build_noise(cls, channels: int) -> nn.Module:
    layer = _call(cls, f"NoiseInjection({channels})", channels)
    if not isinstance(layer, nn.Module):
        raise CheckFailed("NoiseInjection should be an nn.Module subclass")
    weight = getattr(layer, "weight", None)
    if not isinstance(weight, nn.Parameter):
        raise CheckFailed(
            "NoiseInjection should keep its learned scale as an nn.Parameter `weight`"
        )
    if weight.shape != (channels,):
        extra = (
            ": one scale for every channel; the paper learns one PER CHANNEL"
            if weight.numel() == 1
            else ""
        )
        raise CheckFailed(
            f"NoiseInjection({channels}).weight should have shape ({channels},), got "
            f"{_shape(weight)}{extra}"
        )
    if weight.detach().abs().max() != 0:
        raise CheckFailed(
            "NoiseInjection's scale should start at 0 (the official init): a new layer adds "
            "no noise until training asks for it"
        )
    return layer


def check_noise_injection(cls) -> None:
    """weight (C,) zeros; x + weight (1, C, 1, 1) * noise, noise (B, 1, H, W) ~ N(0, 1) drawn
    when not given; the gradient reaches the weight."""
    gen = torch.Generator().manual_seed(7)
    for b, c, h, w in ((2, 3, 5, 5), (8, 4, 16, 16)):
        layer = _build_noise(cls, c)
        scale = torch.rand(c, generator=gen) + 0.5
        with torch.no_grad():
            layer.weight.copy_(scale)
        x = torch.randn(b, c, h, w, generator=gen)
        noise = torch.randn(b, 1, h, w, generator=gen)
        what = f"NoiseInjection({c}) on x {(b, c, h, w)} with noise {(b, 1, h, w)}"
        got = _call(layer, what, x.clone(), noise.clone())
        hints = {
            "the learned scale is missing: x + noise; the noise is multiplied by `weight`, "
            "one number per channel": x + noise,
            "the scale multiplies x instead of the noise": x * scale.view(1, c, 1, 1) + noise,
        }
        _require_close(got, x + scale.view(1, c, 1, 1) * noise, what, hints, atol=1e-5)
        layer.zero_grad(set_to_none=True)
        _call(layer, what, x, noise).sum().backward()
        if layer.weight.grad is None or not close(
            layer.weight.grad, noise.sum(dim=(0, 2, 3)).expand(c), atol=1e-4, rtol=1e-4
        ):
            raise CheckFailed(f"{what}: the gradient does not reach `weight` as x + weight * noise")

    # drawn noise: one image per sample, per pixel, N(0, 1), the same for every channel
    b, c, h, w = 8, 4, 16, 16
    layer = _build_noise(cls, c)
    with torch.no_grad():
        layer.weight.copy_(torch.tensor([0.5, 1.0, 2.0, -1.5]))
    x = torch.randn(b, c, h, w, generator=gen)
    torch.manual_seed(11)
    what = f"NoiseInjection({c}) on x {(b, c, h, w)} without noise (it draws its own)"
    with torch.no_grad():
        got = require_tensor(_call(layer, what, x.clone()), what)
    if got.shape != x.shape:
        raise CheckFailed(f"{what}: expected shape {_shape(x)}, got {_shape(got)}")
    drawn = (got - x) / layer.weight.detach().view(1, c, 1, 1)  # the noise it added, per channel
    if drawn.abs().max() < 1e-6:
        raise CheckFailed(f"{what}: it added nothing; draw noise when none is given")
    if not torch.allclose(drawn, drawn[:, :1].expand_as(drawn), atol=1e-5):
        raise CheckFailed(
            f"{what}: each channel got its own noise; the paper draws ONE noise image "
            "(B, 1, H, W) per sample and adds it to every channel, scaled per channel"
        )
    image = drawn[:, 0]  # (B, H, W)
    if image.std(dim=(1, 2)).max() < 1e-4:
        raise CheckFailed(
            f"{what}: the noise is the same at every pixel (one number per sample); it must be "
            "a fresh N(0, 1) value at every pixel, shape (B, 1, H, W)"
        )
    if (image - image[:1]).abs().max() < 1e-6:
        raise CheckFailed(f"{what}: every sample got the same noise image; draw (B, 1, H, W)")
    mean, std = image.mean().item(), image.std().item()
    if abs(mean) > 0.15 or not 0.85 < std < 1.15:
        raise CheckFailed(
            f"{what}: the noise has mean {mean:.3f} and std {std:.3f} over {image.numel()} "
            "values; it should be N(0, 1) (torch.randn, not torch.rand)"
        )


# --------------------------------------------------------------------------------------
# Exercise 3: truncation in W
# --------------------------------------------------------------------------------------


def _truncate_golden(ws, w_avg, psi, layers):
    out = ws.clone()
    out[:, layers] = w_avg + psi * (ws[:, layers] - w_avg)
    return out


def check_truncate(truncate) -> None:
    """ws (B, L, D), w_avg (D,): w_avg + psi (w - w_avg) on the layers < cutoff."""
    gen = torch.Generator().manual_seed(8)
    for (b, n, d), psi, cutoff in (((3, 8, 5), 0.7, 4), ((2, 6, 3), 0.5, 6), ((2, 10, 4), -0.4, 8)):
        ws = torch.randn(b, n, d, generator=gen, dtype=torch.float64)
        w_avg = torch.randn(d, generator=gen, dtype=torch.float64) + 1.0
        before = ws.clone()
        what = f"truncate(ws {(b, n, d)}, w_avg {(d,)}, psi={psi}, cutoff={cutoff})"
        got = _call(truncate, what, ws, w_avg.clone(), psi, cutoff)
        if not torch.equal(ws, before):
            raise CheckFailed(f"{what} changed ws in place; return a new tensor")
        low, high = slice(0, cutoff), slice(cutoff, n)
        hints = {
            "truncation toward 0 (psi * w); the trick pulls w toward the AVERAGE w, "
            "w_avg + psi (w - w_avg)": _truncate_golden(ws, torch.zeros_like(w_avg), psi, low),
            "every layer is truncated; only the layers below the cutoff are": (
                _truncate_golden(ws, w_avg, psi, slice(0, n)) if cutoff < n else None
            ),
            "the layers from the cutoff on were truncated; the cutoff keeps the layers "
            "< cutoff (the coarse ones)": _truncate_golden(ws, w_avg, psi, high),
            "psi and 1 - psi are swapped: psi = 1 must leave w unchanged": _truncate_golden(
                ws, w_avg, 1 - psi, low
            ),
            "layer `cutoff` itself was truncated too (layers l < cutoff only)": (
                _truncate_golden(ws, w_avg, psi, slice(0, cutoff + 1)) if cutoff < n else None
            ),
        }
        _require_close(got, _truncate_golden(ws, w_avg, psi, low), what, hints)
    ws = torch.randn(2, 4, 3, generator=gen)
    got = _call(truncate, "truncate(ws, w_avg, psi=1.0, cutoff=4)", ws, torch.ones(3), 1.0, 4)
    _require_close(got, ws, "truncate(ws, w_avg, psi=1.0, cutoff=4) (psi 1: no truncation)")


# --------------------------------------------------------------------------------------
# Exercise 4: style mixing
# --------------------------------------------------------------------------------------


def _mix_golden(ws1, ws2, k):
    return torch.cat([ws1[:, :k], ws2[:, k:]], dim=1)


def check_mix_styles(mix_styles) -> None:
    """Layers < crossover from ws1, the others from ws2; for every crossover 0..L."""
    gen = torch.Generator().manual_seed(9)
    for b, n, d in ((2, 8, 3), (3, 6, 4)):
        ws1 = torch.randn(b, n, d, generator=gen)
        ws2 = torch.randn(b, n, d, generator=gen)
        for k in range(n + 1):
            what = f"mix_styles(ws1 {(b, n, d)}, ws2, crossover={k})"
            a, c = ws1.clone(), ws2.clone()
            got = _call(mix_styles, what, a, c, k)
            if not (torch.equal(a, ws1) and torch.equal(c, ws2)):
                raise CheckFailed(f"{what} changed its inputs in place; return a new tensor")
            hints = {
                "the layers come from the wrong sources: layers < crossover take ws1 (the "
                "first latent), the rest ws2": _mix_golden(ws2, ws1, k),
                "the crossover is off by one: layer `crossover` itself must come from ws2 "
                "(layers 0 .. crossover - 1 from ws1)": (
                    _mix_golden(ws1, ws2, k + 1) if k < n else None
                ),
                "the crossover is off by one: layers 0 .. crossover - 1 come from ws1": (
                    _mix_golden(ws1, ws2, k - 1) if k > 0 else None
                ),
            }
            _require_close(got, _mix_golden(ws1, ws2, k), what, hints, atol=0, rtol=0)


# --------------------------------------------------------------------------------------
# Exercise 5: the logistic D loss with R1
# --------------------------------------------------------------------------------------


class _Critic(nn.Module):
    """A small smooth D: (B, 3, S, S) -> (B,)."""

    def __init__(self, size: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.out = nn.Linear(4 * size * size, 1)

    def forward(self, x):
        return self.out(torch.tanh(self.conv(x)).flatten(1)).squeeze(1)


def _r1_golden(D, reals, fakes, gamma, on="reals", graph=True, reduce="mean", square=True):
    x = (reals if on == "reals" else fakes).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=graph)
    norms = grad.pow(2).flatten(1).sum(1)
    if not square:
        norms = norms.sqrt()
    r1 = norms.mean() if reduce == "mean" else norms.sum()
    loss = F.softplus(D(fakes.detach())).mean() + F.softplus(-D(reals.detach())).mean()
    return loss + 0.5 * gamma * r1


def _grads(D, loss) -> torch.Tensor:
    D.zero_grad(set_to_none=True)
    loss.backward()
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                      for p in D.parameters()])  # fmt: skip


def check_d_loss_r1(d_loss_r1) -> None:
    """mean softplus(D(fake)) + mean softplus(-D(real)) + gamma/2 mean_b ||grad_x D(real)||^2,
    the penalty built with create_graph=True so that it trains D."""
    for b, s, gamma, seed in ((4, 6, 10.0, 21), (3, 8, 1.5, 22)):
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        D = _Critic(s).double()
        reals = torch.randn(b, 3, s, s, generator=gen, dtype=torch.float64)
        fakes = torch.randn(b, 3, s, s, generator=gen, dtype=torch.float64) * 0.5 + 0.3
        what = f"d_loss_r1 on reals and fakes ({b}, 3, {s}, {s}), gamma={gamma}"
        got = require_tensor(_call(d_loss_r1, what, D, reals.clone(), fakes.clone(), gamma), what)
        if got.dim() != 0:
            raise CheckFailed(f"{what}: expected a scalar loss, got shape {_shape(got)}")
        want = _r1_golden(D, reals, fakes, gamma)
        logistic = F.softplus(D(fakes)).mean() + F.softplus(-D(reals)).mean()
        hints = {
            "R1 is taken on the FAKES; it penalises D's gradient on the REAL images": (
                _r1_golden(D, reals, fakes, gamma, on="fakes")
            ),
            "the penalty is gamma * ||grad||^2; R1 is gamma / 2 times it": (
                logistic + 2 * (want - logistic)
            ),
            "the squared norms are summed over the batch; R1 takes their mean": _r1_golden(
                D, reals, fakes, gamma, reduce="sum"
            ),
            "the norm is not squared: R1 is gamma / 2 * ||grad||^2": _r1_golden(
                D, reals, fakes, gamma, square=False
            ),
            "the penalty is missing": logistic,
            "the logistic terms' signs are flipped: D's loss is softplus(D(fake)) + "
            "softplus(-D(real)) (D scores reals high)": (
                want - logistic + F.softplus(-D(fakes)).mean() + F.softplus(D(reals)).mean()
            ),
        }
        _require_close(got, want, what, hints, atol=1e-9, rtol=1e-9)
        if not got.requires_grad:
            raise CheckFailed(f"{what}: the loss does not depend on D's parameters (detached?)")
        got_grads = _grads(D, got)
        want_grads = _grads(D, _r1_golden(D, reals, fakes, gamma))
        if not close(got_grads, want_grads, 1e-7, 1e-6):
            no_graph = _grads(D, _r1_golden(D, reals, fakes, gamma, graph=False))
            hint = (
                ": the penalty does not reach D's parameters: take the input gradient with "
                "torch.autograd.grad(..., create_graph=True) so that R1 can be backpropagated"
                if close(got_grads, no_graph, 1e-7, 1e-6)
                else ""
            )
            raise CheckFailed(
                f"{what}: the loss has the right value but the wrong gradients for D's "
                f"parameters{hint}"
            )


# --------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------

for _id, _title, _names, _check, _hints in (
    ("1", "AdaIN", ("adain",), check_adain,
     ("IN: x.mean(dim=(2, 3), keepdim=True) and the biased variance over the same axes",
      "y_s[:, :, None, None] broadcasts a (B, C) style over (B, C, H, W)")),
    ("2", "noise injection", ("NoiseInjection",), check_noise_injection,
     ("noise = torch.randn(B, 1, H, W, device=x.device, dtype=x.dtype)",
      "self.weight.view(1, -1, 1, 1) * noise")),
    ("3", "the truncation trick in W", ("truncate",), check_truncate,
     ("torch.lerp(w_avg, ws[:, :cutoff], psi) is w_avg + psi (w - w_avg)",)),
    ("4", "style mixing at a crossover layer", ("mix_styles",), check_mix_styles,
     ("torch.cat([ws1[:, :k], ws2[:, k:]], dim=1)",)),
    ("5", "the logistic D loss with R1", ("d_loss_r1",), check_d_loss_r1,
     ("x = reals.detach().requires_grad_(True); the scores of x serve the loss and R1",
      "torch.autograd.grad(D(x).sum(), x, create_graph=True)")),
):  # fmt: skip
    register(
        Exercise(
            chapter=CHAPTER, id=_id, title=_title, points=2, names=_names, check=_check,
            hints=_hints,
        )
    )  # fmt: skip
