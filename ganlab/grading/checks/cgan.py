"""Checks for Chapter 1's assignment (CGAN, Mirza & Osindero 2014).

Every check computes its own golden with ``torch.nn.functional`` on inputs it makes up, then
compares values, shapes, dtypes and gradients. Messages say what was expected, what was
observed, and, where a common mistake is recognisable, which one it looks like.
"""

from __future__ import annotations

import functools

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
    """Vectors (N, D) -> [h, one_hot(y)]; maps (N, C, H, W) -> [h, K constant label maps]."""
    gen = torch.Generator().manual_seed(1)
    # Labels reach only 7, so a one-hot width taken from the batch gives the wrong width.
    y = torch.tensor([3, 0, 7, 3, 1])
    for dtype in (torch.float32, torch.float64):
        h = torch.randn(5, 6, generator=gen, dtype=dtype).requires_grad_()
        out = _require_tensor(condition_on_label(h, y), "condition_on_label(h, y)")
        want = torch.cat([h, F.one_hot(y, 10).to(dtype)], dim=1)
        if out.shape != want.shape:
            raise CheckFailed(
                f"for h of shape (5, 6) and 5 labels, expected shape (5, 16) = "
                f"(N, D + num_classes) with num_classes=10, got {_shape(out)}. The label "
                "becomes a one-hot vector of length num_classes, placed after h's features"
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
                "rebuilt from its data?); the generator and discriminator learn through "
                "this concatenation"
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

    # Feature maps: the label as num_classes constant maps, at two different sizes (a size
    # written into the answer fails the second), with C == num_classes first so that a
    # concatenation on the wrong axis still runs and gets a message.
    for (n, c, height, width), k in (((3, 4, 5, 3), 4), ((2, 2, 4, 4), 10)):
        y = torch.arange(n) % k
        h = torch.randn(n, c, height, width, generator=gen, dtype=torch.float64)
        h.requires_grad_()
        out = _require_tensor(condition_on_label(h, y, num_classes=k), "the output for maps")
        maps = F.one_hot(y, k).double()[:, :, None, None].expand(-1, -1, height, width)
        want = torch.cat([h, maps], dim=1)
        where = f"for feature maps h of shape {(n, c, height, width)} and num_classes={k}"
        if out.shape != want.shape:
            raise CheckFailed(
                f"{where}, expected shape {tuple(want.shape)} = (N, C + num_classes, H, W), got "
                f"{_shape(out)}: every position needs the whole one-hot code, as extra "
                "channels of the same height and width as h"
            )
        if out.dtype != h.dtype:
            raise CheckFailed(f"{where} in float64, expected float64, got {out.dtype}")
        if not torch.equal(out[:, :c].detach(), h.detach()):
            raise CheckFailed(f"{where}, the first C channels should be h, unchanged")
        part = out[:, c:].detach()
        if not torch.equal(part, part[:, :, :1, :1].expand_as(part)):
            raise CheckFailed(
                f"{where}, the label channels are not constant over the positions: each "
                "label channel must hold one number everywhere (the values were scrambled "
                "by a reshape?)"
            )
        _require_close(out, want, f"{where}, the label channels (channel c is 1 for label c)")
        if not out.requires_grad:
            raise CheckFailed(f"{where}, the output is detached from h")
        weights = torch.randn(out.shape, generator=gen, dtype=torch.float64)
        (grad,) = torch.autograd.grad((out * weights).sum(), h)
        _require_close(grad, weights[:, :c], f"{where}, the gradient reaching h")


register(
    Exercise(
        chapter=CHAPTER,
        id="1",
        title="conditioning on the label, vectors and maps",
        points=2,
        names=("condition_on_label",),
        check=check_condition_on_label,
        hints=(
            "Two cases: look at h.dim(). A vector gets K more numbers, a map K more channels.",
            "For maps, make the one-hot code (N, K) into (N, K, 1, 1) and stretch it over H "
            "and W (no copy needed), then join along the channels.",
        ),
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
            "the sign is flipped (D maximises the log-likelihood of its answers)": -want,
            "the targets are swapped between the real and the fake logits": (
                F.softplus(real).mean() + F.softplus(-fake).mean()
            ),
            "only the real term is there": F.softplus(-real).mean(),
            "only the fake term is there": F.softplus(fake).mean(),
            "one mean over both batches together, not one mean per term": (
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
            "sigmoid(200) is exactly 1.0 in float32, so log(1 - sigmoid) is -inf: compute "
            "the BCE from the logits themselves, never from sigmoid's output"
        )
    _require_close(
        got, want, "the loss for logits of +-200 (a BCE on logits is exact there)", rtol=1e-4
    )


register(
    Exercise(
        chapter=CHAPTER,
        id="2",
        title="the discriminator's loss",
        points=2,
        names=("discriminator_loss",),
        check=check_discriminator_loss,
        hints=(
            "Two binary cross-entropies, one per batch; which target does D want for each?",
            "PyTorch has a BCE that takes logits and applies the sigmoid inside, stably.",
        ),
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
                ": that is the saturating minimax loss, whose gradient vanishes when D "
                "confidently rejects the fakes; the exercise asks for the non-saturating one"
            )
        elif torch.allclose(got.double(), -want.double(), atol=1e-5):
            diagnosis = ": the sign is flipped"
        elif torch.allclose(got.double(), F.softplus(fake).mean().double(), atol=1e-5):
            diagnosis = ": that is D's target for the fakes; G wants the opposite"
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
            f"for logits of +-200 the loss is {got.item()}, expected {want.item():.4f}: "
            "compute the BCE from the logits themselves, never from sigmoid's output"
        )
    _require_close(
        got, want, "the loss for logits of +-200 (a BCE on logits is exact there)", rtol=1e-4
    )


register(
    Exercise(
        chapter=CHAPTER,
        id="3",
        title="the non-saturating generator loss",
        points=1,
        names=("generator_loss",),
        check=check_generator_loss,
        hints=("G wants D to answer for its fakes what D answers for real digits.",),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 4: PaperGenerator(z_dim=100, num_classes=10)
# --------------------------------------------------------------------------------------


def paper_generator_parameters(z_dim: int, num_classes: int) -> int:
    """Weights + biases of the paper's four Linear layers (Mirza & Osindero, Sec. 4.1)."""
    layers = [(z_dim, 200), (num_classes, 1000), (1200, 1200), (1200, 784)]
    return sum(fan_in * fan_out + fan_out for fan_in, fan_out in layers)


def _paper_forward(model: nn.Module, z: torch.Tensor, y: torch.Tensor):
    """The paper's forward pass with ``model``'s own Linear weights (found by their shapes),
    for both orders of the concatenation; ``None`` if the four layers cannot be told apart."""
    shapes = {(200, 100): "z", (1000, 10): "y", (1200, 1200): "joint", (784, 1200): "out"}
    layers = {}
    for m in model.modules():
        if isinstance(m, nn.Linear) and tuple(m.weight.shape) in shapes:
            layers.setdefault(shapes[tuple(m.weight.shape)], []).append(m)
    if sorted(layers) != sorted(shapes.values()) or any(len(v) != 1 for v in layers.values()):
        return None
    lin = {k: v[0] for k, v in layers.items()}
    with torch.no_grad():
        h_z = F.relu(lin["z"](z))
        h_y = F.relu(lin["y"](F.one_hot(y, 10).to(z.dtype)))
        outs = []
        for h in (torch.cat([h_z, h_y], 1), torch.cat([h_y, h_z], 1)):
            a = lin["out"](F.relu(lin["joint"](h)))
            outs.append((2 * torch.sigmoid(a) - 1).view(-1, 1, 28, 28))
    return outs


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
            "[0, 1] output must be mapped onto the course's [-1, 1]"
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
            "enter the generator through its own layer"
        )
    if (base - other_z).abs().amax(dim=(1, 2, 3)).min() < 1e-6:
        raise CheckFailed("changing only z left some images unchanged: z must enter too")

    # With the student's own weights, the output is the paper's layers: every hidden layer
    # followed by its ReLU and the output a rescaled sigmoid (a missing activation keeps the
    # shapes and the parameter count, so only the values show it).
    want = _paper_forward(model, z, y)
    if want is not None:
        with torch.no_grad():
            got = model(z, y)
        if not any(torch.allclose(got, w, atol=1e-5) for w in want):
            raise CheckFailed(
                "run with your own weights, your generator's images differ from the paper's "
                "layers computed with the same weights: is every hidden layer (the z branch, "
                "the label branch, the joint layer) followed by a ReLU, does the label enter "
                "as a one-hot code, and is the output the sigmoid mapped onto [-1, 1] (not "
                "another squashing function)?"
            )

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
        hints=(
            "Four fully connected layers; count the inputs of the joint layer from the two "
            "branches' outputs.",
            "The sigmoid gives [0, 1]; which affine map sends [0, 1] onto [-1, 1]?",
        ),
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
                "class_grid changed PyTorch's global random state: draw z from a random "
                "generator of your own, seeded with seed, and leave the global one alone"
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
                "the generator ran with autograd on; sampling needs no gradients, so build no graph"
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
        raise CheckFailed("the same seed should give the same grid: z must come from the seed")
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
        hints=(
            "Draw n_per_class codes once; the grid needs each of them once per class.",
            "Tensors have one method that repeats a whole block and another that repeats "
            "each element in place.",
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 6: train_step(G, D, opt_g, opt_d, x, y, z, y_fake) -> (loss_d, loss_g)
# --------------------------------------------------------------------------------------


class _StepG(nn.Module):
    """A small conditional G for checking training steps: (z (N, 4), y (N,)) -> (N, 1, 4, 4)."""

    def __init__(self, counter, num_classes: int = 3):
        super().__init__()
        self.counter, self.num_classes = counter, num_classes
        self.net = nn.Linear(4 + num_classes, 16)

    def forward(self, z, y):
        h = torch.cat([z, F.one_hot(y, self.num_classes).to(z.dtype)], dim=1)
        return self.counter.watch(torch.tanh(self.net(h)).view(-1, 1, 4, 4))


class _StepD(nn.Module):
    """A small conditional D: (x (N, 1, 4, 4), y (N,)) -> logits (N,)."""

    def __init__(self, num_classes: int = 3):
        super().__init__()
        self.num_classes = num_classes
        self.net = nn.Sequential(nn.Linear(16 + num_classes, 8), nn.LeakyReLU(0.2), nn.Linear(8, 1))

    def forward(self, x, y):
        h = torch.cat([x.flatten(1), F.one_hot(y, self.num_classes).to(x.dtype)], dim=1)
        return self.net(h).squeeze(1)


def _init_from(module: nn.Module, gen: torch.Generator) -> nn.Module:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * 0.5)
    return module


def _cgan_case(size: int, seed: int):
    from ganlab.grading.checks.common import GradientCounter

    gen = torch.Generator().manual_seed(seed)
    counter = GradientCounter()
    G = _init_from(_StepG(counter).double(), gen)
    D = _init_from(_StepD().double(), gen)
    # plain SGD: its update is proportional to the gradient, so a loss off by a constant
    # factor moves the weights differently (Adam's first step would hide it)
    opt_g = torch.optim.SGD(G.parameters(), lr=0.1, momentum=0.5)
    opt_d = torch.optim.SGD(D.parameters(), lr=0.1, momentum=0.5)
    calls = []
    for _ in range(2):
        x = torch.tanh(torch.randn(size, 1, 4, 4, generator=gen, dtype=torch.float64))
        y = torch.randint(0, 3, (size,), generator=gen)
        z = torch.randn(size, 4, generator=gen, dtype=torch.float64)
        y_fake = (y + 1 + torch.randint(0, 2, (size,), generator=gen)) % 3  # never y
        calls.append((G, D, opt_g, opt_d, x, y, z, y_fake))
    return {"G": G, "D": D}, calls, counter


def reference_train_step(G, D, opt_g, opt_d, x, y, z, y_fake):
    """One CGAN step: D on (x, y) -> 1 and (G(z, y_fake), y_fake) -> 0, then G, through the
    updated D, with the non-saturating loss. Returns the two losses as floats."""
    fake = G(z, y_fake)
    loss_d = F.softplus(-D(x, y)).mean() + F.softplus(D(fake.detach(), y_fake)).mean()
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = F.softplus(-D(fake, y_fake)).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def check_train_step(train_step) -> None:
    """Two steps on small fixed models, two batch sizes: parameters and losses as the
    reference's, and no gradient from D's loss into G."""
    from ganlab.grading.checks.common import compare_training_steps

    compare_training_steps(train_step, reference_train_step, _cgan_case)


register(
    Exercise(
        chapter=CHAPTER,
        id="6",
        title="one training step",
        points=3,
        names=("train_step",),
        check=check_train_step,
        hints=(
            "Order matters: first D's update (its loss, its backward, its optimiser), then G's.",
            "D must not send gradients into G: the fakes it trains on are cut from G's graph. "
            "G's loss is measured by D after D's update.",
            "Every backward adds to the gradients already there.",
        ),
    )
)


# --------------------------------------------------------------------------------------
# Exercise 7: read a result — the digit the shipped generator steers worst
# --------------------------------------------------------------------------------------

PER_DIGIT = 300  # samples per digit for the check's own measurement


@functools.lru_cache(maxsize=2)
def measured_per_digit_accuracy(per_digit: int = PER_DIGIT, seed: int = 0) -> torch.Tensor:
    """The judge's accuracy on the shipped generator's samples of each digit, (10,)
    (measured once per process: it depends only on the shipped weights)."""
    from ganlab.chapters import cgan as chapter
    from ganlab.judges.digits import load_digit_judge

    G, _ = chapter.load_generator()
    judge = load_digit_judge()
    labels = torch.arange(10).repeat(per_digit)
    with torch.no_grad():
        predicted = judge(chapter.generate(G, labels, seed=seed)).argmax(1)
    hits = torch.zeros(10).index_add_(0, labels, (predicted == labels).float())
    return (hits / per_digit).clone()


def check_worst_digit(worst_digit, worst_accuracy) -> None:
    """The digit with the lowest judge accuracy (any within 0.03 of it counts) and its
    accuracy, within 0.05 of the check's own measurement (300 samples a digit)."""
    from ganlab.grading.checks.common import require_answered

    require_answered(worst_digit, worst_accuracy)
    if isinstance(worst_digit, torch.Tensor) and worst_digit.numel() == 1:
        worst_digit = worst_digit.item()
    if (
        isinstance(worst_digit, bool)
        or not isinstance(worst_digit, int)
        or not 0 <= worst_digit <= 9
    ):
        raise CheckFailed(f"worst_digit should be a digit, an int from 0 to 9, got {worst_digit!r}")
    accuracy = measured_per_digit_accuracy()
    lowest = accuracy.min().item()
    if accuracy[worst_digit].item() > lowest + 0.03:
        raise CheckFailed(
            f"the judge reads the shipped generator's {worst_digit}s correctly more often than "
            "those of another digit; look at every row of the confusion matrix (or compute "
            "the accuracy per requested digit) and pick the lowest"
        )
    from ganlab.grading.checks.common import require_number

    require_number(
        worst_accuracy, "worst_accuracy", accuracy[worst_digit].item(), 0.05,
        "It is the fraction of the samples asked to be that digit which the judge reads as "
        "that digit (a number between 0 and 1, from a few hundred samples)",
    )  # fmt: skip


register(
    Exercise(
        chapter=CHAPTER,
        id="7",
        title="reading the steering result",
        points=1,
        names=("worst_digit", "worst_accuracy"),
        check=check_worst_digit,
        hints=(
            "Generate a few hundred samples of every digit, let the judge read them, and "
            "count per requested digit.",
        ),
    )
)
