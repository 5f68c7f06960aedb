"""Chapter 5's checks accept reference answers and reject plausible wrong ones.

The references are what the solution notebook's answer cells contain; the library's own
implementations (``ganlab.nn``, ``ganlab.models.pggan``) must pass too. Every wrong answer is
a mistake a student (or a published port) could really make.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganlab.grading.checks.pggan as pggan_checks  # registers chapter "pggan"
from ganlab.grading import CheckFailed, check, get_exercise
from ganlab.grading.registry import EXERCISES
from ganlab.models import pggan as M
from ganlab.nn import EqualizedConv2d as LibraryConv
from ganlab.nn import minibatch_stddev as library_mbstd
from ganlab.nn import pixel_norm as library_pixel_norm

SQRT2 = math.sqrt(2)


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def rejects(exercise_id: str, answers: dict, match: str | None = None, error=CheckFailed):
    """Assert that ``check`` refuses ``answers`` (with ``error``, message matching ``match``)."""
    with pytest.raises(error, match=match) as info:
        check("pggan", exercise_id, answers)
    print(f"rejected: {info.value}")
    if error is CheckFailed:
        title = get_exercise("pggan", exercise_id).title
        assert str(info.value).startswith(f"Exercise {exercise_id} ({title}): ")


def passes(exercise_id: str, answers: dict, capsys=None) -> None:
    check("pggan", exercise_id, answers)


def library_agrees_but_is_refused(exercise_id: str, answers: dict) -> None:
    """The check's own logic accepts the library's implementation (it agrees with it), but
    ``check`` refuses it as a student's answer: it is ganlab's, not the student's."""
    exercise = get_exercise("pggan", exercise_id)
    exercise.check(*(answers[name] for name in exercise.names))
    rejects(exercise_id, answers, match="ganlab's own")


def test_registry_lists_six_exercises():
    exercises = EXERCISES["pggan"]
    assert [e.id for e in exercises] == ["1", "2", "3", "4", "5", "6"]
    assert [e.points for e in exercises] == [2] * 6
    assert get_exercise("pggan", "4").names == ("fade_in", "fade_reals")
    assert pggan_checks.CHAPTER == "pggan"


# --- Exercise 1: EqualizedConv2d ---------------------------------------------------------


class EqualizedConv2d(nn.Module):
    """Reference answer."""

    def __init__(self, in_channels, out_channels, kernel_size, gain=SQRT2):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.scale = gain / math.sqrt(in_channels * kernel_size * kernel_size)
        self.padding = kernel_size // 2

    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias, padding=self.padding)


class ScaleAtInit(EqualizedConv2d):
    """He init: the constant baked into the weights, none at run time."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        with torch.no_grad():
            self.weight.mul_(self.scale)
        self.scale = 1.0


class NoScaleAtRunTime(EqualizedConv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight, self.bias, padding=self.padding)


class FanOut(EqualizedConv2d):
    def __init__(self, i, o, k, gain=SQRT2):
        super().__init__(i, o, k, gain)
        self.scale = gain / math.sqrt(o * k * k)


class NoPadding(EqualizedConv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight * self.scale, self.bias)


class ThroughData(EqualizedConv2d):
    def forward(self, x):
        return F.conv2d(x, self.weight.data * self.scale, self.bias, padding=self.padding)


class IgnoresGain(EqualizedConv2d):
    def __init__(self, i, o, k, gain=SQRT2):
        super().__init__(i, o, k, math.sqrt(2))


def test_equalized_conv_passes_reference_and_library():
    passes("1", {"EqualizedConv2d": EqualizedConv2d})
    library_agrees_but_is_refused("1", {"EqualizedConv2d": LibraryConv})


@pytest.mark.parametrize(
    "wrong, match",
    [
        (ScaleAtInit, "scale was applied to the INITIAL weights"),
        (NoScaleAtRunTime, "does not apply the run-time scale"),
        (FanOut, "fan_in counts the OUTPUT channels"),
        (NoPadding, "pad by kernel_size // 2"),
        (ThroughData, "gradient does not reach the stored weight"),
        (IgnoresGain, "gain 1"),
        (nn.Conv2d, "N\\(0, 1\\)|INITIAL"),
    ],
)
def test_equalized_conv_rejects(wrong, match):
    rejects("1", {"EqualizedConv2d": wrong}, match)


# --- Exercise 2: pixel_norm ---------------------------------------------------------------


def pixel_norm(x, eps=1e-8):
    """Reference answer."""
    return x / torch.sqrt(torch.mean(x**2, dim=1, keepdim=True) + eps)


def test_pixel_norm_passes_reference_and_library():
    passes("2", {"pixel_norm": pixel_norm})
    library_agrees_but_is_refused("2", {"pixel_norm": library_pixel_norm})


@pytest.mark.parametrize(
    "wrong, match",
    [
        (lambda x, eps=1e-8: x / torch.sqrt((x**2).mean(-1, keepdim=True) + eps), "last axis"),
        (lambda x, eps=1e-8: x / torch.sqrt((x**2).mean(0, keepdim=True) + eps), "batch"),
        (lambda x, eps=1e-8: F.normalize(x, dim=1), "L2 normalisation"),
        (lambda x, eps=1e-8: x / torch.sqrt((x**2).sum(1, keepdim=True) + eps), "a sum over"),
        (lambda x, eps=1e-8: x / (x.pow(2).mean(1, keepdim=True).sqrt() + eps), "outside"),
        (lambda x, eps=1e-8: x / x.pow(2).mean(1, keepdim=True), "differ"),
    ],
)
def test_pixel_norm_rejects(wrong, match):
    rejects("2", {"pixel_norm": wrong}, match)


# --- Exercise 3: minibatch_stddev ---------------------------------------------------------


def minibatch_stddev(x, group_size=4):
    """Reference answer."""
    n, c, h, w = x.shape
    g = min(group_size, n)
    y = x.reshape(g, n // g, c, h, w)  # sample i is in group i % (n // g)
    y = (y - y.mean(dim=0)).pow(2).mean(dim=0)  # biased variance over each group
    y = (y + 1e-8).sqrt().mean(dim=(1, 2, 3))  # (n // g,)
    y = y.repeat(g).view(n, 1, 1, 1).expand(n, 1, h, w)
    return torch.cat([x, y], dim=1)


def _no_groups(x, group_size=4):
    s = x.std(0, unbiased=False).mean()
    return torch.cat([x, s.expand(x.shape[0], 1, *x.shape[2:])], 1)


def _over_channels(x, group_size=4):
    s = x.std(1, unbiased=False, keepdim=True).mean((2, 3), keepdim=True)
    return torch.cat([x, s.expand(-1, 1, *x.shape[2:])], 1)


def _unbiased(x, group_size=4):
    n, c, h, w = x.shape
    g = min(group_size, n)
    s = x.reshape(g, n // g, c, h, w).std(0).mean((1, 2, 3)).repeat(g)
    return torch.cat([x, s[:, None, None, None].expand(n, 1, h, w)], 1)


def _consecutive(x, group_size=4):
    n, c, h, w = x.shape
    g = min(group_size, n)
    s = x.reshape(n // g, g, c, h, w).std(1, unbiased=False).mean((1, 2, 3))
    return torch.cat([x, s.repeat_interleave(g)[:, None, None, None].expand(n, 1, h, w)], 1)


def _channel_first(x, group_size=4):
    out = minibatch_stddev(x, group_size)
    return torch.cat([out[:, -1:], out[:, :-1]], 1)


def test_minibatch_stddev_passes_reference_and_library():
    passes("3", {"minibatch_stddev": minibatch_stddev})
    library_agrees_but_is_refused("3", {"minibatch_stddev": library_mbstd})


@pytest.mark.parametrize(
    "wrong, match",
    [
        (_no_groups, "whole minibatch"),
        (_over_channels, "CHANNELS of each sample"),
        (_unbiased, "unbiased"),
        (_consecutive, "consecutive samples"),
        (_channel_first, "first C channels"),
        (lambda x, group_size=4: x, "shape"),
    ],
)
def test_minibatch_stddev_rejects(wrong, match):
    rejects("3", {"minibatch_stddev": wrong}, match)


# --- Exercise 4: fade_in, fade_reals -------------------------------------------------------


def fade_in(old_rgb, new_rgb, alpha):
    """Reference answer."""
    up = F.interpolate(old_rgb, scale_factor=2, mode="nearest")
    return (1 - alpha) * up + alpha * new_rgb


def fade_reals(x, alpha):
    """Reference answer."""
    low = F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="nearest")
    return torch.lerp(low, x, alpha)


def _library_fade_in(old, new, alpha):
    return M._lerp(M.upsample(old), new, alpha)


def test_fade_in_passes_reference_and_library():
    passes("4", {"fade_in": fade_in, "fade_reals": fade_reals})
    library_agrees_but_is_refused("4", {"fade_in": _library_fade_in, "fade_reals": M.fade_reals})


@pytest.mark.parametrize(
    "answers, match",
    [
        ({"fade_in": lambda o, n, a: fade_in(o, n, 1 - a)}, "alpha is reversed"),
        ({"fade_reals": lambda x, a: fade_reals(x, 1 - a)}, "alpha is reversed"),
        (
            {
                "fade_in": lambda o, n, a: (
                    (1 - a) * F.interpolate(o, scale_factor=2, mode="bilinear") + a * n
                )
            },
            "bilinear",
        ),  # fmt: skip
        ({"fade_reals": lambda x, a: x}, "returned unchanged"),
        (
            {
                "fade_reals": lambda x, a: torch.lerp(
                    F.interpolate(F.avg_pool2d(x, 2), scale_factor=2, mode="bilinear"), x, a
                )
            },
            "not replicated",
        ),  # fmt: skip
        (
            {
                "fade_reals": lambda x, a: torch.lerp(
                    F.interpolate(F.max_pool2d(x, 2), scale_factor=2), x, a
                )
            },
            "differ",
        ),  # fmt: skip
    ],
)
def test_fade_in_rejects(answers, match):
    rejects("4", {"fade_in": fade_in, "fade_reals": fade_reals, **answers}, match)


# --- Exercise 5: critic_loss ----------------------------------------------------------------


def critic_loss(D, reals, fakes, eps, gp_weight=10.0, drift_weight=0.001):
    """Reference answer."""
    fakes = fakes.detach()
    real_scores, fake_scores = D(reals), D(fakes)
    x_hat = (reals + eps * (fakes - reals)).detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    drift = real_scores.pow(2).mean()
    return fake_scores.mean() - real_scores.mean() + gp_weight * gp + drift_weight * drift


def test_critic_loss_passes_reference():
    passes("5", {"critic_loss": critic_loss})


def _mix(D, reals, fakes, eps):
    fakes = fakes.detach()
    x_hat = (eps * reals + (1 - eps) * fakes).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    r = D(reals)
    return D(fakes).mean() - r.mean() + 10 * gp + 0.001 * r.pow(2).mean()


def _no_create_graph(D, reals, fakes, eps):
    fakes = fakes.detach()
    x_hat = (reals + eps * (fakes - reals)).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat)
    gp = (grad.flatten(1).norm(dim=1) - 1).pow(2).mean()
    r = D(reals)
    return D(fakes).mean() - r.mean() + 10 * gp + 0.001 * r.pow(2).mean()


def _no_drift(D, reals, fakes, eps):
    return critic_loss(D, reals, fakes, eps, drift_weight=0.0)


def _squared_norm(D, reals, fakes, eps):
    x_hat = (reals + eps * (fakes - reals)).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x_hat).sum(), x_hat, create_graph=True)
    r = D(reals)
    return (
        D(fakes).mean()
        - r.mean()
        + 10 * grad.pow(2).flatten(1).sum(1).mean()
        + 0.001 * (r.pow(2).mean())
    )


def _flipped(D, reals, fakes, eps):
    loss = critic_loss(D, reals, fakes, eps)
    return loss - 2 * (D(fakes).mean() - D(reals).mean())


def _per_pixel_eps(D, reals, fakes, eps):
    gen = torch.Generator().manual_seed(0)
    return critic_loss(D, reals, fakes, torch.rand(reals.shape, generator=gen, dtype=reals.dtype))


@pytest.mark.parametrize(
    "wrong, match",
    [
        (_mix, "eps \\* real \\+ \\(1 - eps\\) \\* fake"),
        (_no_create_graph, "create_graph=True"),
        (_no_drift, "drift term 0.001"),
        (_squared_norm, "squared gradient norm"),
        (_flipped, "sign is flipped"),
        (_per_pixel_eps, "differ"),
        (lambda D, r, f, e: critic_loss(D, r, f, e).detach(), "detached"),
    ],
)
def test_critic_loss_rejects(wrong, match):
    rejects("5", {"critic_loss": wrong}, match)


# --- Exercise 6: images_before ---------------------------------------------------------------


def images_before(level, phase_images):
    """Reference answer: stabilise 4x4, then fade in and stabilise levels 1 .. level - 1."""
    return phase_images + (level - 1) * 2 * phase_images


def test_images_before_passes_the_count():
    passes("6", {"images_before": images_before})
    assert images_before(8, 600_000) == 9_000_000  # the official default, 1024 px


@pytest.mark.parametrize(
    "wrong, match",
    [
        (lambda k, p: images_before(k + 1, p), "one level too many"),
        (lambda k, p: images_before(k - 1, p), "one level early"),
        (lambda k, p: images_before(k, p) + p, "one phase too many"),
        (lambda k, p: 2 * k * p, "one phase too many"),
        (lambda k, p: images_before(k, p) // 1000, "kimg"),
        (lambda k, p: 9_000_000, "expected 4000000"),
        (lambda k, p: str(images_before(k, p)), "should return a number"),
    ],
)
def test_images_before_rejects(wrong, match):
    rejects("6", {"images_before": wrong}, match)


# --- every check: an unanswered exercise fails with NotImplementedError only -------------


def _todo(*args, **kwargs):
    raise NotImplementedError("Exercise: write this")


class _TodoModule(nn.Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("Exercise: write this")


@pytest.mark.parametrize("exercise", EXERCISES["pggan"], ids=lambda e: e.id)
def test_unanswered_exercises_raise_not_implemented(exercise):
    answers = {name: (_TodoModule if name[0].isupper() else _todo) for name in exercise.names}
    with pytest.raises(NotImplementedError):
        check("pggan", exercise.id, answers)
