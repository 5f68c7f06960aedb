"""Checks for Chapter 2's assignment (GAN-INT-CLS, Reed et al. 2016).

Every check computes its own golden on inputs it makes up (``F.softplus`` for the losses,
plain arithmetic and broadcasting for the rest), then compares values, shapes, dtypes and
gradients, and checks that the inputs were left untouched. Messages say what was expected, what
was observed and, where a common mistake is recognisable, which one it looks like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.grading.checks.common import close as _close
from ganlab.grading.checks.common import require_close as _require_close
from ganlab.grading.checks.common import require_tensor as _require_tensor
from ganlab.grading.checks.common import shape as _shape
from ganlab.grading.registry import CheckFailed, Exercise, register

CHAPTER = "gan-int-cls"


def _require_untouched(inputs: dict[str, torch.Tensor], copies: dict[str, torch.Tensor]) -> None:
    for name, x in inputs.items():
        if x.shape != copies[name].shape or not torch.equal(x, copies[name]):
            raise CheckFailed(
                f"your function changed its input `{name}` in place (its shape or values differ "
                "after the call; an in-place method such as unsqueeze_, mul_ or add_?). "
                "D and G reuse these tensors: build new ones instead"
            )


# --------------------------------------------------------------------------------------
# Exercise 1: matching_aware_d_loss(real_logits, wrong_logits, fake_logits)
# --------------------------------------------------------------------------------------


def _cls_golden(r: torch.Tensor, w: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    # BCE(x, 1) = softplus(-x) and BCE(x, 0) = softplus(x): stable for any logit.
    return F.softplus(-r).mean() + 0.5 * F.softplus(w).mean() + 0.5 * F.softplus(f).mean()


def _cls_diagnosis(got: torch.Tensor, r, w, f) -> str:
    sp = F.softplus
    s = torch.sigmoid
    hints = {
        "the wrong term is missing (and the fakes keep weight 0.5)": sp(-r).mean()
        + 0.5 * sp(f).mean(),
        "the wrong term is missing: that is the plain conditional GAN loss; GAN-CLS adds "
        "+ 0.5 BCE(wrong_logits, 0)": sp(-r).mean() + sp(f).mean(),
        "the wrong and fake terms have weight 1; Algorithm 1 halves them, "
        "(log(1 - s_w) + log(1 - s_f)) / 2": sp(-r).mean() + sp(w).mean() + sp(f).mean(),
        "the mismatched pairs are labelled real (target 1); a real image with the wrong text "
        "is a NEGATIVE for D (target 0)": sp(-r).mean() + 0.5 * sp(-w).mean() + 0.5 * sp(f).mean(),
        "all three BCE terms are labelled like the real one": sp(-r).mean()
        + 0.5 * sp(-w).mean()
        + 0.5 * sp(-f).mean(),
        "a sigmoid was applied before BCE-with-logits: the inputs are already logits, and "
        "binary_cross_entropy_with_logits applies the sigmoid itself": sp(-s(r)).mean()
        + 0.5 * sp(s(w)).mean()
        + 0.5 * sp(s(f)).mean(),
        "the sign is flipped: D minimises the BCE terms": -_cls_golden(r, w, f),
        "one mean over all three batches together (or the terms divided by 3)": (
            sp(-r).mean() + sp(w).mean() + sp(f).mean()
        )
        / 3,
        "one weighted BCE over the three batches concatenated: its mean divides by 3B, "
        "so the loss is a third of the sum of the three means": _cls_golden(r, w, f) / 3,
        "the whole loss is divided by 2": _cls_golden(r, w, f) / 2,
        "sums over the batch instead of means": sp(-r).sum()
        + 0.5 * sp(w).sum()
        + 0.5 * sp(f).sum(),
    }
    for text, value in hints.items():
        if torch.allclose(got.double(), value.double(), atol=1e-5, rtol=1e-5):
            return f": it looks like {text}"
    return ""


def check_matching_aware_d_loss(matching_aware_d_loss) -> None:
    """BCE(real, 1) + 0.5 BCE(wrong, 0) + 0.5 BCE(fake, 0), logits in, means, stable."""
    gen = torch.Generator().manual_seed(21)
    n = 8
    real = (torch.randn(n, generator=gen) * 2 + 1).requires_grad_()
    wrong = (torch.randn(n, generator=gen) * 2).requires_grad_()
    fake = (torch.randn(n, generator=gen) * 2 - 1).requires_grad_()
    loss = _require_tensor(
        matching_aware_d_loss(real, wrong, fake), "matching_aware_d_loss(real, wrong, fake)"
    )
    if loss.numel() != 1:
        raise CheckFailed(
            f"expected one number (a scalar tensor), got shape {_shape(loss)}; reduce each "
            "BCE term with its mean over the batch"
        )
    got = loss.reshape(())
    want = _cls_golden(real, wrong, fake)
    if not torch.allclose(got.double(), want.double(), atol=1e-5, rtol=1e-5):
        raise CheckFailed(
            f"for {n} real, wrong and fake logits, expected {want.item():.6f} = "
            "BCE(real, 1) + 0.5 BCE(wrong, 0) + 0.5 BCE(fake, 0) (each a mean), got "
            f"{got.item():.6f}" + _cls_diagnosis(got, real, wrong, fake)
        )
    if not loss.requires_grad:
        raise CheckFailed("the loss is not connected to the logits (detached?); D cannot learn")
    g_real, g_wrong, g_fake = torch.autograd.grad(got, (real, wrong, fake))
    _require_close(g_real, -(1 - torch.sigmoid(real)) / n, "d loss / d real_logits")
    _require_close(g_wrong, 0.5 * torch.sigmoid(wrong) / n, "d loss / d wrong_logits")
    _require_close(g_fake, 0.5 * torch.sigmoid(fake) / n, "d loss / d fake_logits")

    # Each term is a mean over ITS OWN batch (here the fakes are a bigger batch).
    real, wrong, fake = (torch.randn(k, generator=gen) * 2 for k in (4, 4, 10))
    got = _require_tensor(matching_aware_d_loss(real, wrong, fake), "the loss").reshape(())
    want = _cls_golden(real, wrong, fake)
    if not torch.allclose(got.double(), want.double(), atol=1e-5, rtol=1e-5):
        raise CheckFailed(
            f"for 4 real, 4 wrong and 10 fake logits, expected {want.item():.6f}, got "
            f"{got.item():.6f}: each BCE term is an expectation, the mean over its own batch "
            "(not a sum, nor one mean over everything)"
        )

    # Confident logits: sigmoid then log overflows to inf here; BCE-with-logits does not.
    real = torch.tensor([200.0, -200.0, 30.0, 0.0])
    wrong = torch.tensor([-200.0, 200.0, 30.0, -30.0])
    fake = torch.tensor([200.0, -200.0, -30.0, 30.0])
    got = _require_tensor(matching_aware_d_loss(real, wrong, fake), "the loss").reshape(())
    want = _cls_golden(real, wrong, fake)
    if not torch.isfinite(got):
        raise CheckFailed(
            f"for logits of +-200 the loss is {got.item()}, expected {want.item():.4f}. "
            "sigmoid(200) is exactly 1.0 in float32, so log(1 - sigmoid) is -inf: compute "
            "the BCE from the logits themselves, never from sigmoid's output"
        )
    _require_close(got, want, "the loss for logits of +-200 (use BCE with logits)", rtol=1e-4)


register(
    Exercise(
        chapter=CHAPTER,
        id="1",
        title="the matching-aware discriminator loss",
        points=2,
        names=("matching_aware_d_loss",),
        check=check_matching_aware_d_loss,
        hints=(
            "Three BCE terms, one per kind of pair; which target does D want for each?",
            "The two kinds of negative pair share the weight a plain GAN gives its one.",
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 2: interpolate_text(t1, t2, beta=0.5)
# --------------------------------------------------------------------------------------


def _interp_diagnosis(got: torch.Tensor, t1, t2, beta: float) -> str:
    want = beta * t1 + (1 - beta) * t2
    hints = {
        "beta weighs t2 instead of t1 (torch.lerp(t1, t2, beta) is (1 - beta) t1 + beta t2); "
        "the paper's beta t1 + (1 - beta) t2 gives t1 at beta = 1": (1 - beta) * t1 + beta * t2,
        "beta is ignored (always the midpoint)": (t1 + t2) / 2,
        "the result is normalised; the paper feeds beta t1 + (1 - beta) t2 to G as it is": (
            F.normalize(want, dim=-1)
        ),
        "the weights do not sum to 1 (beta t1 + beta t2?)": beta * (t1 + t2),
        "t2 is missing (beta * t1 only)": beta * t1,
    }
    for text, value in hints.items():
        if _close(got, value):
            return f": it looks like {text}"
    return ""


def check_interpolate_text(interpolate_text) -> None:
    """beta * t1 + (1 - beta) * t2, same shape and dtype, gradients to both, inputs intact."""
    gen = torch.Generator().manual_seed(22)
    b, d = 5, 8
    # First without autograd: values, shapes, and no in-place edits of the inputs.
    for beta in (0.5, 0.25, 0.8, 0.0, 1.0):
        t1 = torch.randn(b, d, generator=gen) * 3
        t2 = torch.randn(b, d, generator=gen) + 2
        copies = {"t1": t1.clone(), "t2": t2.clone()}
        call = "interpolate_text(t1, t2)" if beta == 0.5 else f"interpolate_text(..., beta={beta})"
        out = interpolate_text(t1, t2) if beta == 0.5 else interpolate_text(t1, t2, beta=beta)
        out = _require_tensor(out, call)
        _require_untouched({"t1": t1, "t2": t2}, copies)
        if out.shape != (b, d):
            raise CheckFailed(
                f"{call} for t1, t2 of shape {(b, d)} should return shape {(b, d)}, one "
                f"interpolated embedding per row, got {_shape(out)}"
            )
        want = beta * t1 + (1 - beta) * t2
        if not _close(out, want):
            raise CheckFailed(
                f"{call}: expected beta * t1 + (1 - beta) * t2, got other values "
                f"(first row {out[0, :4].tolist()} instead of {want[0, :4].tolist()})"
                + _interp_diagnosis(out, t1, t2, beta)
            )

    # dtype kept, and gradients reach both embeddings with weights beta and 1 - beta.
    for dtype, beta in ((torch.float32, 0.3), (torch.float64, 0.5)):
        t1 = torch.randn(b, d, generator=gen, dtype=dtype).requires_grad_()
        t2 = torch.randn(b, d, generator=gen, dtype=dtype).requires_grad_()
        out = _require_tensor(interpolate_text(t1, t2, beta=beta), "the output")
        if out.dtype != dtype:
            raise CheckFailed(
                f"for embeddings of dtype {dtype}, expected that dtype, got {out.dtype}"
            )
        _require_close(out, beta * t1 + (1 - beta) * t2, f"for {dtype} with beta={beta}")
        if not out.requires_grad:
            raise CheckFailed(
                "the output is detached from t1 and t2 (detach, .data, numpy or no_grad?); G's "
                "INT loss must reach the text embeddings' computation"
            )
        weights = torch.randn(out.shape, generator=gen, dtype=dtype)
        g1, g2 = torch.autograd.grad((out * weights).sum(), (t1, t2), allow_unused=True)
        for name, grad, scale in (("t1", g1, beta), ("t2", g2, 1 - beta)):
            if grad is None:
                raise CheckFailed(f"no gradient reaches {name}: was it detached?")
            _require_close(grad, scale * weights, f"the gradient reaching {name} (beta={beta})")


register(
    Exercise(
        chapter=CHAPTER,
        id="2",
        title="interpolating text embeddings",
        points=1,
        names=("interpolate_text",),
        check=check_interpolate_text,
        hints=("At beta = 1 the answer must be t1 itself.",),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 3: replicate_text(features, text)
# --------------------------------------------------------------------------------------


def _replicate_golden(features: torch.Tensor, text: torch.Tensor) -> torch.Tensor:
    # Broadcasting against ones puts text[b, p] at every (i, j) of channel p of sample b.
    h, w = features.shape[2], features.shape[3]
    maps = text.reshape(*text.shape, 1, 1) * torch.ones(1, 1, h, w, dtype=text.dtype)
    return torch.cat([features, maps], dim=1)


def _replicate_diagnosis(out: torch.Tensor, features, text) -> str:
    b, c, hh, ww = features.shape
    p = text.shape[1]
    if out.shape != (b, c + p, hh, ww):
        return ""
    maps = _replicate_golden(features, text)[:, c:]
    if _close(out[:, :p], maps) and _close(out[:, p:], features):
        return ": the text comes first; the official D puts the image features first"
    if not _close(out[:, :c], features):
        return ": the first C channels should be the features, unchanged"
    part = out[:, c:]
    if not _close(part, part[:, :, :1, :1].expand_as(part)):
        return (
            ": the text channels are not constant over the positions, so the values were "
            "scrambled (a view or reshape of a repeated tensor?). Channel p of sample b must "
            "hold sample b's p-th text number at every position"
        )
    return ": each text channel is constant, but with values from the wrong sample or channel"


def check_replicate_text(replicate_text) -> None:
    """[features, text repeated at every position] along channels; gradients; inputs intact."""
    gen = torch.Generator().manual_seed(23)
    # C == P first, so that a concatenation on the wrong axis returns (and gets a message).
    # then other spatial sizes, so that a size written into the answer fails.
    cases = ((3, 4, 4, 4, 4), (3, 5, 2, 4, 4), (2, 3, 2, 3, 5), (2, 2, 3, 1, 1))
    for b, c, p, hh, ww in cases:
        features = torch.randn(b, c, hh, ww, generator=gen)
        text = torch.randn(b, p, generator=gen) * 2 + torch.arange(b)[:, None] * 10.0
        copies = {"features": features.clone(), "text": text.clone()}
        out = _require_tensor(replicate_text(features, text), "replicate_text(features, text)")
        _require_untouched({"features": features, "text": text}, copies)
        if out.shape != (b, c + p, hh, ww):
            raise CheckFailed(
                f"for features {(b, c, hh, ww)} and text {(b, p)} expected shape "
                f"{(b, c + p, hh, ww)} = (B, C + P, H, W), got {_shape(out)}: the text is "
                "replicated over the features' positions, whatever their size, and joined "
                "as extra channels"
            )
        want = _replicate_golden(features, text)
        if not _close(out, want):
            raise CheckFailed(
                f"for features {(b, c, hh, ww)} and text {(b, p)}, the values differ from "
                "[features, text at every position]" + _replicate_diagnosis(out, features, text)
            )

    # dtype kept; gradients: the features' own, and the text's summed over its 16 copies.
    for dtype in (torch.float32, torch.float64):
        features = torch.randn(2, 3, 4, 4, generator=gen, dtype=dtype).requires_grad_()
        text = torch.randn(2, 5, generator=gen, dtype=dtype).requires_grad_()
        out = _require_tensor(replicate_text(features, text), "the output")
        if out.dtype != dtype:
            raise CheckFailed(f"for inputs of dtype {dtype}, expected that dtype, got {out.dtype}")
        _require_close(out, _replicate_golden(features, text), f"for {dtype} inputs")
        if not out.requires_grad:
            raise CheckFailed("the output is detached from its inputs; D cannot learn through it")
        weights = torch.randn(out.shape, generator=gen, dtype=dtype)
        g_feat, g_text = torch.autograd.grad(
            (out * weights).sum(), (features, text), allow_unused=True
        )
        if g_text is None or g_feat is None:
            which = "text" if g_text is None else "features"
            learns = "D's text projection" if which == "text" else "D's image layers"
            raise CheckFailed(
                f"no gradient reaches the {which} (detached?); {learns} learn through this "
                "concatenation"
            )
        _require_close(g_feat, weights[:, :3], "the gradient reaching the features")
        _require_close(
            g_text,
            weights[:, 3:].sum(dim=(2, 3)),
            "the gradient reaching the text (the sum over its 16 copies)",
        )


register(
    Exercise(
        chapter=CHAPTER,
        id="3",
        title="replicating the text over D's features",
        points=2,
        names=("replicate_text",),
        check=check_replicate_text,
        hints=(
            "Give the text two trailing axes of size 1, then stretch them to H and W.",
            "Stretching a size-1 axis needs no copy; the join is along the channels.",
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 4: train_step(G, D, opt_g, opt_d, x, x_wrong, t, z, z_int) -> (loss_d, loss_g)
# --------------------------------------------------------------------------------------

INT_WEIGHT_STEP = 0.5  # the course's weight of the interpolated-text term (INT_WEIGHT)


class _StepG(nn.Module):
    """A small text-conditional G: z (N, 3), t (N, 5) -> images (N, 1, 4, 4)."""

    def __init__(self, counter):
        super().__init__()
        self.counter = counter
        self.net = nn.Linear(3 + 5, 16)

    def forward(self, z, t):
        h = torch.tanh(self.net(torch.cat([z, t], dim=1))).view(-1, 1, 4, 4)
        return self.counter.watch(h)


class _StepD(nn.Module):
    """A small text-conditional D: x (N, 1, 4, 4), t (N, 5) -> logits (N,)."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(16 + 5, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))

    def forward(self, x, t):
        return self.net(torch.cat([x.flatten(1), t], dim=1)).squeeze(1)


def _int_cls_case(size: int, seed: int):
    from ganlab.grading.checks.common import GradientCounter

    gen = torch.Generator().manual_seed(seed)
    counter = GradientCounter()
    G, D = _StepG(counter).double(), _StepD().double()
    with torch.no_grad():
        for p in [*G.parameters(), *D.parameters()]:
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.1, momentum=0.5)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.5)
    calls = []
    for _ in range(2):
        x = torch.tanh(torch.randn(size, 1, 4, 4, generator=gen, dtype=torch.float64))
        x_wrong = torch.tanh(torch.randn(size, 1, 4, 4, generator=gen, dtype=torch.float64))
        t = torch.randn(size, 5, generator=gen, dtype=torch.float64)
        z = torch.randn(size, 3, generator=gen, dtype=torch.float64)
        z_int = torch.randn(size, 3, generator=gen, dtype=torch.float64)
        calls.append((G, D, opt_g, opt_d, x, x_wrong, t, z, z_int))
    return {"G": G, "D": D}, calls, counter


def reference_train_step(G, D, opt_g, opt_d, x, x_wrong, t, z, z_int):
    """One GAN-INT-CLS step: D matching-aware, then G on the right text and on the midpoints
    of each text and the previous one in the batch (D never trains on those)."""
    fake = G(z, t)
    loss_d = (
        F.softplus(-D(x, t)).mean()
        + 0.5 * F.softplus(D(x_wrong, t)).mean()
        + 0.5 * F.softplus(D(fake.detach(), t)).mean()
    )
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    t_int = 0.5 * t + 0.5 * t.roll(1, 0)
    loss_g = F.softplus(-D(fake, t)).mean()
    loss_g = loss_g + INT_WEIGHT_STEP * F.softplus(-D(G(z_int, t_int), t_int)).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def check_train_step(train_step) -> None:
    """Two steps on small fixed models, two batch sizes: parameters and losses as the
    reference's, and no gradient from D's loss into G."""
    from ganlab.grading.checks.common import compare_training_steps

    compare_training_steps(train_step, reference_train_step, _int_cls_case)


register(
    Exercise(
        chapter=CHAPTER,
        id="4",
        title="a GAN-INT-CLS training step",
        points=3,
        names=("train_step",),
        check=check_train_step,
        hints=(
            "D's update first, with your Exercise 1 loss; the fakes it sees are cut from G.",
            "G's loss has two terms: the right text, and the interpolated text with its own "
            "codes, each judged by the updated D with the text G was given.",
            "Every backward adds to the gradients already there.",
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 5: read a result — how far above chance the shipped model follows the text
# --------------------------------------------------------------------------------------


def measured_alignment_gain() -> float:
    """The shipped GAN-INT-CLS's text alignment minus chance, on the test captions, as
    measured when it was shipped (1,000 captions; the lecture prints the same numbers)."""
    from ganlab.chapters import gan_int_cls as chapter

    test = chapter.load_generator()[1]["manifest"]["metrics"]["test"]
    return test["text_alignment"] - test["chance"]


def check_alignment_gain(alignment_above_chance) -> None:
    """Within 0.005 (the lecture prints three decimals)."""
    from ganlab.grading.checks.common import require_number

    require_number(
        alignment_above_chance, "alignment_above_chance", measured_alignment_gain(), 0.005,
        "It is the shipped model's text alignment on the TEST captions minus the chance "
        "level printed beside it (a difference of two fractions, not a ratio), for the "
        "shipped GAN-INT-CLS of section 8, not the short runs of section 9's table",
    )  # fmt: skip


register(
    Exercise(
        chapter=CHAPTER,
        id="5",
        title="reading the text-alignment result",
        points=1,
        names=("alignment_above_chance",),
        check=check_alignment_gain,
        hints=(
            "Section 8 of the lecture ('The shipped model, measured') prints a table with one "
            "row per split; the test row holds both numbers.",
        ),
    )
)
