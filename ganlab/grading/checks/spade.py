"""Checks for Chapter 7's assignment (SPADE / GauGAN, Park et al. 2019).

1. ``SPADE(norm_nc, label_nc, nhidden)``: a module with the official parts ``param_free_norm``
   (BatchNorm WITHOUT affine parameters), ``mlp_shared`` (conv3x3 + ReLU, an
   ``nn.Sequential``), ``mlp_gamma`` and ``mlp_beta`` (conv3x3); ``forward(x, segmap)`` =
   norm(x) * (1 + gamma) + beta with the map resized to x's size by NEAREST interpolation.
2. ``SPADEResnetBlock(fin, fout, label_nc, nhidden)``: the ResBlk built from 1's SPADE, with
   ``norm_0, conv_0, norm_1, conv_1`` and, when fin != fout, the learned shortcut
   ``norm_s, conv_s`` (1x1, no bias); no spectral norm in the exercise.
3. ``d_hinge_loss(real_logits, fake_logits)`` and ``g_hinge_loss(fake_logits)``: lists of
   patch logits, one per discriminator scale.
4. ``feature_matching_loss(fake_features, real_features, lambda_feat)``: lists (per scale)
   of D's feature lists, the last entry of each the logits (not matched).
5. ``kl_loss(mu, logvar, lambda_kld)``: the encoder's KL term, summed over batch and dims.

Every check computes its golden with :mod:`ganlab.models.spade`'s functions (or its own
formula) on inputs it makes up, at several input sizes, and names the recognisable mistakes.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.grading.checks.common import close, require_close
from ganlab.grading.checks.common import require_tensor as _require_tensor
from ganlab.grading.checks.common import shape as _shape
from ganlab.grading.registry import CheckFailed, Exercise, register
from ganlab.models import spade as M

CHAPTER = "spade"


def _diagnose(got: torch.Tensor, hints: dict[str, torch.Tensor], atol: float = 1e-5) -> str:
    for hint, value in hints.items():
        if close(got, value, atol=atol, rtol=1e-4):
            return f": it looks like {hint}"
    return ""


def _segmap(gen, b: int, label_nc: int, h: int, w: int) -> torch.Tensor:
    """A one-hot map (B, L, H, W) of random blocks: labels that change every 2-3 pixels, so
    a bilinear resize blends them."""
    labels = torch.randint(0, label_nc, (b, h, w), generator=gen)
    return M.one_hot_segmap(labels, label_nc).double()


def _randomize(module: nn.Module, gen: torch.Generator, scale: float = 0.3) -> None:
    """Every parameter drawn afresh (the official init makes gamma and beta near 0, which
    would hide a missing 1 + or a swapped head)."""
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * scale)


def _build(cls, what: str, *args):
    try:
        module = cls(*args)
    except TypeError as e:
        raise CheckFailed(f"{what}{args} could not be built: {e}") from None
    if not isinstance(module, nn.Module):
        raise CheckFailed(f"{what}(...) should build an nn.Module, got {type(module).__name__}")
    return module.double().train()


def _load(student: nn.Module, reference: nn.Module, what: str) -> None:
    """Copy the reference's parameters into the student's module (official names)."""
    want = {k: v.shape for k, v in reference.state_dict().items() if "running" not in k
            and "num_batches" not in k}  # fmt: skip
    got = {k: v.shape for k, v in student.state_dict().items() if "running" not in k
           and "num_batches" not in k}  # fmt: skip
    extra = sorted(set(got) - set(want))
    if any(k.startswith("param_free_norm.") or ".param_free_norm." in k for k in extra):
        raise CheckFailed(
            f"{what}'s param_free_norm has learned parameters ({', '.join(extra)}): SPADE's "
            "normalisation is parameter-free (nn.BatchNorm2d(norm_nc, affine=False)); the "
            "scale and shift come from the map, through gamma and beta"
        )
    if set(got) != set(want):
        missing = sorted(set(want) - set(got))
        raise CheckFailed(
            f"{what} should have exactly the parameters {sorted(want)}; missing {missing}, "
            f"unexpected {extra} (use the official names: param_free_norm, mlp_shared = "
            "nn.Sequential(conv3x3, ReLU), mlp_gamma, mlp_beta; in the ResBlk norm_0, conv_0, "
            "norm_1, conv_1 and, for fin != fout, norm_s, conv_s)"
        )
    for k in want:
        if got[k] != want[k]:
            raise CheckFailed(f"{what}: parameter {k} should have shape {tuple(want[k])}, "
                              f"got {tuple(got[k])}")  # fmt: skip
    state = {k: v for k, v in reference.state_dict().items() if k in want}
    student.load_state_dict(state, strict=False)


# --------------------------------------------------------------------------------------
# Exercise 1: SPADE
# --------------------------------------------------------------------------------------


def _spade_variant(ref: M.SPADE, x, segmap, *, one_plus=True, mode="nearest", norm="batch"):
    """The reference's SPADE with one thing changed (for the diagnoses)."""
    if norm == "batch":
        normalized = F.batch_norm(x, None, None, training=True, eps=1e-5)
    elif norm == "instance":
        normalized = F.instance_norm(x, eps=1e-5)
    else:
        normalized = x
    kw = {} if mode == "nearest" else {"align_corners": False}
    m = F.interpolate(segmap, size=x.shape[2:], mode=mode, **kw)
    actv = ref.mlp_shared(m)
    gamma, beta = ref.mlp_gamma(actv), ref.mlp_beta(actv)
    return normalized * ((1 + gamma) if one_plus else gamma) + beta


def check_spade(SPADE) -> None:
    """Parameter-free BN, nearest-resized map, conv + ReLU, gamma and beta, (1 + gamma)."""
    gen = torch.Generator().manual_seed(71)
    # (norm_nc, label_nc, nhidden, x size, map size): the map bigger, smaller, non-square
    cases = ((3, 4, 5, (4, 4), (8, 8)), (2, 3, 6, (6, 5), (12, 10)), (4, 5, 3, (8, 8), (5, 7)))
    for norm_nc, label_nc, nhidden, (h, w), (mh, mw) in cases:
        ref = M.SPADE(norm_nc, label_nc, nhidden=nhidden).double().train()
        _randomize(ref, gen)
        student = _build(SPADE, "SPADE", norm_nc, label_nc, nhidden)
        _load(student, ref, "SPADE")
        x = torch.randn(3, norm_nc, h, w, generator=gen, dtype=torch.float64) * 2 + 1.5
        x.requires_grad_()
        segmap = _segmap(gen, 3, label_nc, mh, mw)
        where = f"for x {tuple(x.shape)} and a map {tuple(segmap.shape)}"
        got = _require_tensor(student(x, segmap), "SPADE(...)(x, segmap)")
        want = ref(x, segmap)
        if got.shape != want.shape:
            raise CheckFailed(f"{where}, expected shape {tuple(want.shape)} (x's), got "
                              f"{_shape(got)}: resize the map to x's size")  # fmt: skip
        if not close(got, want, atol=1e-6, rtol=1e-5):
            hint = _diagnose(
                got,
                {
                    "gamma without the 1 +: norm(x) * gamma + beta scales the normalised "
                    "activations by a number near 0 at the start; the code's form is "
                    "norm(x) * (1 + gamma) + beta": _spade_variant(ref, x, segmap, one_plus=False),
                    "the map was resized with bilinear interpolation: labels blend into "
                    "fractions at class borders; use mode='nearest'": _spade_variant(
                        ref, x, segmap, mode="bilinear"
                    ),
                    "instance normalisation (per sample); SPADE in G normalises with "
                    "BatchNorm statistics over the batch and the positions": _spade_variant(
                        ref, x, segmap, norm="instance"
                    ),
                    "x is not normalised first": _spade_variant(ref, x, segmap, norm="none"),
                    "gamma and beta are swapped (mlp_gamma scales, mlp_beta shifts)": (
                        F.batch_norm(x, None, None, training=True)
                        * (1 + ref.modulation(segmap, x.shape[2:])[1])
                        + ref.modulation(segmap, x.shape[2:])[0]
                    ),
                },
            )
            raise CheckFailed(
                f"{where}, expected BN(x) * (1 + gamma(m)) + beta(m) (BN without affine, "
                f"training-mode batch statistics, eps 1e-5; m resized to x's size with "
                f"NEAREST)" + hint
            )
        weights = torch.randn(got.shape, generator=gen, dtype=got.dtype)
        (g,) = torch.autograd.grad((got * weights).sum(), x)
        (w_,) = torch.autograd.grad((want * weights).sum(), x)
        require_close(g, w_, f"{where}, the gradient reaching x", atol=1e-6, rtol=1e-5)
    # a uniform map: SPADE must still tell the classes apart (the paper's argument)
    ref = M.SPADE(2, 3, nhidden=4).double().train()
    _randomize(ref, gen)
    student = _build(SPADE, "SPADE", 2, 3, 4)
    _load(student, ref, "SPADE")
    x = torch.randn(2, 2, 4, 4, generator=gen, dtype=torch.float64)
    for c in range(3):
        m = torch.zeros(2, 3, 4, 4, dtype=torch.float64)
        m[:, c] = 1
        require_close(student(x, m), ref(x, m), f"for a uniform map of class {c}", atol=1e-6)


register(
    Exercise(
        chapter=CHAPTER,
        id="1",
        title="SPADE",
        points=2,
        names=("SPADE",),
        check=check_spade,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 2: the SPADE ResBlk with the learned shortcut
# --------------------------------------------------------------------------------------


def check_spade_resblock(SPADEResnetBlock) -> None:
    """(SPADE, LReLU 0.2, conv3x3) twice, min(fin, fout) in the middle; shortcut x itself or
    conv_s(norm_s(x)) (1x1, no bias) when the channels change."""
    gen = torch.Generator().manual_seed(72)
    cases = ((4, 4, 3, 5, (4, 4)), (6, 3, 3, 4, (5, 6)), (2, 5, 4, 3, (8, 8)))
    for fin, fout, label_nc, nhidden, (h, w) in cases:
        ref = M.SPADEResnetBlock(fin, fout, label_nc, spectral=False, nhidden=nhidden)
        ref = ref.double().train()
        _randomize(ref, gen)
        student = _build(SPADEResnetBlock, "SPADEResnetBlock", fin, fout, label_nc, nhidden)
        _load(student, ref, f"SPADEResnetBlock({fin}, {fout}, ...)")
        x = torch.randn(3, fin, h, w, generator=gen, dtype=torch.float64).requires_grad_()
        segmap = _segmap(gen, 3, label_nc, 2 * h, 2 * w)
        where = f"for fin {fin}, fout {fout}, x {tuple(x.shape)}, a map {tuple(segmap.shape)}"
        got = _require_tensor(student(x, segmap), "SPADEResnetBlock(...)(x, segmap)")
        want = ref(x, segmap)
        if got.shape != want.shape:
            raise CheckFailed(f"{where}, expected shape {tuple(want.shape)}, got {_shape(got)}")
        if not close(got, want, atol=1e-6, rtol=1e-5):
            dx = ref.conv_1(F.leaky_relu(ref.norm_1(ref.conv_0(F.leaky_relu(
                ref.norm_0(x, segmap), 0.2)), segmap), 0.2))  # fmt: skip
            relu_dx = ref.conv_1(F.relu(ref.norm_1(ref.conv_0(F.relu(
                ref.norm_0(x, segmap))), segmap)))  # fmt: skip
            hints = {
                "ReLU instead of LeakyReLU(0.2)": ref.shortcut(x, segmap) + relu_dx,
                "the shortcut is missing (out = dx only)": dx,
            }
            if ref.learned_shortcut:
                hints["the learned shortcut skips its SPADE: conv_s(norm_s(x)), not conv_s(x)"] = (
                    ref.conv_s(x) + dx
                )
                hints["the shortcut has a LeakyReLU after norm_s (the official has none)"] = (
                    ref.conv_s(F.leaky_relu(ref.norm_s(x, segmap), 0.2)) + dx
                )
            raise CheckFailed(
                f"{where}, expected shortcut(x) + conv_1(LReLU(norm_1(conv_0(LReLU(norm_0(x, "
                "m))), m)))" + _diagnose(got, hints)
            )
        weights = torch.randn(got.shape, generator=gen, dtype=got.dtype)
        (g,) = torch.autograd.grad((got * weights).sum(), x)
        (w_,) = torch.autograd.grad((want * weights).sum(), x)
        require_close(g, w_, f"{where}, the gradient reaching x", atol=1e-6, rtol=1e-5)


register(
    Exercise(
        chapter=CHAPTER,
        id="2",
        title="the SPADE ResBlk with the learned shortcut",
        points=2,
        names=("SPADEResnetBlock",),
        check=check_spade_resblock,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 3: the hinge losses
# --------------------------------------------------------------------------------------


def _logits(gen, shapes, scale=1.5):
    return [
        (torch.randn(s, generator=gen, dtype=torch.float64) * scale).requires_grad_()
        for s in shapes
    ]


def check_hinge_losses(d_hinge_loss, g_hinge_loss) -> None:
    """L_D = 1/K sum_k [mean relu(1 - D_k(real)) + mean relu(1 + D_k(fake))];
    L_G = -1/K sum_k mean D_k(fake)."""
    gen = torch.Generator().manual_seed(73)
    for shapes in (((4, 1, 5, 5), (4, 1, 3, 3)), ((2, 1, 7, 6),), ((3, 1, 4, 4),) * 3):
        real, fake = _logits(gen, shapes), _logits(gen, shapes)
        k = len(shapes)
        where = f"for {k} scale(s) of logits {[tuple(s) for s in shapes]}"
        got = _require_tensor(d_hinge_loss(real, fake), "d_hinge_loss(real, fake)")
        if got.numel() != 1:
            raise CheckFailed(f"{where}, d_hinge_loss should be one number, got {_shape(got)}")
        got = got.reshape(())
        want = M.d_hinge_loss([[r] for r in real], [[f] for f in fake])
        if not close(got, want, atol=1e-6):
            mean = lambda xs, k=k: sum(xs) / k  # noqa: E731
            hint = _diagnose(got, {
                "the hinge signs are swapped: reals should score above +1, fakes below -1 "
                "(relu(1 - D(real)) + relu(1 + D(fake)))": mean(
                    [F.relu(1 + r).mean() + F.relu(1 - f).mean() for r, f in zip(real, fake)]),
                "the relu is missing (that is the Wasserstein critic loss, not the hinge)":
                    mean([(1 - r).mean() + (1 + f).mean() for r, f in zip(real, fake)]),
                "the scales are summed, not averaged (1/K)": want * k,
                "the real and fake terms are averaged (x 1/2); the official adds them":
                    want / 2,
            })  # fmt: skip
            raise CheckFailed(f"{where}, expected L_D = {want.item():.6f}, got "
                              f"{got.item():.6f}" + hint)  # fmt: skip
        grads = torch.autograd.grad(got, real + fake)
        wgrads = torch.autograd.grad(want, real + fake)
        for g, w in zip(grads, wgrads):
            require_close(g, w, f"{where}, the gradient of L_D reaching the logits", atol=1e-8)
        got_g = _require_tensor(g_hinge_loss(fake), "g_hinge_loss(fake)").reshape(-1)
        if got_g.numel() != 1:
            raise CheckFailed(f"{where}, g_hinge_loss should be one number")
        want_g = M.g_hinge_loss([[f] for f in fake])
        if not close(got_g[0], want_g, atol=1e-6):
            mean = lambda xs, k=k: sum(xs) / k  # noqa: E731
            hint = _diagnose(got_g[0], {
                "the sign is flipped: G maximises D's score on its fakes, L_G = -mean D(fake)":
                    -want_g,
                "G's loss is hinged too (relu(1 - D(fake))); the official G loss is the "
                "plain -mean D(fake)": mean([F.relu(1 - f).mean() for f in fake]),
                "the scales are summed, not averaged (1/K)": want_g * k,
            })  # fmt: skip
            raise CheckFailed(f"{where}, expected L_G = {want_g.item():.6f}, got "
                              f"{got_g[0].item():.6f}" + hint)  # fmt: skip


register(
    Exercise(
        chapter=CHAPTER,
        id="3",
        title="the hinge losses",
        points=2,
        names=("d_hinge_loss", "g_hinge_loss"),
        check=check_hinge_losses,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 4: feature matching
# --------------------------------------------------------------------------------------


def _features(gen, layout, requires_grad):
    return [
        [
            (torch.randn(s, generator=gen, dtype=torch.float64)).requires_grad_(requires_grad)
            for s in scale
        ]
        for scale in layout
    ]


def check_feature_matching(feature_matching_loss) -> None:
    """lambda / K sum_k sum_{j < last} mean |D_k^j(fake) - D_k^j(real)|, real detached."""
    gen = torch.Generator().manual_seed(74)
    layouts = (
        (((2, 3, 5, 5), (2, 4, 3, 3), (2, 1, 2, 2)), ((2, 3, 3, 3), (2, 4, 2, 2), (2, 1, 1, 1))),
        (((3, 2, 6, 4), (3, 1, 3, 2)),),
    )
    for layout, lam in zip(layouts, (10.0, 2.5)):
        fake = _features(gen, layout, True)
        real = _features(gen, layout, True)  # real features WITH a graph: must not get one
        where = f"for {len(layout)} scale(s) of {[len(s) for s in layout]} outputs, lambda {lam}"
        got = _require_tensor(feature_matching_loss(fake, real, lam), "feature_matching_loss")
        if got.numel() != 1:
            raise CheckFailed(f"{where}, expected one number, got {_shape(got)}")
        got = got.reshape(())
        want = M.feature_matching_loss(fake, real, lam)
        if not close(got, want, atol=1e-6):
            k = len(layout)
            pairs = [(f, r) for fs, rs in zip(fake, real) for f, r in zip(fs, rs)]
            inner = [(f, r) for fs, rs in zip(fake, real) for f, r in zip(fs[:-1], rs[:-1])]
            hint = _diagnose(got, {
                "the logits (the last output of each scale) are matched too; feature "
                "matching uses the intermediate features only":
                    lam / k * sum((f - r).abs().mean() for f, r in pairs),
                "squared differences (MSE); the official uses L1":
                    lam / k * sum(((f - r) ** 2).mean() for f, r in inner),
                "the scales are summed, not averaged (1/K)": want * k,
                "lambda_feat is missing": want / lam,
            })  # fmt: skip
            raise CheckFailed(f"{where}, expected {want.item():.6f}, got {got.item():.6f}"
                              + hint)  # fmt: skip
        got.backward()
        leaks = [
            r for scale in real for r in scale if r.grad is not None and r.grad.abs().sum() > 0
        ]
        if leaks:
            raise CheckFailed(
                "gradients flow into the real image's features: the real side is a constant "
                "target (use real.detach()); otherwise G's loss also moves D's view of the "
                "real images"
            )
        for fs in fake:
            for f in fs[:-1]:
                if f.grad is None:
                    raise CheckFailed("no gradient reaches the fake features: G learns through "
                                      "them")  # fmt: skip


register(
    Exercise(
        chapter=CHAPTER,
        id="4",
        title="feature matching",
        points=2,
        names=("feature_matching_loss",),
        check=check_feature_matching,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 5: the KL term
# --------------------------------------------------------------------------------------


def check_kl_loss(kl_loss) -> None:
    """lambda * -0.5 * sum(1 + logvar - mu^2 - exp(logvar)) over batch and z dims."""
    gen = torch.Generator().manual_seed(75)
    for b, d, lam in ((4, 8, 0.05), (1, 3, 1.0), (6, 2, 0.3)):
        mu = torch.randn(b, d, generator=gen, dtype=torch.float64).requires_grad_()
        logvar = (torch.randn(b, d, generator=gen, dtype=torch.float64) * 0.7).requires_grad_()
        where = f"for mu, logvar of shape ({b}, {d}) and lambda {lam}"
        got = _require_tensor(kl_loss(mu, logvar, lam), "kl_loss(mu, logvar, lambda)")
        if got.numel() != 1:
            raise CheckFailed(f"{where}, expected one number, got {_shape(got)}")
        got = got.reshape(())
        want = M.kl_loss(mu, logvar, lam)
        if not close(got, want, atol=1e-8):
            hint = _diagnose(got, {
                "a mean over the batch; the official KLDLoss sums over the batch too": want / b,
                "a mean over all elements; the official sums": want / (b * d),
                "the sign is flipped (-0.5 * sum(...) is >= 0)": -want,
                "the 0.5 is missing": want * 2,
                "lambda_kld is missing": want / lam,
            })  # fmt: skip
            raise CheckFailed(f"{where}, expected {want.item():.6f}, got {got.item():.6f}"
                              + hint)  # fmt: skip
        g = torch.autograd.grad(got, (mu, logvar))
        w = torch.autograd.grad(want, (mu, logvar))
        require_close(g[0], w[0], f"{where}, the gradient reaching mu", atol=1e-8)
        require_close(g[1], w[1], f"{where}, the gradient reaching logvar", atol=1e-8)


register(
    Exercise(
        chapter=CHAPTER,
        id="5",
        title="the KL term",
        points=2,
        names=("kl_loss",),
        check=check_kl_loss,
    )
)
