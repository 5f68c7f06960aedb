"""Checks for Chapter 8's assignment (StarGAN v2, Choi et al. 2020).

1. ``adain_resblk(blk, x, s)``: the forward pass of the decoder's AdaIN ResBlk, written from
   the parts of a course :class:`~ganlab.models.stargan_v2.AdainResBlk` ``blk`` (``norm1.affine``
   and ``norm2.affine``: s -> [gamma, beta]; ``conv1``, ``conv2``; ``conv1x1`` when the widths
   change; ``upsample``): (shortcut + residual) / sqrt(2), AdaIN = (1 + gamma) IN(x) + beta.
2. ``mapping_style(F, z, y)``: the mapping network's style for each row's OWN domain, from
   ``F.shared`` and the per-domain heads ``F.unshared`` (without calling ``F(z, y)``).
3. ``style_reconstruction_loss(E, x_fake, y_trg, s_trg)``: mean |s_trg - E_{y_trg}(x_fake)|.
4. ``diversity_term(G, x_real, s1, s2, step, initial, ds_iter)``: what the diversity-sensitive
   loss ADDS to G's objective at ``step``: -lambda_ds(step) mean |G(x, s1) - G(x, s2)|, the
   second image detached (official), lambda_ds decayed linearly from ``initial`` to 0 at
   ``ds_iter``.
5. ``cycle_loss(G, E, x_real, y_org, x_fake, y_trg)``: mean |x_real - G(x_fake, E_{y_org}(x_real))|,
   back through the SOURCE's style.

Each check builds small course nets with fresh random weights (the He init's near-zero AdaIN
would hide a missing 1 +), computes its golden with :mod:`ganlab.models.stargan_v2` or its own
formula, compares values AND gradients, and names the recognisable mistakes: the wrong
domain's head, a diversity term with the wrong sign or never decayed, the cycle through the
target style, a detach missing where the official code has one (or added where it has none).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.grading.checks.common import close
from ganlab.grading.checks.common import require_tensor as _require_tensor
from ganlab.grading.checks.common import shape as _shape
from ganlab.grading.registry import CheckFailed, Exercise, register
from ganlab.models import stargan_v2 as M

CHAPTER = "stargan-v2"
K = 3  # domains in every check


def _randomize(module: nn.Module, gen: torch.Generator, scale: float = 0.3) -> nn.Module:
    """Fresh random weights, in float64 (so that near answers cannot pass as right ones);
    the style projections (AdaIN's fc) at 3x the scale, so that the style matters."""
    module = module.double()
    with torch.no_grad():
        for name, p in module.named_parameters():
            boost = 3.0 if ".affine." in f".{name}" else 1.0
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale * boost)
    return module


def _randn(gen: torch.Generator, *shape, requires_grad: bool = False) -> torch.Tensor:
    x = torch.randn(*shape, generator=gen, dtype=torch.float64)
    return x.requires_grad_(requires_grad)


def _call(fn, what: str, *args):
    try:
        return fn(*args)
    except NotImplementedError:
        raise
    except Exception as exc:  # the student's code
        raise CheckFailed(f"{what} raised {type(exc).__name__}: {exc}") from exc


def _diagnose(got: torch.Tensor, hints: dict, atol: float) -> str:
    for hint, value in hints.items():
        if value is not None and close(got, value, atol=atol, rtol=1e-7):
            return f": it looks like {hint}"
    return ""


def _require_close(got, want, what: str, hints: dict | None = None, atol: float = 1e-9) -> None:
    got = _require_tensor(got, what)
    if got.shape != want.shape:
        raise CheckFailed(f"{what}: expected shape {_shape(want)}, got {_shape(got)}")
    if not torch.isfinite(got).all():
        raise CheckFailed(f"{what}: expected finite values, got NaN or inf")
    if not close(got, want, atol=atol, rtol=1e-7):
        err = (got.detach().double() - want.detach().double()).abs().max().item()
        hint = _diagnose(got, hints or {}, atol)
        raise CheckFailed(f"{what}: values differ from the expected ones (largest difference "
                          f"{err:.3g})" + hint)  # fmt: skip


def _grads(loss: torch.Tensor, tensors: list[torch.Tensor]) -> list[torch.Tensor]:
    """d loss / d each tensor (zeros where it does not reach)."""
    got = torch.autograd.grad(loss, tensors, retain_graph=True, allow_unused=True)
    return [torch.zeros_like(t) if g is None else g for g, t in zip(got, tensors)]


def _scalar(value, what: str) -> torch.Tensor:
    value = _require_tensor(value, what)
    if value.dim() != 0:
        raise CheckFailed(f"{what}: expected a scalar loss, got shape {_shape(value)}")
    return value


# --------------------------------------------------------------------------------------
# Exercise 1: the AdaIN ResBlk
# --------------------------------------------------------------------------------------


def _adain(x, s, fc, one_plus=True, norm="instance"):
    gamma, beta = fc(s).chunk(2, dim=1)  # (B, C) each
    if norm == "instance":
        h = F.instance_norm(x, eps=1e-5)
    else:  # over the batch
        h = F.batch_norm(x, None, None, training=True, eps=1e-5)
    scale = (1 + gamma) if one_plus else gamma
    return scale[:, :, None, None] * h + beta[:, :, None, None]


def _block_variant(blk, x, s, **wrong):
    """The block with one recognisable mistake (keys of ``wrong``)."""
    up = lambda t: F.interpolate(t, scale_factor=2, mode="nearest") if blk.upsample else t  # noqa: E731
    one_plus, norm = not wrong.get("no_one_plus"), wrong.get("norm", "instance")
    act = lambda t: F.leaky_relu(t, 0.2)  # noqa: E731
    if wrong.get("act_first"):
        h = _adain(act(x), s, blk.norm1.affine, one_plus, norm)
    else:
        h = act(_adain(x, s, blk.norm1.affine, one_plus, norm))
    h = up(blk.conv1(h)) if wrong.get("up_after_conv") else blk.conv1(up(h))
    if wrong.get("act_first"):
        h = blk.conv2(_adain(act(h), s, blk.norm2.affine, one_plus, norm))
    else:
        h = blk.conv2(act(_adain(h, s, blk.norm2.affine, one_plus, norm)))
    sc = up(x)
    if blk.learned_sc:
        sc = blk.conv1x1(sc)
    if wrong.get("residual_only"):
        return h / math.sqrt(2) if wrong.get("scaled") else h
    return (sc + h) if wrong.get("no_sqrt2") else (sc + h) / math.sqrt(2)


def check_adain_resblk(adain_resblk) -> None:
    """Against the course block at two shapes (widths change + upsample; same widths, no
    upsample), with random weights; then the gradient reaches the style."""
    gen = torch.Generator().manual_seed(8)
    for dim_in, dim_out, up, hw in ((6, 4, True, 4), (5, 5, False, 6)):
        blk = _randomize(M.AdainResBlk(dim_in, dim_out, style_dim=7, upsample=up), gen)
        x = _randn(gen, 3, dim_in, hw, hw) * 2 + 0.5
        s = _randn(gen, 3, 7, requires_grad=True)
        what = f"adain_resblk(AdainResBlk({dim_in}, {dim_out}, upsample={up}), x {_shape(x)}, s)"
        got = _call(adain_resblk, what, blk, x, s)
        want = blk(x, s)
        hints = {
            "AdaIN scales by gamma, not (1 + gamma): StarGAN v2's AdaIN is "
            "(1 + gamma) * IN(x) + beta, so that a zero style leaves IN(x) as it is": (
                _block_variant(blk, x, s, no_one_plus=True)
            ),
            "the sum is not divided by sqrt(2): (shortcut + residual) / sqrt(2) keeps the "
            "variance of the sum at one": _block_variant(blk, x, s, no_sqrt2=True),
            "the residual alone; add the shortcut (nearest x2, then the 1x1 conv when the "
            "widths change)": _block_variant(blk, x, s, residual_only=True),
            "the residual alone (divided by sqrt(2)); add the shortcut (nearest x2, then the "
            "1x1 conv when the widths change)": _block_variant(
                blk, x, s, residual_only=True, scaled=True
            ),
            "the upsampling comes after conv1; the official block upsamples between the first "
            "AdaIN + LReLU and conv1": _block_variant(blk, x, s, up_after_conv=True),
            "LReLU comes before AdaIN; the residual is AdaIN -> LReLU -> conv, twice": (
                _block_variant(blk, x, s, act_first=True)
            ),
            "the normalisation is over the batch; AdaIN normalises each sample's channel over "
            "its own pixels (instance norm)": _block_variant(blk, x, s, norm="batch"),
        }
        _require_close(got, want, what, hints, atol=1e-5)  # IN runs in float32
        g_got = _grads(got.sum(), [s])[0] if got.requires_grad else torch.zeros_like(s)
        g_want = _grads(want.sum(), [s])[0]
        if g_got.abs().max() == 0:
            raise CheckFailed(f"{what}: no gradient reaches the style s (detached?): F and E "
                              "learn through the styles G reads")  # fmt: skip
        if not close(g_got, g_want, atol=1e-5, rtol=1e-5):
            raise CheckFailed(
                f"{what}: the right values, but the gradient with respect to s differs: "
                "compute gamma and beta from s with the block's fc"
            )


# --------------------------------------------------------------------------------------
# Exercise 2: the mapping network's domain heads
# --------------------------------------------------------------------------------------


class _NoShortcut(M.MappingNetwork):
    def forward(self, z, y):  # the student writes this; calling it would skip the exercise
        raise CheckFailed(
            "mapping_style called F(z, y): write it from F.shared and the heads F.unshared"
        )


def check_mapping_style(mapping_style) -> None:
    """Every row's style comes from ITS domain's head; tried with mixed domains in a batch."""
    gen = torch.Generator().manual_seed(3)
    for b, latent, style in ((6, 5, 4), (4, 3, 6)):
        torch.manual_seed(0)
        net = _randomize(_NoShortcut(latent, style, K, hidden_dim=8), gen, 0.5)
        z = _randn(gen, b, latent)
        y = torch.tensor([2, 0, 1, 1, 0, 2][:b])
        what = f"mapping_style(F, z {_shape(z)}, y={y.tolist()})"
        got = _call(mapping_style, what, net, z, y)
        every = net.all_styles(z)  # (B, K, style)
        want = every[torch.arange(b), y]
        hints = {
            "every row took the head of y[0]; each row b needs the head of ITS domain y[b]": (
                every[:, int(y[0])]
            ),
            "every row took head 0": every[:, 0],
            "it used the head of the NEXT domain, (y + 1) % K": every[torch.arange(b), (y + 1) % K],
        }
        hints["it indexed the BATCH by y (row y[b] of head b); pick head y[b] of row b"] = every[
            y, torch.arange(b) % K
        ]
        _require_close(got, want, what, hints)


# --------------------------------------------------------------------------------------
# Exercise 3: the style reconstruction loss
# --------------------------------------------------------------------------------------


def _style_nets(gen, size: int = 16):
    torch.manual_seed(1)
    E = _randomize(M.StyleEncoder(size, 5, K, dim_in=4, max_conv_dim=8), gen, 0.2)
    return E


def check_style_reconstruction_loss(style_reconstruction_loss) -> None:
    """mean |s_trg - E_{y_trg}(x_fake)|; gradients reach x_fake (G learns) and s_trg (F or E
    learns through it, as officially: nothing is detached)."""
    gen = torch.Generator().manual_seed(4)
    E = _style_nets(gen)
    for b in (4, 3):
        x_fake = _randn(gen, b, 3, 16, 16, requires_grad=True)
        s_trg = _randn(gen, b, 5, requires_grad=True)
        y_trg = torch.tensor([1, 2, 0, 2][:b])
        what = f"style_reconstruction_loss(E, x_fake {_shape(x_fake)}, y_trg, s_trg)"
        got = _scalar(_call(style_reconstruction_loss, what, E, x_fake, y_trg, s_trg), what)
        pred = E(x_fake, y_trg)
        want = (s_trg - pred).abs().mean()
        every = E.all_styles(x_fake)
        hints = {
            "a squared error; the paper's style reconstruction is an L1 distance": (
                (s_trg - pred).pow(2).mean()
            ),
            "a sum; take the mean over the batch and the style's entries": (
                (s_trg - pred).abs().sum()
            ),
            "E read the fake with head 0; use the head of its target domain, y_trg": (
                (s_trg - every[:, 0]).abs().mean()
            ),
            "E read the fake with the wrong domain's head ((y + 1) % K); use y_trg": (
                (s_trg - every[torch.arange(b), (y_trg + 1) % K]).abs().mean()
            ),
        }
        _require_close(got, want, what, hints)
        g_got = _grads(got, [x_fake, s_trg])
        g_want = _grads(want, [x_fake, s_trg])
        if g_got[0].abs().max() == 0:
            raise CheckFailed(f"{what}: no gradient reaches x_fake: G learns from this loss, "
                              "so do not detach the fake")  # fmt: skip
        if g_got[1].abs().max() == 0:
            raise CheckFailed(f"{what}: no gradient reaches s_trg; the official code does not "
                              "detach the target style (F, or E, learns from it)")  # fmt: skip
        if not all(close(a, c, atol=1e-9, rtol=1e-6) for a, c in zip(g_got, g_want)):
            raise CheckFailed(f"{what}: the right value, but the wrong gradients")


# --------------------------------------------------------------------------------------
# Exercise 4: the diversity-sensitive loss and its decay
# --------------------------------------------------------------------------------------


def _tiny_generator(gen):
    torch.manual_seed(2)
    return _randomize(M.Generator(16, 5, dim_in=4, max_conv_dim=8, repeat_num=1), gen, 0.2)


def check_diversity_term(diversity_term) -> None:
    """-lambda_ds(step) mean |G(x, s1) - G(x, s2).detach()| at steps before, in and after the
    decay; gradients reach s1 (and G) but not s2."""
    gen = torch.Generator().manual_seed(6)
    G = _tiny_generator(gen)
    x = _randn(gen, 3, 3, 16, 16)
    for step, initial, ds_iter in ((0, 2.0, 100), (30, 2.0, 100), (75, 1.0, 300), (100, 2.0, 100),
                                   (150, 2.0, 100), (10, 1.0, 40)):  # fmt: skip
        s1 = _randn(gen, 3, 5, requires_grad=True)
        s2 = _randn(gen, 3, 5, requires_grad=True)
        what = f"diversity_term(G, x, s1, s2, step={step}, initial={initial}, ds_iter={ds_iter})"
        got = _scalar(_call(diversity_term, what, G, x, s1, s2, step, initial, ds_iter), what)
        a, b = G(x, s1), G(x, s2)
        dist = (a - b.detach()).abs().mean()
        lam = M.lambda_ds_at(step, initial, ds_iter)
        want = -lam * dist
        hints = {
            "the sign is flipped: G MAXIMISES the distance between its two outputs, so the term "
            "added to its loss is -lambda_ds * distance": lam * dist,
            "lambda_ds is not decayed: it falls linearly from `initial` at step 0 to 0 at "
            "ds_iter (and stays 0)": -initial * dist,
            "the decay does not stop at 0: after ds_iter lambda_ds stays 0, it does not turn "
            "negative": -initial * (1 - step / ds_iter) * dist,
            "a squared distance; the diversity term is an L1 distance": -lam
            * (a - b).pow(2).mean(),
        }
        if lam == 0 and close(got, want, atol=1e-12):
            continue
        _require_close(got, want, what, hints)
        if lam == 0:
            continue
        g_got = _grads(got, [s1, s2])
        g_want = _grads(want, [s1, s2])
        if g_got[1].abs().max() > 0:
            raise CheckFailed(f"{what}: a gradient reaches s2: the official code detaches the "
                              "second image (x_fake2.detach()), so only the first output is "
                              "pushed away from it")  # fmt: skip
        if not close(g_got[0], g_want[0], atol=1e-9, rtol=1e-6):
            raise CheckFailed(f"{what}: the right value, but the gradient reaching s1 differs")


# --------------------------------------------------------------------------------------
# Exercise 5: the cycle loss
# --------------------------------------------------------------------------------------


def check_cycle_loss(cycle_loss) -> None:
    """mean |x_real - G(x_fake, E_{y_org}(x_real))|; gradients reach G's first output
    (x_fake) and E (nothing is detached)."""
    gen = torch.Generator().manual_seed(9)
    G = _tiny_generator(gen)
    E = _style_nets(gen)
    for b in (3, 4):
        x_real = _randn(gen, b, 3, 16, 16)
        x_fake = _randn(gen, b, 3, 16, 16, requires_grad=True)
        y_org = torch.tensor([0, 1, 2, 1][:b])
        y_trg = torch.tensor([2, 0, 1, 0][:b])
        what = f"cycle_loss(G, E, x_real {_shape(x_real)}, y_org, x_fake, y_trg)"
        got = _scalar(_call(cycle_loss, what, G, E, x_real, y_org, x_fake, y_trg), what)
        want = (x_real - G(x_fake, E(x_real, y_org))).abs().mean()
        hints = {
            "the cycle went back through the TARGET style E_{y_trg}(x_fake); it must return "
            "with the SOURCE's style, E_{y_org}(x_real)": (
                (x_real - G(x_fake, E(x_fake, y_trg))).abs().mean()
            ),
            "E read the source with the target's head; use y_org, the source's own domain": (
                (x_real - G(x_fake, E(x_real, y_trg))).abs().mean()
            ),
            "E read the fake instead of the source": (
                (x_real - G(x_fake, E(x_fake, y_org))).abs().mean()
            ),
            "a squared error; the cycle loss is L1": (
                (x_real - G(x_fake, E(x_real, y_org))).pow(2).mean()
            ),
        }
        _require_close(got, want, what, hints)
        params = list(E.parameters())
        g_got = _grads(got, [x_fake, *params])
        g_want = _grads(want, [x_fake, *params])
        if g_got[0].abs().max() == 0:
            raise CheckFailed(f"{what}: no gradient reaches x_fake: G learns from the whole "
                              "cycle, so do not detach the first translation")  # fmt: skip
        if all(g.abs().max() == 0 for g in g_got[1:]):
            raise CheckFailed(f"{what}: no gradient reaches E: the official code does not "
                              "detach the source's style, E learns from the cycle too")  # fmt: skip
        if not all(close(a, c, atol=1e-9, rtol=1e-6) for a, c in zip(g_got, g_want)):
            raise CheckFailed(f"{what}: the right value, but the wrong gradients")


# --------------------------------------------------------------------------------------
# Registration
# --------------------------------------------------------------------------------------

HINTS = {
    "1": ("gamma, beta = blk.norm1.affine(s).chunk(2, dim=1); F.instance_norm(x, eps=1e-5)",
          "residual: AdaIN, LReLU(0.2), [nearest x2], conv1, AdaIN, LReLU, conv2; shortcut: "
          "[nearest x2], [conv1x1]; return (shortcut + residual) / math.sqrt(2)"),
    "2": ("h = F.shared(z); every head: torch.stack([head(h) for head in F.unshared], dim=1)",
          "pick row b's head y[b]: out[torch.arange(len(y)), y]"),
    "3": ("torch.mean(torch.abs(s_trg - E(x_fake, y_trg)))",),
    "4": ("lambda_ds = initial * max(0, 1 - step / ds_iter)",
          "-lambda_ds * torch.mean(torch.abs(G(x, s1) - G(x, s2).detach()))"),
    "5": ("s_org = E(x_real, y_org); x_rec = G(x_fake, s_org)",),
}  # fmt: skip

for _id, _title, _names, _check in (
    ("1", "the AdaIN ResBlk", ("adain_resblk",), check_adain_resblk),
    ("2", "the mapping network's domain heads", ("mapping_style",), check_mapping_style),
    ("3", "the style reconstruction loss", ("style_reconstruction_loss",),
     check_style_reconstruction_loss),
    ("4", "the diversity-sensitive loss and its decay", ("diversity_term",), check_diversity_term),
    ("5", "the cycle loss, through the source's style", ("cycle_loss",), check_cycle_loss),
):  # fmt: skip
    register(Exercise(chapter=CHAPTER, id=_id, title=_title, points=2, names=_names,
                      check=_check, hints=HINTS[_id]))  # fmt: skip
