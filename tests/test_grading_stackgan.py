"""Chapter 3's checks accept reference answers and reject plausible wrong ones.

The references below are what the solution notebook's answer cells should contain; every wrong
answer is a mistake a student (or a published port) could really make.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganlab.grading.checks.stackgan as stackgan_checks  # registers chapter "stackgan"
from ganlab.grading import CheckFailed, check, get_exercise
from ganlab.grading.registry import EXERCISES
from ganlab.models.stackgan import ResidualBlock as ModelResidualBlock


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)  # after conftest's fixture: the CI machine's cores are shared


def rejects(exercise_id: str, name: str, wrong, match: str | None = None, error=CheckFailed):
    """Assert that ``check`` refuses ``wrong`` (with ``error``, message matching ``match``)."""
    with pytest.raises(error, match=match) as info:
        check("stackgan", exercise_id, {name: wrong})
    print(f"rejected: {info.value}")  # shown with pytest -s, to read the messages


def test_registry_lists_four_exercises_worth_eight_points():
    exercises = EXERCISES["stackgan"]
    assert [e.id for e in exercises] == ["1", "2", "3", "4"]
    assert [e.points for e in exercises] == [2, 2, 3, 1]
    assert all(e.hints for e in exercises)
    assert get_exercise("stackgan", "2").names == ("ResidualBlock",)
    assert stackgan_checks.CHAPTER == "stackgan"


# --- Exercise 1: conditioning_augmentation -----------------------------------------------


def per_sample(t, eps):
    """(B, C) -> (B, 1, C) when eps is (B, K, C), so that it lines up with eps's first axis."""
    return t[:, None] if eps.dim() == 3 else t


def conditioning_augmentation(fc_out, eps):
    c_dim = fc_out.shape[1] // 2
    mu, logvar = fc_out[:, :c_dim], fc_out[:, c_dim:]
    c = per_sample(mu, eps) + per_sample(torch.exp(0.5 * logvar), eps) * eps
    kl = (0.5 * (logvar.exp() + mu**2 - 1 - logvar)).sum(dim=1).mean()
    return c, mu, logvar, kl


def _right_sample(m, lv, e):
    return per_sample(m, e) + per_sample(torch.exp(0.5 * lv), e) * e


def _ca(split=None, sample=None, kl=None):
    """A conditioning_augmentation with one piece replaced."""

    def run(fc_out, eps):
        c_dim = fc_out.shape[1] // 2
        mu, logvar = (split or (lambda x, k: (x[:, :k], x[:, k:])))(fc_out, c_dim)
        c = (sample or _right_sample)(mu, logvar, eps)
        terms = 0.5 * (logvar.exp() + mu**2 - 1 - logvar)
        return c, mu, logvar, (kl or (lambda t, m, lv: t.sum(1).mean()))(terms, mu, logvar)

    return run


def _many(wrong_sample):
    """Right for eps (B, C); ``wrong_sample`` for eps (B, K, C)."""
    return lambda m, lv, e: (wrong_sample if e.dim() == 3 else _right_sample)(m, lv, e)


WRONG_CA = {
    "halves swapped": (_ca(split=lambda x, k: (x[:, k:], x[:, :k])), "swapped"),
    # crashes inside the student's own code, which check() lets through with a note
    "hard-coded c_dim = 4": (_ca(split=lambda x, k: (x[:, :4], x[:, 4:])), None, RuntimeError),
    "interleaved columns": (_ca(split=lambda x, k: (x[:, 0::2], x[:, 1::2])), None),
    "KL sign flipped": (_ca(kl=lambda t, m, lv: -t.sum(1).mean()), "sign"),
    "sigma used as variance": (
        _ca(sample=lambda m, lv, e: m + torch.exp(lv) * e),
        "VARIANCE",
    ),
    "logvar used as sigma": (_ca(sample=lambda m, lv, e: m + lv * e), "logvar was used"),
    "c = mu (no sample)": (_ca(sample=lambda m, lv, e: m), "sample is missing"),
    "a fresh eps": (
        _ca(sample=lambda m, lv, e: m + torch.exp(0.5 * lv) * torch.randn_like(e)),
        "eps",
    ),
    "sample detached": (
        _ca(sample=lambda m, lv, e: m + (torch.exp(0.5 * lv) * e).detach()),
        "no gradient reaches logvar",
    ),
    "logvar detached in the sample": (
        _ca(sample=lambda m, lv, e: m + torch.exp(0.5 * lv.detach()) * e),
        "no gradient reaches logvar",
    ),
    "mu detached in the sample": (
        _ca(sample=lambda m, lv, e: m.detach() + torch.exp(0.5 * lv) * e),
        "reaching mu",
    ),
    "KL: mean over all elements (official reduction)": (
        _ca(kl=lambda t, m, lv: t.mean()),
        "ALL elements",
    ),
    "KL: summed over the batch": (_ca(kl=lambda t, m, lv: t.sum()), "sum over everything"),
    "KL: mean over dims, sum over batch": (_ca(kl=lambda t, m, lv: t.mean(1).sum()), None),
    "KL: per example, not averaged": (_ca(kl=lambda t, m, lv: t.sum(1)), "scalar"),
    "KL: no 1/2": (_ca(kl=lambda t, m, lv: 2 * t.sum(1).mean()), "1/2"),
    "KL with exp(logvar) as sigma": (
        _ca(kl=lambda t, m, lv: (0.5 * (torch.exp(2 * lv) + m**2 - 1 - 2 * lv)).sum(1).mean()),
        "sigma",
    ),
    "KL detached": (_ca(kl=lambda t, m, lv: t.sum(1).mean().detach()), "autograd"),
    "KL as a float": (_ca(kl=lambda t, m, lv: t.sum(1).mean().item()), "torch.Tensor"),
    "three outputs": (lambda f, e: conditioning_augmentation(f, e)[:3], "four"),
    # the generalisation: eps (B, K, C), K samples per caption
    "K samples: the (B, C) formula as it stands": (
        _ca(sample=lambda m, lv, e: m + torch.exp(0.5 * lv) * e),
        "lined up with eps's K axis: the \\(B, C\\) formula",
    ),
    "K samples: sigma not lined up": (
        _ca(sample=_many(lambda m, lv, e: m[:, None] + torch.exp(0.5 * lv) * e)),
        "sigma was lined up",
    ),
    "K samples: mu not lined up": (
        _ca(sample=_many(lambda m, lv, e: m + torch.exp(0.5 * lv)[:, None] * e)),
        "mu was lined up",
    ),
    "K samples: eps averaged over K": (
        _ca(sample=_many(lambda m, lv, e: m + torch.exp(0.5 * lv) * e.mean(1))),
        "c should have eps's shape",
    ),
    "K samples: flattened to (B*K, C)": (
        _ca(sample=_many(lambda m, lv, e: _right_sample(m, lv, e).flatten(0, 1))),
        "c should have eps's shape",
    ),
    "K samples: every sample the first": (
        _ca(sample=_many(lambda m, lv, e: _right_sample(m, lv, e[:, :1]).expand_as(e))),
        "repeats the first",
    ),
    "K samples: KL summed over the samples": (
        lambda f, e: (
            *conditioning_augmentation(f, e)[:3],
            conditioning_augmentation(f, e)[3] * (e.shape[1] if e.dim() == 3 else 1),
        ),
        "summed over the 3 samples",
    ),
}


def test_reference_conditioning_augmentation_passes(capsys):
    check("stackgan", "1", {"conditioning_augmentation": conditioning_augmentation})
    assert capsys.readouterr().out.strip() == get_exercise("stackgan", "1").passed_line()


def test_model_conditioning_block_agrees_with_the_exercise():
    # The shipped CA, fed its own FC output, gives what the exercise asks for.
    from ganlab.nn.conditioning import ConditioningAugmentation, kl_divergence

    ca = ConditioningAugmentation(6, 3)
    t = torch.randn(4, 6)
    mu, logvar = ca.encode(t)
    eps = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))
    c, _, _ = ca(t, generator=torch.Generator().manual_seed(0))
    ref = conditioning_augmentation(torch.cat([mu, logvar], 1), eps)
    torch.testing.assert_close(c, ref[0])
    torch.testing.assert_close(kl_divergence(mu, logvar), ref[3])


@pytest.mark.parametrize("mistake", WRONG_CA)
def test_conditioning_augmentation_rejects(mistake):
    wrong, match, *error = WRONG_CA[mistake]
    rejects("1", "conditioning_augmentation", wrong, match=match, error=(error or [CheckFailed])[0])


# --- Exercise 2: ResidualBlock -----------------------------------------------------------


class ResidualBlock(nn.Module):
    """The reference answer: the official block, with a projection shortcut when the width
    changes."""

    def __init__(self, in_channels, out_channels=None):
        super().__init__()
        out_channels = out_channels or in_channels
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.projected = out_channels != in_channels
        if self.projected:
            self.shortcut_conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
            self.shortcut_bn = nn.BatchNorm2d(out_channels)

    def branch(self, x):
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def skip(self, x):
        return self.shortcut_bn(self.shortcut_conv(x)) if self.projected else x

    def forward(self, x):
        return F.relu(self.branch(x) + self.skip(x))


class _NoSkip(ResidualBlock):
    def forward(self, x):
        return F.relu(self.branch(x))


class _LecturesBlock(nn.Module):
    """The lecture's block as it stands: one width only."""

    def __init__(self, channels):
        super().__init__()
        self.inner = ResidualBlock(channels)
        self.conv1, self.bn1, self.conv2, self.bn2 = (
            self.inner.conv1,
            self.inner.bn1,
            self.inner.conv2,
            self.inner.bn2,
        )
        del self.inner

    def forward(self, x):
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + x)


class _ShortcutAlways(ResidualBlock):
    def __init__(self, in_channels, out_channels=None):
        super().__init__(in_channels, out_channels)
        out_channels = out_channels or in_channels
        self.projected = True
        self.shortcut_conv = nn.Conv2d(in_channels, out_channels, 1, bias=False)
        self.shortcut_bn = nn.BatchNorm2d(out_channels)


class _ShortcutNoBatchNorm(ResidualBlock):
    def __init__(self, in_channels, out_channels=None):
        super().__init__(in_channels, out_channels)
        if self.projected:
            del self.shortcut_bn

    def skip(self, x):
        return self.shortcut_conv(x) if self.projected else x


class _ShortcutBnUnused(ResidualBlock):
    def skip(self, x):
        return self.shortcut_conv(x) if self.projected else x


class _ShortcutRelu(ResidualBlock):
    def skip(self, x):
        return F.relu(super().skip(x)) if self.projected else x


class _Shortcut3x3(ResidualBlock):
    def __init__(self, in_channels, out_channels=None):
        super().__init__(in_channels, out_channels)
        if self.projected:
            self.shortcut_conv = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)


class _WidthInConv2(ResidualBlock):
    """conv1 keeps the input's width and conv2 changes it."""

    def __init__(self, in_channels, out_channels=None):
        super().__init__(in_channels, out_channels)
        out_channels = out_channels or in_channels
        self.conv1 = nn.Conv2d(in_channels, in_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv2 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)


class _SkipDroppedWhenWidening(ResidualBlock):
    def skip(self, x):
        return x if not self.projected else 0  # the shortcut's layers exist, unused


class _ReluBeforeAdd(ResidualBlock):
    def forward(self, x):
        return F.relu(self.branch(x)) + x


class _ReluTwice(ResidualBlock):
    def forward(self, x):
        return F.relu(F.relu(self.branch(x)) + x)


class _NoFinalRelu(ResidualBlock):
    def forward(self, x):
        return self.branch(x) + x


class _NoMiddleRelu(ResidualBlock):
    def forward(self, x):
        return F.relu(self.bn2(self.conv2(self.bn1(self.conv1(x)))) + x)


class _Bn2Unused(ResidualBlock):
    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.bn1(self.conv1(x)))) + x)


class _NoBatchNorm(nn.Module):
    def __init__(self, channels, out_channels=None):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)

    def forward(self, x):
        return F.relu(self.conv2(F.relu(self.conv1(x))) + x)


class _ConvBias(ResidualBlock):
    def __init__(self, channels, out_channels=None):
        super().__init__(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, padding=1)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1)


class _Sequential(nn.Module):
    """Right computation, other names (as StackGAN-Pytorch's ``block`` Sequential)."""

    def __init__(self, channels, out_channels=None):
        super().__init__()
        self.block = ResidualBlock(channels, out_channels)

    def forward(self, x):
        return self.block(x)


class _NoPadding(ResidualBlock):
    def __init__(self, channels, out_channels=None):
        super().__init__(channels)
        self.conv1 = nn.Conv2d(channels, channels, 3, bias=False)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=2, bias=False)


class _Detached(ResidualBlock):
    def forward(self, x):
        return super().forward(x).detach()


class _FixedChannels(ResidualBlock):
    def __init__(self, channels, out_channels=None):
        super().__init__(3)


WRONG_BLOCKS = {
    "no skip": (_NoSkip, "skip connection is missing"),
    "ReLU before the add": (_ReluBeforeAdd, "BEFORE the add"),
    "ReLU before and after the add": (_ReluTwice, "AND after"),
    "no final ReLU": (_NoFinalRelu, "final ReLU"),
    "no ReLU between the convs": (_NoMiddleRelu, "between the two convs"),
    "bn2 defined but unused": (_Bn2Unused, "bn2 is not applied"),
    "no BatchNorm": (_NoBatchNorm, "own BatchNorm"),
    "convs with bias": (_ConvBias, "bias=False"),
    "other attribute names": (_Sequential, "missing"),
    "wrong padding": (_NoPadding, None),
    "detached output": (_Detached, "gradients"),
    "channels ignored": (_FixedChannels, "could not load"),
    "an instance, not the class": (ResidualBlock(3), "class"),
    # the generalisation: a change of width through a projection shortcut
    "the lecture's block (one width only)": (_LecturesBlock, "out_channels"),
    "shortcut layers at the same width too": (_ShortcutAlways, "the skip is x itself"),
    "shortcut without BatchNorm": (_ShortcutNoBatchNorm, "own BatchNorm \\(shortcut_bn\\)"),
    "shortcut_bn defined but unused": (_ShortcutBnUnused, "shortcut_bn\\) is not applied"),
    "a ReLU on the shortcut": (_ShortcutRelu, "shortcut has a ReLU"),
    "a 3x3 shortcut": (_Shortcut3x3, "1x1 conv"),
    "conv2 changes the width, not conv1": (_WidthInConv2, "conv1 should be a 3x3 conv from 3 to 5"),
    "skip dropped when the width changes": (_SkipDroppedWhenWidening, "skip connection is missing"),
}


def test_reference_residual_block_passes(capsys):
    check("stackgan", "2", {"ResidualBlock": ResidualBlock})
    assert capsys.readouterr().out.strip() == get_exercise("stackgan", "2").passed_line()


def test_the_models_residual_block_is_refused_as_an_answer():
    rejects("2", "ResidualBlock", ModelResidualBlock, match="ganlab's own")
    # and it is not the answer anyway: the course's block has one width only
    with pytest.raises(CheckFailed, match="out_channels"):
        get_exercise("stackgan", "2").check(ModelResidualBlock)

    class Renamed(ModelResidualBlock):  # inheriting the answer is handing it in
        pass

    rejects("2", "ResidualBlock", Renamed, match="inherits it")


@pytest.mark.parametrize("mistake", WRONG_BLOCKS)
def test_residual_block_rejects(mistake):
    wrong, match = WRONG_BLOCKS[mistake]
    rejects("2", "ResidualBlock", wrong, match=match)


# --- Exercise 3: train_step (a Stage-I step) --------------------------------------------


def _step(
    *,
    detach_fake=True,
    detach_cond_d=True,
    detach_cond_g=True,
    kl_weight=2.0,
    kl_per_dim=True,
    kl_in_d=False,
    zero=True,
    fake_weight=0.5,
    g_first=False,
):
    """A Stage-I step with one thing changed at a time (the defaults are right)."""

    def kl_of(mu, logvar):
        kl = (0.5 * (logvar.exp() + mu.pow(2) - 1 - logvar)).sum(1).mean()
        return kl / mu.shape[1] if kl_per_dim else kl

    def g_update(D, opt_g, fake, mu, logvar):
        cond = mu.detach() if detach_cond_g else mu
        loss_g = F.softplus(-D(fake, cond)).mean() + kl_weight * kl_of(mu, logvar)
        if zero:
            opt_g.zero_grad()
        loss_g.backward(retain_graph=True)
        opt_g.step()
        return loss_g

    def step(G, D, opt_g, opt_d, x, t, z):
        fake, mu, logvar = G(t, z)
        if g_first:
            loss_g = g_update(D, opt_g, fake, mu, logvar)
        cond = mu.detach() if detach_cond_d else mu
        real_logits, wrong_logits = D(x, cond, wrong=True)
        fake_logits = D(fake.detach() if detach_fake else fake, cond)
        loss_d = (
            F.softplus(-real_logits).mean()
            + 0.5 * F.softplus(wrong_logits).mean()
            + fake_weight * F.softplus(fake_logits).mean()
        )
        if kl_in_d:
            loss_d = loss_d + kl_weight * kl_of(mu, logvar)
        if zero:
            opt_d.zero_grad()
        loss_d.backward(retain_graph=True)
        opt_d.step()
        if not g_first:
            loss_g = g_update(D, opt_g, fake, mu, logvar)
        return loss_d.item(), loss_g.item()

    return step


WRONG_STEPS = {
    "fakes not detached for D": (_step(detach_fake=False), "cut from G's graph"),
    "D's condition mu not detached": (_step(detach_cond_d=False), "cut from G's graph"),
    "G's condition mu not detached": (_step(detach_cond_g=False), "G's parameters"),
    "KL missing": (_step(kl_weight=0.0), "G's parameters"),
    "the paper's lambda = 1": (_step(kl_weight=1.0), "G's parameters"),
    "per-sample KL (not divided by C)": (_step(kl_per_dim=False), "G's parameters"),
    "KL added to D's loss too": (_step(kl_in_d=True), "cut from G's graph"),
    "gradients never cleared": (_step(zero=False), "left over"),
    "fake term at full weight": (_step(fake_weight=1.0), "discriminator's parameters"),
    "G updated before D": (_step(g_first=True), None),
}


def test_the_reference_pattern_passes(capsys):
    check("stackgan", "3", {"train_step": _step()})
    assert capsys.readouterr().out.strip() == get_exercise("stackgan", "3").passed_line()


def test_the_checks_own_reference_passes_the_logic_but_not_as_an_answer():
    get_exercise("stackgan", "3").check(stackgan_checks.reference_train_step)
    rejects("3", "train_step", stackgan_checks.reference_train_step, match="ganlab's own")


@pytest.mark.parametrize("mistake", WRONG_STEPS)
def test_train_step_rejects(mistake):
    wrong, match = WRONG_STEPS[mistake]
    rejects("3", "train_step", wrong, match=match)


def test_a_missing_name_is_reported():
    with pytest.raises(CheckFailed, match="not defined"):
        check("stackgan", "3", {})


# --- Exercise 4: reading the CA ablation -------------------------------------------------


def test_diversity_ratio_accepts_the_measured_value():
    want = stackgan_checks.measured_diversity_ratio()
    assert 1.05 < want < 1.3  # the shipped manifests: 59.99 / 53.58 pixels
    check("stackgan", "4", {"ca_diversity_ratio": round(want, 2)})


@pytest.mark.parametrize(
    "wrong",
    ["inverse", "difference", "judge features", "percent"],
)
def test_diversity_ratio_rejects_plausible_misreadings(wrong):
    from ganlab.chapters import stackgan as chapter
    from ganlab.weights import shipped

    a = chapter.load_generator(stage=1)[1]["manifest"]["metrics"]["diversity"]
    b = chapter.load_generator(shipped(chapter.SHIPPED_NO_CA))[1]["manifest"]["metrics"]
    b = b["diversity"]
    value = {
        "inverse": b["pixels"] / a["pixels"],
        "difference": a["pixels"] - b["pixels"],
        "judge features": a["judge_features"] / b["judge_features"],
        "percent": 100 * (a["pixels"] / b["pixels"] - 1),
    }[wrong]
    rejects("4", "ca_diversity_ratio", value, match="not within 0.05")
