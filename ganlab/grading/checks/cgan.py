"""Checks for Chapter 1's assignment (CGAN, Mirza & Osindero 2014).

Every check computes its own golden with ``torch.nn.functional`` on inputs it makes up, then
compares values, shapes, dtypes and gradients. Messages say what was expected, what was
observed, and, where a common mistake is recognisable, which one it looks like.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.grading.checks.common import require_close as _require_close
from ganlab.grading.checks.common import require_tensor as _require_tensor
from ganlab.grading.checks.common import shape as _shape
from ganlab.grading.registry import CheckFailed, Exercise, register

CHAPTER = "cgan"


# --------------------------------------------------------------------------------------
# Exercise 1: condition_on_label(h, y, num_classes=10)
# --------------------------------------------------------------------------------------


def check_condition_on_label(condition_on_label) -> None:
    """[h, one_hot(y)] along the feature axis; keeps h's dtype and its gradient."""
    gen = torch.Generator().manual_seed(1)
    # Labels reach only 7, so F.one_hot(y) without num_classes gives the wrong width.
    y = torch.tensor([3, 0, 7, 3, 1])
    for dtype in (torch.float32, torch.float64):
        h = torch.randn(5, 6, generator=gen, dtype=dtype).requires_grad_()
        out = _require_tensor(condition_on_label(h, y), "condition_on_label(h, y)")
        want = torch.cat([h, F.one_hot(y, 10).to(dtype)], dim=1)
        if out.shape != want.shape:
            raise CheckFailed(
                f"for h of shape (5, 6) and 5 labels, expected shape (5, 16) = "
                f"(N, D + num_classes) with num_classes=10, got {_shape(out)}. The label "
                "goes on as a one-hot vector of length num_classes, beside h's features "
                "(dim=1)."
            )
        if out.dtype != dtype:
            raise CheckFailed(f"for h of dtype {dtype}, expected that dtype, got {out.dtype}")
        _require_close(out[:, :6], h, "the first D columns (they should be h, unchanged)")
        _require_close(
            out[:, 6:], want[:, 6:], "the last num_classes columns (the one-hot label)", atol=0
        )
        if not out.requires_grad:
            raise CheckFailed(
                "the output does not depend on h through autograd (was h detached, or "
                "rebuilt from .data/.numpy()?); the generator and discriminator learn "
                "through this concatenation"
            )
        weights = torch.randn(out.shape, generator=gen, dtype=dtype)
        (grad,) = torch.autograd.grad((out * weights).sum(), h)
        _require_close(grad, weights[:, :6], "the gradient reaching h")

    # num_classes is honoured.
    h = torch.randn(4, 3, generator=gen)
    y = torch.tensor([0, 2, 1, 2])
    out = _require_tensor(condition_on_label(h, y, num_classes=4), "the output")
    if out.shape != (4, 7):
        raise CheckFailed(
            f"with num_classes=4 and h of shape (4, 3), expected shape (4, 7), got {_shape(out)}"
        )
    _require_close(out, torch.cat([h, F.one_hot(y, 4).float()], 1), "with num_classes=4")


register(
    Exercise(
        chapter=CHAPTER,
        id="1",
        title="conditioning on the label",
        points=2,
        names=("condition_on_label",),
        check=check_condition_on_label,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 2: discriminator_loss(real_logits, fake_logits)
# --------------------------------------------------------------------------------------


def _d_loss_golden(real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    # BCE(r, 1) = softplus(-r) and BCE(f, 0) = softplus(f): stable for any logit.
    return F.softplus(-real).mean() + F.softplus(fake).mean()


def check_discriminator_loss(discriminator_loss) -> None:
    """The sum of the two BCE-with-logits means, stable, with the right gradients."""
    gen = torch.Generator().manual_seed(2)
    # Batches of different sizes: each term is a mean over its own batch.
    real = (torch.randn(6, generator=gen) * 2 + 1).requires_grad_()
    fake = (torch.randn(10, generator=gen) * 2 - 1).requires_grad_()
    loss = _require_tensor(discriminator_loss(real, fake), "discriminator_loss(...)")
    if loss.numel() != 1:
        raise CheckFailed(f"expected one number (a scalar tensor), got shape {_shape(loss)}")
    want = _d_loss_golden(real, fake)
    got = loss.reshape(())
    if not torch.allclose(got.double(), want.double(), atol=1e-5, rtol=1e-5):
        hints = {
            "the two terms are averaged (divided by 2); the value function sums them": want / 2,
            "the sign is flipped: D minimises BCE, i.e. maximises its log-likelihood": -want,
            "the targets are swapped: real logits go with 1, fake logits with 0": (
                F.softplus(real).mean() + F.softplus(-fake).mean()
            ),
            "only the real term is there; add BCE(fake_logits, 0)": F.softplus(-real).mean(),
            "only the fake term is there; add BCE(real_logits, 1)": F.softplus(fake).mean(),
            "one mean over both batches together; take the mean of each term": (
                torch.cat([F.softplus(-real), F.softplus(fake)]).mean()
            ),
        }
        diagnosis = next(
            (k for k, v in hints.items() if torch.allclose(got.double(), v.double(), atol=1e-5)),
            None,
        )
        raise CheckFailed(
            f"for 6 real and 10 fake logits, expected {want.item():.6f} = "
            f"mean BCE(real, 1) + mean BCE(fake, 0), got {got.item():.6f}"
            + (f": it looks like {diagnosis}" if diagnosis else "")
        )
    if not loss.requires_grad:
        raise CheckFailed("the loss is not connected to the logits (detached?); D cannot learn")
    g_real, g_fake = torch.autograd.grad(got, (real, fake))
    _require_close(g_real, -(1 - torch.sigmoid(real)) / 6, "d loss / d real_logits")
    _require_close(g_fake, torch.sigmoid(fake) / 10, "d loss / d fake_logits")

    # Confident logits: sigmoid then log overflows to inf here; BCE-with-logits does not.
    real = torch.tensor([200.0, -200.0, 30.0, 0.0])
    fake = torch.tensor([-200.0, 200.0, -30.0, 30.0])
    got = _require_tensor(discriminator_loss(real, fake), "discriminator_loss(...)").reshape(())
    want = _d_loss_golden(real, fake)
    if not torch.isfinite(got):
        raise CheckFailed(
            f"for logits of +-200 the loss is {got.item()}, expected {want.item():.4f}. "
            "sigmoid(200) is exactly 1.0 in float32, so log(1 - sigmoid) is -inf: use "
            "F.binary_cross_entropy_with_logits, which works on logits directly"
        )
    _require_close(got, want, "the loss for logits of +-200 (use BCE with logits)", rtol=1e-4)


register(
    Exercise(
        chapter=CHAPTER,
        id="2",
        title="the discriminator's loss",
        points=2,
        names=("discriminator_loss",),
        check=check_discriminator_loss,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 3: generator_loss(fake_logits)
# --------------------------------------------------------------------------------------


def check_generator_loss(generator_loss) -> None:
    """The non-saturating loss mean(softplus(-f)), with gradient -(1 - sigmoid(f)) / N."""
    gen = torch.Generator().manual_seed(3)
    fake = (torch.randn(8, generator=gen) * 2 - 1.5).requires_grad_()
    loss = _require_tensor(generator_loss(fake), "generator_loss(fake_logits)")
    if loss.numel() != 1:
        raise CheckFailed(f"expected one number (a scalar tensor), got shape {_shape(loss)}")
    got = loss.reshape(())
    want = F.softplus(-fake).mean()
    if not torch.allclose(got.double(), want.double(), atol=1e-5, rtol=1e-5):
        saturating = -F.softplus(fake).mean()  # mean(log(1 - D(G(z))))
        diagnosis = ""
        if torch.allclose(got.double(), saturating.double(), atol=1e-5):
            diagnosis = (
                ": that is the saturating minimax loss mean(log(1 - D(G(z)))), whose gradient "
                "vanishes when D confidently rejects the fakes; minimise "
                "-mean(log D(G(z))) = BCE(fake_logits, 1) instead"
            )
        elif torch.allclose(got.double(), -want.double(), atol=1e-5):
            diagnosis = ": the sign is flipped (G minimises BCE(fake_logits, 1))"
        elif torch.allclose(got.double(), F.softplus(fake).mean().double(), atol=1e-5):
            diagnosis = ": that is BCE(fake_logits, 0), D's target for fakes; G wants 1"
        raise CheckFailed(
            f"for 8 fake logits, expected {want.item():.6f} = mean BCE(fake_logits, 1), "
            f"got {got.item():.6f}{diagnosis}"
        )
    if not loss.requires_grad:
        raise CheckFailed("the loss is not connected to the logits (detached?); G cannot learn")
    (grad,) = torch.autograd.grad(got, fake)
    _require_close(grad, -(1 - torch.sigmoid(fake)) / 8, "d loss / d fake_logits")

    fake = torch.tensor([-200.0, 200.0, -30.0, 0.0])
    got = _require_tensor(generator_loss(fake), "generator_loss(...)").reshape(())
    want = F.softplus(-fake).mean()
    if not torch.isfinite(got):
        raise CheckFailed(
            f"for logits of +-200 the loss is {got.item()}, expected {want.item():.4f}: use "
            "F.binary_cross_entropy_with_logits, which works on logits directly"
        )
    _require_close(got, want, "the loss for logits of +-200 (use BCE with logits)", rtol=1e-4)


register(
    Exercise(
        chapter=CHAPTER,
        id="3",
        title="the non-saturating generator loss",
        points=2,
        names=("generator_loss",),
        check=check_generator_loss,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 4: PaperGenerator(z_dim=100, num_classes=10)
# --------------------------------------------------------------------------------------


def paper_generator_parameters(z_dim: int, num_classes: int) -> int:
    """Weights + biases of the paper's four Linear layers (Mirza & Osindero, Sec. 4.1)."""
    layers = [(z_dim, 200), (num_classes, 1000), (1200, 1200), (1200, 784)]
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in layers)


def check_paper_generator(PaperGenerator) -> None:  # noqa: N803 (the student's class name)
    """Parameter count, output shape and range, the label's effect, gradients everywhere."""
    if not (isinstance(PaperGenerator, type) and issubclass(PaperGenerator, nn.Module)):
        raise CheckFailed("PaperGenerator should be a class that subclasses torch.nn.Module")
    for z_dim, num_classes in ((100, 10), (16, 4)):
        torch.manual_seed(0)
        model = PaperGenerator(z_dim=z_dim, num_classes=num_classes)
        count = sum(p.numel() for p in model.parameters())
        want = paper_generator_parameters(z_dim, num_classes)
        if count != want:
            raise CheckFailed(
                f"PaperGenerator(z_dim={z_dim}, num_classes={num_classes}) has {count:,} "
                f"parameters; the paper's layers have {want:,}: z -> Linear(z_dim, 200), "
                "one-hot y -> Linear(num_classes, 1000), then Linear(1200, 1200) and "
                "Linear(1200, 784), each with a bias"
            )

    torch.manual_seed(0)
    model = PaperGenerator()  # the defaults: z_dim=100, num_classes=10
    model.eval()  # no dropout noise while we compare outputs
    gen = torch.Generator().manual_seed(4)
    z = torch.randn(32, 100, generator=gen)
    y = torch.arange(32) % 10
    out = _require_tensor(model(z, y), "PaperGenerator()(z, y)")
    if out.shape != (32, 1, 28, 28):
        raise CheckFailed(
            f"for 32 codes expected images of shape (32, 1, 28, 28), got {_shape(out)}"
        )
    if out.dtype != torch.float32:
        raise CheckFailed(f"expected float32 images, got {out.dtype}")
    if not torch.isfinite(out).all() or out.abs().max() > 1:
        raise CheckFailed(
            f"images must lie in [-1, 1]; got values from {out.min().item():.3f} to "
            f"{out.max().item():.3f}"
        )
    if out.min() >= 0:
        raise CheckFailed(
            f"all values lie in [{out.min().item():.3f}, {out.max().item():.3f}]: the sigmoid's "
            "[0, 1] output must be rescaled to the course's [-1, 1] with 2 * sigmoid - 1"
        )

    # The label steers: same z, different labels -> different images; and vice versa.
    with torch.no_grad():
        base = model(z[:10], torch.zeros(10, dtype=torch.long))
        relabelled = model(z[:10], torch.full((10,), 7, dtype=torch.long))
        again = model(z[:10], torch.zeros(10, dtype=torch.long))
        other_z = model(torch.randn(10, 100, generator=gen), torch.zeros(10, dtype=torch.long))
    if not torch.allclose(base, again):
        raise CheckFailed("in eval mode, the same (z, y) should give the same image")
    if (base - relabelled).abs().amax(dim=(1, 2, 3)).min() < 1e-6:
        raise CheckFailed(
            "changing only the label y (0 -> 7) left some images unchanged: the label must "
            "enter the generator (one-hot y -> Linear(num_classes, 1000) -> ReLU)"
        )
    if (base - other_z).abs().amax(dim=(1, 2, 3)).min() < 1e-6:
        raise CheckFailed("changing only z left some images unchanged: z must enter too")

    # Gradients reach every parameter.
    model.train()
    model.zero_grad()
    out = model(z, y)
    if not out.requires_grad:
        raise CheckFailed("the output is detached from the parameters; G cannot learn")
    (out * torch.randn(out.shape, generator=gen)).sum().backward()
    for name, p in model.named_parameters():
        if p.grad is None or p.grad.abs().sum() == 0:
            raise CheckFailed(
                f"no gradient reaches parameter {name!r} {tuple(p.shape)}: every layer must "
                "be on the path from (z, y) to the image"
            )


register(
    Exercise(
        chapter=CHAPTER,
        id="4",
        title="the paper's generator",
        points=3,
        names=("PaperGenerator",),
        check=check_paper_generator,
    )
)


# --------------------------------------------------------------------------------------
# Exercise 5: class_grid(generator, z_dim, n_per_class, num_classes=10, seed=0)
# --------------------------------------------------------------------------------------


class LabelEchoGenerator(nn.Module):
    """A fake generator whose 'image' (1, 1, 1 + z_dim) is [label, z...], so a check can read
    back which label and which z produced every image. It records whether autograd was on."""

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.grad_enabled: list[bool] = []

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        self.grad_enabled.append(torch.is_grad_enabled())
        if y.dim() != 1 or y.dtype != torch.long or len(y) != len(z):
            raise CheckFailed(
                f"the generator should get labels as int64 of shape (N,) = {len(z)} and z of "
                f"shape (N, z_dim); got labels {_shape(y)} {y.dtype} and z {_shape(z)}"
            )
        code = torch.cat([y.to(z.dtype)[:, None], z], dim=1) * self.scale
        return code[:, None, None, :]


def check_class_grid(class_grid) -> None:
    """Row c holds class c, column j the same z for every class, z ~ N(0, 1) from ``seed``."""
    for num_classes, n_per_class, z_dim in ((3, 4, 7), (10, 8, 64)):
        fake = LabelEchoGenerator()
        rng_state = torch.get_rng_state()
        result = class_grid(fake, z_dim, n_per_class, num_classes=num_classes, seed=0)
        if not torch.equal(torch.get_rng_state(), rng_state):
            raise CheckFailed(
                "class_grid changed PyTorch's global random state; draw z from its own "
                "torch.Generator().manual_seed(seed) instead of torch.manual_seed"
            )
        if not (isinstance(result, tuple | list) and len(result) == 2):
            raise CheckFailed("class_grid should return a pair (images, labels)")
        images, labels = result
        n = num_classes * n_per_class
        _require_tensor(images, "images")
        _require_tensor(labels, "labels")
        if images.shape != (n, 1, 1, 1 + z_dim):
            raise CheckFailed(
                f"for num_classes={num_classes}, n_per_class={n_per_class} expected {n} images "
                f"straight from the generator, got images of shape {_shape(images)}"
            )
        want_labels = torch.arange(num_classes).repeat_interleave(n_per_class)
        if labels.shape != (n,) or labels.dtype != torch.long:
            raise CheckFailed(
                f"labels should be int64 of shape ({n},), got {labels.dtype} {_shape(labels)}"
            )
        if not torch.equal(labels.cpu(), want_labels):
            raise CheckFailed(
                f"labels should be row-major, class c filling row c: {want_labels.tolist()}; "
                f"got {labels.tolist()}"
            )
        if images.requires_grad or any(fake.grad_enabled):
            raise CheckFailed(
                "the generator ran with autograd on; sampling needs no gradients "
                "(wrap it in torch.no_grad())"
            )
        used_labels = images[:, 0, 0, 0].round().long().cpu()
        if not torch.equal(used_labels, want_labels):
            raise CheckFailed(
                f"image k should be generated with label labels[k]; the generator got "
                f"{used_labels.tolist()}, expected {want_labels.tolist()}"
            )
        z = images[:, 0, 0, 1:].reshape(num_classes, n_per_class, z_dim).cpu()
        if not torch.allclose(z, z[:1].expand_as(z)):
            raise CheckFailed(
                "column j should use the SAME z in every row (every class), so a column shows "
                "one style across all digits; the rows got different z"
            )
        columns = z[0]
        gaps = torch.cdist(columns, columns) + torch.eye(n_per_class) * 1e9
        if gaps.min() < 1e-4:
            raise CheckFailed("two columns got the same z; each column needs its own z")
        if z_dim * n_per_class >= 256:
            mean, std = columns.mean().item(), columns.std().item()
            if abs(mean) > 0.35 or not 0.8 < std < 1.2:
                raise CheckFailed(
                    f"z should be standard normal (torch.randn); its values have mean "
                    f"{mean:.2f} and std {std:.2f}"
                )

    fake = LabelEchoGenerator()
    first = class_grid(fake, 16, 4, num_classes=2, seed=5)[0]
    again = class_grid(fake, 16, 4, num_classes=2, seed=5)[0]
    other = class_grid(fake, 16, 4, num_classes=2, seed=6)[0]
    if not torch.equal(first, again):
        raise CheckFailed("the same seed should give the same grid (seed a torch.Generator)")
    if torch.allclose(first, other):
        raise CheckFailed("seed=5 and seed=6 gave the same grid; z must come from the seed")


register(
    Exercise(
        chapter=CHAPTER,
        id="5",
        title="a class-by-style grid",
        points=1,
        names=("class_grid",),
        check=check_class_grid,
    )
)
