"""Chapter 6's checks accept reference answers and reject plausible wrong ones.

The references are what the solution notebook's answer cells contain; the library's own
implementations (``ganlab.nn``, ``ganlab.models.stylegan``) must pass too. Every wrong answer
is a mistake a student (or a published port) could really make.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganlab.grading.checks.stylegan as stylegan_checks  # registers chapter "stylegan"
from ganlab.grading import CheckFailed, check, get_exercise
from ganlab.grading.registry import EXERCISES
from ganlab.models import stylegan as M
from ganlab.nn import NoiseInjection as LibraryNoise
from ganlab.nn.normalization import instance_norm


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def rejects(exercise_id: str, answers: dict, match: str | None = None):
    with pytest.raises(CheckFailed, match=match) as info:
        check("stylegan", exercise_id, answers)
    title = get_exercise("stylegan", exercise_id).title
    assert str(info.value).startswith(f"Exercise {exercise_id} ({title}): ")


def library_agrees_but_is_refused(exercise_id: str, answers: dict) -> None:
    """The check's own logic accepts the library's implementation (it agrees with it), but
    ``check`` refuses it as a student's answer: it is ganlab's, not the student's."""
    exercise = get_exercise("stylegan", exercise_id)
    exercise.check(*(answers[name] for name in exercise.names))
    rejects(exercise_id, answers, match="ganlab's own")


def test_registry_lists_five_exercises():
    exercises = EXERCISES["stylegan"]
    assert [e.id for e in exercises] == ["1", "2", "3", "4", "5"]
    assert [e.points for e in exercises] == [2] * 5
    assert all(e.hints for e in exercises)
    assert stylegan_checks.CHAPTER == "stylegan"


# --- Exercise 1: AdaIN ---------------------------------------------------------------------


def adain(x, y_s, y_b, eps=1e-8):
    mu = x.mean(dim=(2, 3), keepdim=True)
    var = (x - mu).pow(2).mean(dim=(2, 3), keepdim=True)
    return (1 + y_s)[:, :, None, None] * (x - mu) / torch.sqrt(var + eps) + y_b[:, :, None, None]


def library_adain(x, y_s, y_b, eps=1e-8):
    return (1 + y_s)[:, :, None, None] * instance_norm(x, eps) + y_b[:, :, None, None]


def _norm(x, axes, unbiased=False):
    return (x - x.mean(axes, keepdim=True)) / x.var(axes, keepdim=True, unbiased=unbiased).add(
        1e-8
    ).sqrt()


WRONG_ADAIN = {
    "y_s": (lambda x, s, b, eps=1e-8: s[..., None, None] * _norm(x, (2, 3)) + b[..., None, None],
            r"\(1 \+ y_s\)"),
    "layer norm": (
        lambda x, s, b, eps=1e-8: (1 + s)[..., None, None] * _norm(x, (1, 2, 3))
        + b[..., None, None], "layer norm"),
    "batch norm": (
        lambda x, s, b, eps=1e-8: (1 + s)[..., None, None] * _norm(x, (0, 2, 3))
        + b[..., None, None], "batch norm"),
    "unbiased": (
        lambda x, s, b, eps=1e-8: (1 + s)[..., None, None] * _norm(x, (2, 3), True)
        + b[..., None, None], "unbiased"),
    "swapped": (lambda x, s, b, eps=1e-8: adain(x, b, s), "swapped"),
}  # fmt: skip


def test_adain_passes_reference_and_library():
    check("stylegan", "1", {"adain": adain})
    check("stylegan", "1", {"adain": library_adain})


@pytest.mark.parametrize("wrong", WRONG_ADAIN, ids=str)
def test_adain_rejects(wrong):
    fn, match = WRONG_ADAIN[wrong]
    rejects("1", {"adain": fn}, match)


# --- Exercise 2: noise injection -----------------------------------------------------------


class NoiseInjection(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(channels))

    def forward(self, x, noise=None):
        if noise is None:
            b, _, h, w = x.shape
            noise = torch.randn(b, 1, h, w, device=x.device, dtype=x.dtype)
        return x + self.weight.view(1, -1, 1, 1) * noise


def _variant(forward=None, weight=None):
    class Wrong(NoiseInjection):
        def __init__(self, channels):
            super().__init__(channels)
            if weight is not None:
                self.weight = nn.Parameter(weight(channels))

    if forward is not None:
        Wrong.forward = forward
    return Wrong


def _draw(shape):
    return lambda self, x, noise=None: (
        x + self.weight.view(1, -1, 1, 1) * (torch.randn(shape(x)) if noise is None else noise)
    )


WRONG_NOISE = {
    "no scale": (_variant(lambda self, x, noise=None: x + (
        torch.randn(x.shape[0], 1, *x.shape[2:]) if noise is None else noise)),
        "learned scale is missing"),
    "one scale": (_variant(weight=lambda c: torch.zeros(1)), "PER CHANNEL"),
    "init ones": (_variant(weight=lambda c: torch.ones(c)), "start at 0"),
    "shared across pixels": (_variant(_draw(lambda x: (x.shape[0], 1, 1, 1))),
                             "same at every pixel"),
    "per channel": (_variant(_draw(lambda x: x.shape)), "each channel got its own noise"),
    "shared across the batch": (_variant(_draw(lambda x: (1, 1, *x.shape[2:]))),
                                "every sample got the same"),
    "uniform": (_variant(lambda self, x, noise=None: x + self.weight.view(1, -1, 1, 1) * (
        torch.rand(x.shape[0], 1, *x.shape[2:]) if noise is None else noise)), "torch.randn"),
}  # fmt: skip


def test_noise_injection_passes_reference_and_library():
    check("stylegan", "2", {"NoiseInjection": NoiseInjection})
    library_agrees_but_is_refused("2", {"NoiseInjection": LibraryNoise})


@pytest.mark.parametrize("wrong", WRONG_NOISE, ids=str)
def test_noise_injection_rejects(wrong):
    cls, match = WRONG_NOISE[wrong]
    rejects("2", {"NoiseInjection": cls}, match)


# --- Exercise 3: truncation ----------------------------------------------------------------


def truncate(ws, w_avg, psi, cutoff):
    out = ws.clone()
    out[:, :cutoff] = torch.lerp(w_avg, ws[:, :cutoff], psi)
    return out


def _in_place(ws, w_avg, psi, cutoff):
    ws[:, :cutoff] = w_avg + psi * (ws[:, :cutoff] - w_avg)
    return ws


WRONG_TRUNCATE = {
    "toward zero": (lambda ws, a, psi, k: torch.cat([psi * ws[:, :k], ws[:, k:]], 1),
                    "toward 0"),
    "every layer": (lambda ws, a, psi, k: a + psi * (ws - a), "every layer"),
    "the other layers": (lambda ws, a, psi, k: torch.cat([ws[:, :k], a + psi * (ws[:, k:] - a)],
                                                         1), "from the cutoff on"),
    "1 - psi": (lambda ws, a, psi, k: truncate(ws, a, 1 - psi, k), "swapped"),
    "cutoff inclusive": (lambda ws, a, psi, k: truncate(ws, a, psi, k + 1), "itself"),
    "in place": (_in_place, "in place"),
}  # fmt: skip


def test_truncate_passes_reference_and_library():
    check("stylegan", "3", {"truncate": truncate})
    library_agrees_but_is_refused("3", {"truncate": M.truncate})


@pytest.mark.parametrize("wrong", WRONG_TRUNCATE, ids=str)
def test_truncate_rejects(wrong):
    fn, match = WRONG_TRUNCATE[wrong]
    rejects("3", {"truncate": fn}, match)


# --- Exercise 4: style mixing --------------------------------------------------------------


def mix_styles(ws1, ws2, crossover):
    return torch.cat([ws1[:, :crossover], ws2[:, crossover:]], dim=1)


WRONG_MIX = {
    "reversed": (lambda a, b, k: mix_styles(b, a, k), "wrong sources"),
    "inclusive": (lambda a, b, k: mix_styles(a, b, min(k + 1, a.shape[1])), "off by one"),
    "one short": (lambda a, b, k: mix_styles(a, b, max(k - 1, 0)), "off by one"),
}


def test_mix_styles_passes_reference_and_library():
    check("stylegan", "4", {"mix_styles": mix_styles})
    library_agrees_but_is_refused("4", {"mix_styles": M.mix_styles})


@pytest.mark.parametrize("wrong", WRONG_MIX, ids=str)
def test_mix_styles_rejects(wrong):
    fn, match = WRONG_MIX[wrong]
    rejects("4", {"mix_styles": fn}, match)


# --- Exercise 5: R1 ------------------------------------------------------------------------


def d_loss_r1(D, reals, fakes, gamma):
    x = reals.detach().requires_grad_(True)
    real_scores = D(x)
    (grad,) = torch.autograd.grad(real_scores.sum(), x, create_graph=True)
    r1 = grad.pow(2).flatten(1).sum(1).mean()
    loss = F.softplus(D(fakes.detach())).mean() + F.softplus(-real_scores).mean()
    return loss + 0.5 * gamma * r1


def _r1_variant(on="reals", graph=True, factor=0.5, reduce="mean", square=True, signs=1):
    def fn(D, reals, fakes, gamma):
        x = (reals if on == "reals" else fakes).detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(D(x).sum(), x, create_graph=graph)
        norms = grad.pow(2).flatten(1).sum(1)
        norms = norms if square else norms.sqrt()
        r1 = norms.mean() if reduce == "mean" else norms.sum()
        loss = F.softplus(signs * D(fakes)).mean() + F.softplus(-signs * D(reals)).mean()
        return loss + factor * gamma * r1

    return fn


WRONG_R1 = {
    "on fakes": (_r1_variant(on="fakes"), "FAKES"),
    "no create_graph": (_r1_variant(graph=False), "create_graph=True"),
    "gamma not halved": (_r1_variant(factor=1.0), "gamma / 2"),
    "summed": (_r1_variant(reduce="sum"), "summed over the batch"),
    "not squared": (_r1_variant(square=False), "not squared"),
    "no penalty": (_r1_variant(factor=0.0), "missing"),
    "signs": (_r1_variant(signs=-1), "flipped"),
}


def test_d_loss_r1_passes_reference():
    """(The library's ``discriminator_loss_r1`` runs D in float32 on purpose; the check is in
    float64, so it compares the reference only.)"""
    check("stylegan", "5", {"d_loss_r1": d_loss_r1})


@pytest.mark.parametrize("wrong", WRONG_R1, ids=str)
def test_d_loss_r1_rejects(wrong):
    fn, match = WRONG_R1[wrong]
    rejects("5", {"d_loss_r1": fn}, match)


# --- unanswered ----------------------------------------------------------------------------


def _todo(*args, **kwargs):
    raise NotImplementedError("Exercise: write this")


class _TodoModule(nn.Module):
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("Exercise: write this")


@pytest.mark.parametrize("exercise", EXERCISES["stylegan"], ids=lambda e: e.id)
def test_unanswered_exercises_raise_not_implemented(exercise):
    answers = {name: (_TodoModule if name[0].isupper() else _todo) for name in exercise.names}
    with pytest.raises(NotImplementedError):
        check("stylegan", exercise.id, answers)
