"""Chapter 1's checks accept the reference solution and reject plausible wrong answers.

The reference is the code of ``solutions/01_cgan.ipynb``'s answer cells, run here as plain
Python; every wrong answer below is a mistake a student could really make.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ganlab.grading import CheckFailed, check, get_exercise, get_exercises
from ganlab.grading.build import find_exercises
from ganlab.grading.checks.cgan import paper_generator_parameters

SOLUTION = Path(__file__).resolve().parents[1] / "solutions" / "01_cgan.ipynb"


@pytest.fixture(scope="module")
def reference() -> dict:
    """The solution notebook's answers, executed in a namespace with the notebook's imports."""
    nb = nbformat.read(SOLUTION, as_version=4)
    found, problems = find_exercises(nb)
    assert not problems
    namespace: dict = {}
    exec("import torch\nimport torch.nn.functional as F\nfrom torch import nn", namespace)
    for exercise in found:
        for index in exercise.answer_cells:
            exec(nb.cells[index].source, namespace)
    return namespace


def test_registry_lists_seven_exercises_worth_thirteen_points():
    exercises = get_exercises("cgan")
    assert [e.id for e in exercises] == ["1", "2", "3", "4", "5", "6", "7"]
    assert [e.points for e in exercises] == [2, 2, 1, 3, 1, 3, 1]
    assert all(e.hints for e in exercises)  # every exercise has opt-in hints
    assert get_exercise("cgan", "4").names == ("PaperGenerator",)


@pytest.mark.parametrize("exercise_id", ["1", "2", "3", "4", "5", "6", "7"])
def test_reference_solution_passes(reference, exercise_id, capsys):
    check("cgan", exercise_id, reference)
    assert capsys.readouterr().out.strip() == get_exercise("cgan", exercise_id).passed_line()


def test_paper_generator_parameter_count_matches_the_paper():
    # 101*200 + 11*1000 + 1201*1200 + 1201*784, counted by hand.
    assert paper_generator_parameters(100, 10) == 20_200 + 11_000 + 1_441_200 + 941_584


def rejects(exercise_id: str, name: str, wrong, match: str | None = None, error=CheckFailed):
    """Assert that ``check`` refuses ``wrong`` (with ``error``, message matching ``match``)."""
    with pytest.raises(error, match=match) as info:
        check("cgan", exercise_id, {name: wrong})
    print(f"rejected: {info.value}")  # shown with pytest -s, to read the messages
    if error is CheckFailed:
        title = get_exercise("cgan", exercise_id).title
        assert str(info.value).startswith(f"Exercise {exercise_id} ({title}): ")


# --- Exercise 1: condition_on_label ------------------------------------------------------

_embedding = nn.Embedding(10, 10)

WRONG_CONDITION = {
    "concatenated on the batch axis": lambda h, y, num_classes=10: torch.cat(
        [h, F.one_hot(y, num_classes).to(h.dtype)], dim=0
    ),
    "label before the features": lambda h, y, num_classes=10: torch.cat(
        [F.one_hot(y, num_classes).to(h.dtype), h], dim=1
    ),
    "learned embedding": lambda h, y, num_classes=10: torch.cat(
        [h, _embedding(y % 10)[:, :num_classes].to(h.dtype)], dim=1
    ),
    "label as one float column": lambda h, y, num_classes=10: torch.cat(
        [h, y.to(h.dtype)[:, None]], dim=1
    ),
    "label scaled to [0, 1] in one column": lambda h, y, num_classes=10: torch.cat(
        [h, (y.to(h.dtype) / (num_classes - 1))[:, None]], dim=1
    ),
    "detached features": lambda h, y, num_classes=10: torch.cat(
        [h.detach(), F.one_hot(y, num_classes).to(h.dtype)], dim=1
    ),
    "always float32": lambda h, y, num_classes=10: torch.cat(
        [h, F.one_hot(y, num_classes)], dim=1
    ).float(),
    "one_hot without num_classes": lambda h, y, num_classes=10: torch.cat(
        [h, F.one_hot(y).to(h.dtype)], dim=1
    ),
    "num_classes hard-coded to 10": lambda h, y, num_classes=10: torch.cat(
        [h, F.one_hot(y, 10).to(h.dtype)], dim=1
    ),
    "labels added to the features": lambda h, y, num_classes=10: h + y[:, None],
    "vectors only (maps get a flat code)": lambda h, y, num_classes=10: torch.cat(
        [h.flatten(1), F.one_hot(y, num_classes).to(h.dtype)], dim=1
    ),
    "maps: spatial size hard-coded to 4x4": lambda h, y, num_classes=10: (
        torch.cat(
            [h, F.one_hot(y, num_classes).to(h.dtype)[:, :, None, None].expand(-1, -1, 4, 4)], 1
        )
        if h.dim() == 4
        else torch.cat([h, F.one_hot(y, num_classes).to(h.dtype)], 1)
    ),
    "maps: concatenated on the height axis": lambda h, y, num_classes=10: (
        torch.cat(
            [
                h,
                F.one_hot(y, num_classes)
                .to(h.dtype)[:, None, :, None]
                .expand(-1, h.shape[1], -1, h.shape[3]),
            ],
            2,
        )
        if h.dim() == 4
        else torch.cat([h, F.one_hot(y, num_classes).to(h.dtype)], 1)
    ),
    "maps: one-hot reshaped instead of repeated": lambda h, y, num_classes=10: (
        torch.cat(
            [
                h,
                F.one_hot(y, num_classes)
                .to(h.dtype)
                .repeat(1, h.shape[2] * h.shape[3])
                .view(len(h), num_classes, h.shape[2], h.shape[3]),
            ],
            1,
        )
        if h.dim() == 4
        else torch.cat([h, F.one_hot(y, num_classes).to(h.dtype)], 1)
    ),
}


@pytest.mark.parametrize("mistake", WRONG_CONDITION)
def test_condition_on_label_rejects(mistake):
    crashes = ("concatenated on the batch axis", "maps: spatial size hard-coded to 4x4")
    error = RuntimeError if mistake in crashes else CheckFailed
    rejects("1", "condition_on_label", WRONG_CONDITION[mistake], error=error)


def test_condition_on_label_messages_name_the_mistake():
    rejects("1", "condition_on_label", WRONG_CONDITION["detached features"], match="detached")
    rejects("1", "condition_on_label", WRONG_CONDITION["always float32"], match="dtype")
    rejects("1", "condition_on_label", WRONG_CONDITION["label as one float column"], "(5, 16)")
    wrong = WRONG_CONDITION["maps: one-hot reshaped instead of repeated"]
    rejects("1", "condition_on_label", wrong, match="not constant")
    wrong = WRONG_CONDITION["vectors only (maps get a flat code)"]
    rejects("1", "condition_on_label", wrong, match="feature maps")


# --- Exercise 2: discriminator_loss ------------------------------------------------------


def _bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


WRONG_D_LOSS = {
    "targets swapped": lambda r, f: _bce(r, 0.0) + _bce(f, 1.0),
    "no fake term": lambda r, f: _bce(r, 1.0),
    "no real term": lambda r, f: _bce(f, 0.0),
    "averaged (the /2 variant)": lambda r, f: (_bce(r, 1.0) + _bce(f, 0.0)) / 2,
    "wrong sign": lambda r, f: -(_bce(r, 1.0) + _bce(f, 0.0)),
    "sigmoid then log": lambda r, f: (
        -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())
    ),
    "sigmoid then clamped log": lambda r, f: (
        -(
            torch.log(torch.sigmoid(r).clamp_min(1e-7)).mean()
            + torch.log((1 - torch.sigmoid(f)).clamp_min(1e-7)).mean()
        )
    ),
    "sigmoid then F.binary_cross_entropy": lambda r, f: (
        F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
        + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f))
    ),
    "one mean over both batches": lambda r, f: F.binary_cross_entropy_with_logits(
        torch.cat([r, f]), torch.cat([torch.ones_like(r), torch.zeros_like(f)])
    ),
    "sums instead of means": lambda r, f: (
        F.binary_cross_entropy_with_logits(r, torch.ones_like(r), reduction="sum")
        + F.binary_cross_entropy_with_logits(f, torch.zeros_like(f), reduction="sum")
    ),
    "detached": lambda r, f: (_bce(r, 1.0) + _bce(f, 0.0)).detach(),
    "per-example losses, not reduced": lambda r, f: F.binary_cross_entropy_with_logits(
        r, torch.ones_like(r), reduction="none"
    ),
}


@pytest.mark.parametrize("mistake", WRONG_D_LOSS)
def test_discriminator_loss_rejects(mistake):
    rejects("2", "discriminator_loss", WRONG_D_LOSS[mistake])


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("averaged (the /2 variant)", "divided by 2"),
        ("wrong sign", "sign is flipped"),
        ("targets swapped", "targets are swapped"),
        ("sigmoid then log", "from the logits themselves"),
    ],
)
def test_discriminator_loss_diagnoses(mistake, diagnosis):
    rejects("2", "discriminator_loss", WRONG_D_LOSS[mistake], match=diagnosis)


# --- Exercise 3: generator_loss ----------------------------------------------------------

WRONG_G_LOSS = {
    "saturating minimax loss": lambda f: -F.softplus(f).mean(),
    "saturating, written with sigmoid": lambda f: torch.log(1 - torch.sigmoid(f)).mean(),
    "wrong sign": lambda f: -_bce(f, 1.0),
    "D's target for fakes": lambda f: _bce(f, 0.0),
    "detached": lambda f: _bce(f, 1.0).detach(),
    "sigmoid then log": lambda f: -torch.log(torch.sigmoid(f)).mean(),
    "sum instead of mean": lambda f: F.softplus(-f).sum(),
    "least squares": lambda f: ((torch.sigmoid(f) - 1) ** 2).mean(),
}


@pytest.mark.parametrize("mistake", WRONG_G_LOSS)
def test_generator_loss_rejects(mistake):
    rejects("3", "generator_loss", WRONG_G_LOSS[mistake])


def test_generator_loss_names_the_saturating_loss():
    rejects("3", "generator_loss", WRONG_G_LOSS["saturating minimax loss"], match="saturating")


def test_detached_generator_loss_fails_on_the_gradient():
    rejects("3", "generator_loss", WRONG_G_LOSS["detached"], match="detached")


# --- Exercise 4: PaperGenerator ----------------------------------------------------------


class _Paper(nn.Module):
    """A correct generator whose pieces the wrong variants below change one at a time."""

    def __init__(self, z_dim=100, num_classes=10, hidden=1200, y_width=1000):
        super().__init__()
        self.num_classes = num_classes
        self.z_branch = nn.Linear(z_dim, 200)
        self.y_branch = nn.Linear(num_classes, y_width)
        self.joint = nn.Linear(200 + y_width, hidden)
        self.to_pixels = nn.Linear(hidden, 784)

    def label_features(self, y, z):
        return F.relu(self.y_branch(F.one_hot(y, self.num_classes).to(z.dtype)))

    def pixels(self, z, y):
        h = torch.cat([F.relu(self.z_branch(z)), self.label_features(y, z)], dim=1)
        return torch.sigmoid(self.to_pixels(F.relu(self.joint(h))))

    def forward(self, z, y):
        return (2 * self.pixels(z, y) - 1).view(-1, 1, 28, 28)


class _NoLabelPath(nn.Module):
    def __init__(self, z_dim=100, num_classes=10):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(z_dim, 1200), nn.ReLU(), nn.Linear(1200, 1200), nn.ReLU(),
            nn.Linear(1200, 784), nn.Sigmoid(),
        )  # fmt: skip

    def forward(self, z, y):
        return (2 * self.net(z) - 1).view(-1, 1, 28, 28)


class _UnusedLabelLayer(_Paper):
    """Right parameter count, but the label branch never sees y."""

    def label_features(self, y, z):
        return F.relu(self.y_branch(torch.zeros(len(z), self.num_classes)))


class _NoRescale(_Paper):
    def forward(self, z, y):
        return self.pixels(z, y).view(-1, 1, 28, 28)


class _FlatOutput(_Paper):
    def forward(self, z, y):
        return 2 * self.pixels(z, y) - 1


class _Detached(_Paper):
    def forward(self, z, y):
        return super().forward(z, y).detach()


class _Embedding(_Paper):
    def __init__(self, z_dim=100, num_classes=10):
        super().__init__(z_dim, num_classes)
        self.y_branch = nn.Embedding(num_classes, 1000)

    def label_features(self, y, z):
        return F.relu(self.y_branch(y))


class _LabelAsScalar(_Paper):
    def __init__(self, z_dim=100, num_classes=10):
        super().__init__(z_dim, num_classes)
        self.y_branch = nn.Linear(1, 1000)

    def label_features(self, y, z):
        return F.relu(self.y_branch(y.to(z.dtype)[:, None]))


class _HardCodedZ(_Paper):
    def __init__(self, z_dim=100, num_classes=10):
        super().__init__(100, num_classes)


class _Narrow(_Paper):
    def __init__(self, z_dim=100, num_classes=10):
        super().__init__(z_dim, num_classes, hidden=256)


class _NoSigmoid(_Paper):
    """Forgets the output sigmoid: 2 * a - 1 leaves [-1, 1]."""

    def pixels(self, z, y):
        h = torch.cat([F.relu(self.z_branch(z)), self.label_features(y, z)], dim=1)
        return self.to_pixels(F.relu(self.joint(h)))


class _DeadLayer(_Paper):
    """Skips the joint layer: its parameters exist but get no gradient."""

    def pixels(self, z, y):
        h = torch.cat([F.relu(self.z_branch(z)), self.label_features(y, z)], dim=1)
        return torch.sigmoid(self.to_pixels(h))


class _NoJointReLU(_Paper):
    """Forgets the ReLU after the joint layer: same shapes, same parameter count."""

    def pixels(self, z, y):
        h = torch.cat([F.relu(self.z_branch(z)), self.label_features(y, z)], dim=1)
        return torch.sigmoid(self.to_pixels(self.joint(h)))


class _NoBranchReLU(_Paper):
    """Forgets the ReLU on the z branch."""

    def pixels(self, z, y):
        h = torch.cat([self.z_branch(z), self.label_features(y, z)], dim=1)
        return torch.sigmoid(self.to_pixels(F.relu(self.joint(h))))


class _TanhOutput(_Paper):
    """tanh instead of the paper's rescaled sigmoid: also in [-1, 1], but not the paper's."""

    def forward(self, z, y):
        h = torch.cat([F.relu(self.z_branch(z)), self.label_features(y, z)], dim=1)
        return torch.tanh(self.to_pixels(F.relu(self.joint(h)))).view(-1, 1, 28, 28)


WRONG_GENERATORS = {
    "no ReLU after the joint layer": _NoJointReLU,
    "no ReLU on the z branch": _NoBranchReLU,
    "tanh output instead of the rescaled sigmoid": _TanhOutput,
    "no label path": _NoLabelPath,
    "label layer never sees y": _UnusedLabelLayer,
    "sigmoid output not rescaled": _NoRescale,
    "flat (N, 784) output": _FlatOutput,
    "detached output": _Detached,
    "learned embedding for y": _Embedding,
    "label as one float input": _LabelAsScalar,
    "z_dim ignored": _HardCodedZ,
    "hidden layer too narrow": _Narrow,
    "no output sigmoid": _NoSigmoid,
    "a layer skipped in forward": _DeadLayer,
}


def test_correct_variant_of_the_generator_passes():
    # The wrong generators below differ from this one in one place each.
    check("cgan", "4", {"PaperGenerator": _Paper})


@pytest.mark.parametrize("mistake", WRONG_GENERATORS)
def test_paper_generator_rejects(mistake):
    rejects("4", "PaperGenerator", WRONG_GENERATORS[mistake])


def test_paper_generator_rejects_an_instance_instead_of_the_class():
    rejects("4", "PaperGenerator", _Paper(), match="class")


# --- Exercise 5: class_grid --------------------------------------------------------------


def _grid(generator, z_dim, n_per_class, num_classes=10, seed=0, *, z=None, labels=None):
    """A correct class_grid, parametrised so that the wrong variants change one thing."""
    rng = torch.Generator().manual_seed(seed)
    if z is None:
        z = torch.randn(n_per_class, z_dim, generator=rng).repeat(num_classes, 1)
    if labels is None:
        labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    with torch.no_grad():
        return generator(z, labels), labels


def _transposed(generator, z_dim, n_per_class, num_classes=10, seed=0):
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n_per_class, z_dim, generator=rng).repeat_interleave(num_classes, 0)
    return _grid(generator, z_dim, n_per_class, num_classes, seed, z=z,
                 labels=torch.arange(num_classes).repeat(n_per_class))  # fmt: skip


def _fresh_z_per_row(generator, z_dim, n_per_class, num_classes=10, seed=0):
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(num_classes * n_per_class, z_dim, generator=rng)
    return _grid(generator, z_dim, n_per_class, num_classes, seed, z=z)


def _one_z_for_all(generator, z_dim, n_per_class, num_classes=10, seed=0):
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(1, z_dim, generator=rng).repeat(num_classes * n_per_class, 1)
    return _grid(generator, z_dim, n_per_class, num_classes, seed, z=z)


def _wrong_labels_returned(generator, z_dim, n_per_class, num_classes=10, seed=0):
    images, labels = _grid(generator, z_dim, n_per_class, num_classes, seed)
    return images, labels.flip(0)


def _wrong_labels_used(generator, z_dim, n_per_class, num_classes=10, seed=0):
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    images, _ = _grid(generator, z_dim, n_per_class, num_classes, seed, labels=labels.flip(0))
    return images, labels


def _float_labels(generator, z_dim, n_per_class, num_classes=10, seed=0):
    images, labels = _grid(generator, z_dim, n_per_class, num_classes, seed)
    return images, labels.float()


def _global_seed(generator, z_dim, n_per_class, num_classes=10, seed=0):
    torch.manual_seed(seed)
    z = torch.randn(n_per_class, z_dim).repeat(num_classes, 1)
    return _grid(generator, z_dim, n_per_class, num_classes, seed, z=z)


def _seed_ignored(generator, z_dim, n_per_class, num_classes=10, seed=0):
    return _grid(generator, z_dim, n_per_class, num_classes, seed=0)


def _uniform_z(generator, z_dim, n_per_class, num_classes=10, seed=0):
    rng = torch.Generator().manual_seed(seed)
    z = torch.rand(n_per_class, z_dim, generator=rng).repeat(num_classes, 1)
    return _grid(generator, z_dim, n_per_class, num_classes, seed, z=z)


def _with_grad(generator, z_dim, n_per_class, num_classes=10, seed=0):
    rng = torch.Generator().manual_seed(seed)
    z = torch.randn(n_per_class, z_dim, generator=rng).repeat(num_classes, 1)
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    return generator(z, labels), labels


def _images_only(generator, z_dim, n_per_class, num_classes=10, seed=0):
    return _grid(generator, z_dim, n_per_class, num_classes, seed)[0]


WRONG_GRIDS = {
    "transposed: column c holds class c": _transposed,
    "a fresh z for every row": _fresh_z_per_row,
    "one z for every image": _one_z_for_all,
    "returned labels do not match": _wrong_labels_returned,
    "generator called with other labels": _wrong_labels_used,
    "labels as floats": _float_labels,
    "global seed reset": _global_seed,
    "seed ignored": _seed_ignored,
    "uniform z": _uniform_z,
    "autograd left on": _with_grad,
    "images only, no labels": _images_only,
}


def test_correct_variant_of_the_grid_passes():
    check("cgan", "5", {"class_grid": _grid})


@pytest.mark.parametrize("mistake", WRONG_GRIDS)
def test_class_grid_rejects(mistake):
    rejects("5", "class_grid", WRONG_GRIDS[mistake])


def test_class_grid_messages_name_the_mistake():
    rejects("5", "class_grid", _fresh_z_per_row, match="SAME z")
    rejects("5", "class_grid", _global_seed, match="global random state")
    rejects("5", "class_grid", _with_grad, match="autograd on")


def test_paper_generator_names_a_missing_activation():
    rejects("4", "PaperGenerator", _NoJointReLU, match="ReLU")


def test_paper_generator_accepts_the_other_concatenation_order():
    class LabelFirst(_Paper):
        def pixels(self, z, y):
            h = torch.cat([self.label_features(y, z), F.relu(self.z_branch(z))], dim=1)
            return torch.sigmoid(self.to_pixels(F.relu(self.joint(h))))

    check("cgan", "4", {"PaperGenerator": LabelFirst})


# --- Exercise 6: train_step -----------------------------------------------------------


def _step(
    *,
    detach=True,
    zero_top=False,
    zero=True,
    g_first=False,
    g_labels="fake",
    d_fake_labels="fake",
    d_scale=1.0,
    g_loss="ns",
    swap_return=False,
    g_fresh_d=True,
):
    """A CGAN step with one thing changed at a time (the defaults are right)."""

    def g_update(G, D, opt_g, fake, y, y_fake):
        labels = y_fake if g_labels == "fake" else y
        logits = D(fake, labels)
        if g_loss == "ns":
            loss_g = F.softplus(-logits).mean()
        elif g_loss == "saturating":
            loss_g = -F.softplus(logits).mean()
        else:  # D's target
            loss_g = F.softplus(logits).mean()
        if zero and not zero_top:
            opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_g

    def step(G, D, opt_g, opt_d, x, y, z, y_fake):
        if zero_top:
            opt_d.zero_grad()
            opt_g.zero_grad()
        fake = G(z, y_fake)
        if g_first:
            loss_g = g_update(G, D, opt_g, fake, y, y_fake)
        fake_d = fake.detach() if detach else fake
        labels = y_fake if d_fake_labels == "fake" else y
        loss_d = d_scale * (F.softplus(-D(x, y)).mean() + F.softplus(D(fake_d, labels)).mean())
        if zero and not zero_top:
            opt_d.zero_grad()
        loss_d.backward(retain_graph=not detach)
        opt_d.step()
        if not g_first:
            loss_g = g_update(G, D, opt_g, fake, y, y_fake)
        out = (loss_d.item(), loss_g.item())
        return out[::-1] if swap_return else out

    return step


WRONG_STEPS = {
    "fakes not detached, gradients cleared at the top": _step(detach=False, zero_top=True),
    "fakes not detached (gradients cleared before each backward)": _step(detach=False),
    "gradients never cleared": _step(zero=False),
    "G updated before D": _step(g_first=True),
    "G trained with the real labels": _step(g_labels="real"),
    "D's fakes paired with the real labels": _step(d_fake_labels="real"),
    "D's loss averaged (halved)": _step(d_scale=0.5),
    "saturating G loss": _step(g_loss="saturating"),
    "G trained towards D's target for fakes": _step(g_loss="d_target"),
    "losses returned in the wrong order": _step(swap_return=True),
}


def test_train_step_reference_matches_the_recipe_pattern():
    check("cgan", "6", {"train_step": _step()})


@pytest.mark.parametrize("mistake", WRONG_STEPS)
def test_train_step_rejects(mistake):
    rejects("6", "train_step", WRONG_STEPS[mistake])


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("fakes not detached (gradients cleared before each backward)", "cut from G's graph"),
        ("gradients never cleared", "left over"),
        ("D's loss averaged (halved)", "discriminator's parameters"),
        ("saturating G loss", "G's loss"),
        ("losses returned in the wrong order", "returned loss_d"),
    ],
)
def test_train_step_names_the_mistake(mistake, diagnosis):
    rejects("6", "train_step", WRONG_STEPS[mistake], match=diagnosis)


def test_train_step_tries_two_batch_sizes():
    def hard_coded(G, D, opt_g, opt_d, x, y, z, y_fake):
        if len(x) != 6:
            return (0.0, 0.0)  # an answer that only handles the first size
        return _step()(G, D, opt_g, opt_d, x, y, z, y_fake)

    rejects("6", "train_step", hard_coded, match="batch of 5")


# --- Exercise 7: the worst-steered digit -----------------------------------------------


@pytest.fixture(scope="module")
def per_digit():
    from ganlab.grading.checks.cgan import measured_per_digit_accuracy

    return measured_per_digit_accuracy()


def test_worst_digit_accepts_the_measured_answer(per_digit):
    digit = int(per_digit.argmin())
    check("cgan", "7", {"worst_digit": digit, "worst_accuracy": per_digit[digit].item() + 0.03})


def _answer(worst_digit, worst_accuracy):
    with pytest.raises(CheckFailed) as info:
        check("cgan", "7", {"worst_digit": worst_digit, "worst_accuracy": worst_accuracy})
    return str(info.value)


def test_worst_digit_rejects_plausible_wrong_answers(per_digit):
    digit = int(per_digit.argmin())
    best = int(per_digit.argmax())
    acc = per_digit[digit].item()
    assert "pick the lowest" in _answer(best, per_digit[best].item())  # the best digit
    assert "within 0.05" in _answer(digit, 100 * acc)  # a percentage, not a fraction
    assert "within 0.05" in _answer(digit, 1 - acc)  # the error rate
    assert "within 0.05" in _answer(digit, per_digit.mean().item() + 0.02)  # the mean
    assert "int from 0 to 9" in _answer(float(digit), acc)
    assert "int from 0 to 9" in _answer(10, acc)


def test_hints_are_opt_in_one_at_a_time(capsys):
    from ganlab.grading import hint

    hints = get_exercise("cgan", "6").hints
    hint("cgan", "6")
    out = capsys.readouterr().out
    assert (
        hints[0] in out and hints[1] not in out and 'hint("cgan", "6", 2)'.replace('"', "'") in out
    )
    hint("cgan", "6", 2)
    out = capsys.readouterr().out
    assert hints[0] in out and hints[1] in out and hints[2] not in out
    with pytest.raises(ValueError, match="positive integer"):
        hint("cgan", "6", 0)


def test_an_unanswered_question_is_not_implemented():
    # the exercise notebook leaves the answers as NotImplemented: that is "not answered yet",
    # not a wrong answer, like an exercise whose function still raises NotImplementedError
    with pytest.raises(NotImplementedError):
        check("cgan", "7", {"worst_digit": NotImplemented, "worst_accuracy": NotImplemented})
