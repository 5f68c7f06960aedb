"""Chapter 2's checks accept a reference solution and reject plausible wrong answers.

The references below are written here, independently of the checks' goldens; every wrong
answer is a mistake a student could really make.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ganlab.grading.checks.gan_int_cls  # noqa: F401  (registers chapter "gan-int-cls")
from ganlab.grading import CheckFailed, check, get_exercise
from ganlab.grading.registry import EXERCISES

CHAPTER = "gan-int-cls"


def _bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


# --- references -------------------------------------------------------------------------


def matching_aware_d_loss(real_logits, wrong_logits, fake_logits):
    return _bce(real_logits, 1.0) + 0.5 * _bce(wrong_logits, 0.0) + 0.5 * _bce(fake_logits, 0.0)


def interpolate_text(t1, t2, beta=0.5):
    return beta * t1 + (1 - beta) * t2


def replicate_text(features, text):
    maps = text[:, :, None, None].expand(-1, -1, *features.shape[2:])
    return torch.cat([features, maps], dim=1)


REFERENCE = {
    "matching_aware_d_loss": matching_aware_d_loss,
    "interpolate_text": interpolate_text,
    "replicate_text": replicate_text,
}


def test_registry_lists_five_exercises_worth_nine_points():
    exercises = EXERCISES[CHAPTER]
    assert [e.id for e in exercises] == ["1", "2", "3", "4", "5"]
    assert [e.points for e in exercises] == [2, 1, 2, 3, 1]
    assert [e.names for e in exercises] == [
        ("matching_aware_d_loss",),
        ("interpolate_text",),
        ("replicate_text",),
        ("train_step",),
        ("alignment_above_chance",),
    ]
    assert all(e.hints for e in exercises)


@pytest.mark.parametrize("exercise_id", ["1", "2", "3"])
def test_reference_solution_passes(exercise_id, capsys):
    check(CHAPTER, exercise_id, REFERENCE)
    assert capsys.readouterr().out.strip() == get_exercise(CHAPTER, exercise_id).passed_line()


def test_other_correct_answers_pass(capsys):
    # Equivalent formulations must pass too: softplus, lerp, repeat.
    def d_loss_softplus(r, w, f):
        return F.softplus(-r).mean() + (F.softplus(w).mean() + F.softplus(f).mean()) / 2

    def lerp(t1, t2, beta=0.5):
        return torch.lerp(t2, t1, beta)

    def repeat(features, text):
        return torch.cat([features, text[..., None, None].repeat(1, 1, *features.shape[2:])], 1)

    check(CHAPTER, "1", {"matching_aware_d_loss": d_loss_softplus})
    check(CHAPTER, "2", {"interpolate_text": lerp})
    check(CHAPTER, "3", {"replicate_text": repeat})
    assert capsys.readouterr().out.count("passed") == 3


def rejects(exercise_id: str, name: str, wrong, match: str | None = None, error=CheckFailed):
    """Assert that ``check`` refuses ``wrong`` (with ``error``, message matching ``match``)."""
    with pytest.raises(error, match=match) as info:
        check(CHAPTER, exercise_id, {name: wrong})
    print(f"rejected: {info.value}")  # shown with pytest -s, to read the messages
    if error is CheckFailed:
        title = get_exercise(CHAPTER, exercise_id).title
        assert str(info.value).startswith(f"Exercise {exercise_id} ({title}): ")


def test_undefined_name_is_reported():
    with pytest.raises(CheckFailed, match="`replicate_text` is not defined"):
        check(CHAPTER, "3", {})


# --- Exercise 1: matching_aware_d_loss ---------------------------------------------------

WRONG_D_LOSS = {
    "no wrong term (plain conditional GAN)": lambda r, w, f: _bce(r, 1.0) + _bce(f, 0.0),
    "no wrong term, fake still halved": lambda r, w, f: _bce(r, 1.0) + 0.5 * _bce(f, 0.0),
    "weights 1 instead of 0.5": lambda r, w, f: _bce(r, 1.0) + _bce(w, 0.0) + _bce(f, 0.0),
    "wrong pairs labelled real": lambda r, w, f: (
        _bce(r, 1.0) + 0.5 * _bce(w, 1.0) + 0.5 * _bce(f, 0.0)
    ),
    "sigmoid applied twice": lambda r, w, f: matching_aware_d_loss(
        torch.sigmoid(r), torch.sigmoid(w), torch.sigmoid(f)
    ),
    "sigmoid then F.binary_cross_entropy": lambda r, w, f: (
        F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
        + 0.5 * F.binary_cross_entropy(torch.sigmoid(w), torch.zeros_like(w))
        + 0.5 * F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f))
    ),
    "sigmoid then log": lambda r, w, f: (
        -(
            torch.log(torch.sigmoid(r)).mean()
            + 0.5 * torch.log(1 - torch.sigmoid(w)).mean()
            + 0.5 * torch.log(1 - torch.sigmoid(f)).mean()
        )
    ),
    "sums instead of means": lambda r, w, f: (
        F.softplus(-r).sum() + 0.5 * F.softplus(w).sum() + 0.5 * F.softplus(f).sum()
    ),
    "one weighted mean over the concatenation": lambda r, w, f: F.binary_cross_entropy_with_logits(
        torch.cat([r, w, f]),
        torch.cat([torch.ones_like(r), torch.zeros_like(w), torch.zeros_like(f)]),
        weight=torch.cat([torch.ones_like(r), torch.full_like(w, 0.5), torch.full_like(f, 0.5)]),
    ),
    "sums divided by the real batch size": lambda r, w, f: (
        (F.softplus(-r).sum() + 0.5 * F.softplus(w).sum() + 0.5 * F.softplus(f).sum()) / len(r)
    ),
    "per-example losses, not reduced": lambda r, w, f: (
        F.softplus(-r) + 0.5 * F.softplus(w) + 0.5 * F.softplus(f)
    ),
    "detached": lambda r, w, f: matching_aware_d_loss(r, w, f).detach(),
    "sign flipped": lambda r, w, f: -matching_aware_d_loss(r, w, f),
    "averaged over the three terms": lambda r, w, f: (
        (_bce(r, 1.0) + _bce(w, 0.0) + _bce(f, 0.0)) / 3
    ),
}


@pytest.mark.parametrize("mistake", WRONG_D_LOSS)
def test_matching_aware_d_loss_rejects(mistake):
    rejects("1", "matching_aware_d_loss", WRONG_D_LOSS[mistake])


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("no wrong term (plain conditional GAN)", "plain conditional GAN"),
        ("weights 1 instead of 0.5", "halves them"),
        ("wrong pairs labelled real", "NEGATIVE"),
        ("sigmoid applied twice", "already logits"),
        ("sums instead of means", "sums over the batch"),
        ("sums divided by the real batch size", "its own batch"),
        ("per-example losses, not reduced", "scalar"),
        ("detached", "detached"),
        ("sigmoid then log", "from the logits themselves"),
        ("sigmoid then F.binary_cross_entropy", "differ"),
    ],
)
def test_matching_aware_d_loss_diagnoses(mistake, diagnosis):
    rejects("1", "matching_aware_d_loss", WRONG_D_LOSS[mistake], match=diagnosis)


# --- Exercise 2: interpolate_text --------------------------------------------------------


def _in_place(t1, t2, beta=0.5):
    return t1.mul_(beta).add_((1 - beta) * t2)


WRONG_INTERP = {
    "detached": lambda t1, t2, beta=0.5: (beta * t1 + (1 - beta) * t2).detach(),
    "beta on the wrong side": lambda t1, t2, beta=0.5: (1 - beta) * t1 + beta * t2,
    "torch.lerp(t1, t2, beta)": lambda t1, t2, beta=0.5: torch.lerp(t1, t2, beta),
    "normalised": lambda t1, t2, beta=0.5: F.normalize(beta * t1 + (1 - beta) * t2, dim=-1),
    "inputs normalised first": lambda t1, t2, beta=0.5: (
        beta * F.normalize(t1, dim=-1) + (1 - beta) * F.normalize(t2, dim=-1)
    ),
    "beta ignored": lambda t1, t2, beta=0.5: (t1 + t2) / 2,
    "extra axis": lambda t1, t2, beta=0.5: (beta * t1 + (1 - beta) * t2)[:, None],
    "stacked instead of mixed": lambda t1, t2, beta=0.5: torch.stack([beta * t1, (1 - beta) * t2]),
    "mean over the batch": lambda t1, t2, beta=0.5: (beta * t1 + (1 - beta) * t2).mean(0),
    "in place": _in_place,
    "always float32": lambda t1, t2, beta=0.5: (beta * t1 + (1 - beta) * t2).float(),
    "through numpy": lambda t1, t2, beta=0.5: torch.from_numpy(
        beta * t1.detach().numpy() + (1 - beta) * t2.detach().numpy()
    ),
}


@pytest.mark.parametrize("mistake", WRONG_INTERP)
def test_interpolate_text_rejects(mistake):
    rejects("2", "interpolate_text", WRONG_INTERP[mistake])


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("beta on the wrong side", "beta weighs t2"),
        ("torch.lerp(t1, t2, beta)", "lerp"),
        ("normalised", "normalised"),
        ("beta ignored", "beta is ignored"),
        ("extra axis", r"shape \(5, 8\)"),
        ("in place", "in place"),
        ("always float32", "dtype"),
        ("detached", "detached"),
    ],
)
def test_interpolate_text_diagnoses(mistake, diagnosis):
    rejects("2", "interpolate_text", WRONG_INTERP[mistake], match=diagnosis)


# --- Exercise 3: replicate_text ----------------------------------------------------------


def _b_p(text):
    return text.shape[0], text.shape[1]


def _unsqueeze_in_place(features, text):
    text.unsqueeze_(-1).unsqueeze_(-1)  # changes the caller's tensor
    return torch.cat([features, text.expand(-1, -1, 4, 4)], 1)


WRONG_REPLICATE = {
    "spatial size hard-coded to 4x4": lambda features, text: torch.cat(
        [features, text[:, :, None, None].expand(-1, -1, 4, 4)], 1
    ),
    "concatenated on the batch axis": lambda features, text: torch.cat(
        [features, text[:, :, None, None].expand(-1, -1, 4, 4)], 0
    ),
    "text first": lambda features, text: torch.cat(
        [text[:, :, None, None].expand(-1, -1, 4, 4), features], 1
    ),
    "repeat then view (channels scrambled)": lambda features, text: torch.cat(
        [features, text.repeat(1, 16).view(*_b_p(text), 4, 4)], 1
    ),
    "channels-last then view": lambda features, text: torch.cat(
        [features, text[:, None, None, :].expand(-1, 4, 4, -1).reshape(*_b_p(text), 4, 4)], 1
    ),
    "repeat along the batch then view (samples mixed)": lambda features, text: torch.cat(
        [features, text.repeat(16, 1).view(*_b_p(text), 4, 4)], 1
    ),
    "zero-padded instead of replicated": lambda features, text: torch.cat(
        [features, F.pad(text[:, :, None, None], (0, 3, 0, 3))], 1
    ),
    "text detached": lambda features, text: replicate_text(features, text.detach()),
    "features detached": lambda features, text: replicate_text(features.detach(), text),
    "unsqueeze_ on the input": _unsqueeze_in_place,
    "always float32": lambda features, text: replicate_text(features, text).float(),
    "added instead of concatenated": lambda features, text: (
        features + text.mean(1)[:, None, None, None]
    ),
}


@pytest.mark.parametrize("mistake", WRONG_REPLICATE)
def test_replicate_text_rejects(mistake):
    # a size written into the answer fails at the third size, inside torch.cat
    error = RuntimeError if mistake == "spatial size hard-coded to 4x4" else CheckFailed
    rejects("3", "replicate_text", WRONG_REPLICATE[mistake], error=error)


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("concatenated on the batch axis", "extra channels"),
        ("text first", "text comes first"),
        ("repeat then view (channels scrambled)", "scrambled"),
        ("channels-last then view", "scrambled"),
        ("repeat along the batch then view (samples mixed)", "scrambled|wrong sample"),
        ("text detached", "text.*text projection"),
        ("features detached", "features.*image layers"),
        ("unsqueeze_ on the input", "in place"),
    ],
)
def test_replicate_text_diagnoses(mistake, diagnosis):
    rejects("3", "replicate_text", WRONG_REPLICATE[mistake], match=diagnosis)


def test_weighted_concatenation_is_named():
    rejects(
        "1",
        "matching_aware_d_loss",
        WRONG_D_LOSS["one weighted mean over the concatenation"],
        match="concatenated",
    )


# --- Exercise 4: train_step ----------------------------------------------------------


def _step(
    *,
    detach=True,
    int_weight=0.5,
    int_in_d=False,
    roll=1,
    int_text_for_d="int",
    z_int="own",
    zero=True,
    wrong_target=0.0,
):
    """A GAN-INT-CLS step with one thing changed at a time (the defaults are right)."""

    def step(G, D, opt_g, opt_d, x, x_wrong, t, z, z_int_):
        fake = G(z, t)
        t_int = 0.5 * t + 0.5 * t.roll(roll, 0)
        codes = z_int_ if z_int == "own" else z
        loss_d = (
            _bce(D(x, t), 1.0)
            + 0.5 * _bce(D(x_wrong, t), wrong_target)
            + 0.5 * _bce(D(fake.detach() if detach else fake, t), 0.0)
        )
        if int_in_d:
            loss_d = loss_d + 0.5 * _bce(D(G(codes, t_int).detach(), t_int), 0.0)
        if zero:
            opt_d.zero_grad()
        loss_d.backward(retain_graph=True)
        opt_d.step()
        judged_with = t_int if int_text_for_d == "int" else t
        loss_g = _bce(D(fake, t), 1.0)
        if int_weight:
            loss_g = loss_g + int_weight * _bce(D(G(codes, t_int), judged_with), 1.0)
        if zero:
            opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_d.item(), loss_g.item()

    return step


WRONG_STEPS = {
    "fakes not detached for D": (_step(detach=False), "cut from G's graph"),
    "no INT term": (_step(int_weight=0.0), "G's parameters"),
    "INT at weight 1": (_step(int_weight=1.0), "G's parameters"),
    "D trained on the interpolations too": (_step(int_in_d=True), "discriminator's"),
    "interpolated with the next text, not the previous": (_step(roll=-1), "G's parameters"),
    "interpolations judged with the right text": (_step(int_text_for_d="right"), "G's"),
    "the same codes reused for INT": (_step(z_int="same"), "G's parameters"),
    "gradients never cleared": (_step(zero=False), "left over"),
    "wrong pairs labelled real": (_step(wrong_target=1.0), "discriminator's"),
}


def test_train_step_reference_pattern_passes(capsys):
    check(CHAPTER, "4", {"train_step": _step()})
    assert capsys.readouterr().out.strip() == get_exercise(CHAPTER, "4").passed_line()


@pytest.mark.parametrize("mistake", WRONG_STEPS)
def test_train_step_rejects(mistake):
    wrong, match = WRONG_STEPS[mistake]
    rejects("4", "train_step", wrong, match=match)


# --- Exercise 5: reading the alignment result ----------------------------------------


def test_alignment_gain_accepts_the_printed_value():
    from ganlab.grading.checks.gan_int_cls import measured_alignment_gain

    gain = measured_alignment_gain()
    assert 0.2 < gain < 0.35  # the shipped manifest: 0.432 - 0.183
    check(CHAPTER, "5", {"alignment_above_chance": round(gain, 3)})


@pytest.mark.parametrize("wrong", ["ratio", "raw alignment", "zero-shot", "short run"])
def test_alignment_gain_rejects_plausible_misreadings(wrong):
    from ganlab.chapters import gan_int_cls as chapter

    metrics = chapter.load_generator()[1]["manifest"]["metrics"]
    test, zeroshot = metrics["test"], metrics["zeroshot"]
    short = chapter.load_generator(chapter.shipped_variant("gan-int-cls"))[1]["manifest"]
    short = short["metrics"]["test"]
    value = {
        "ratio": test["text_alignment"] / test["chance"],
        "raw alignment": test["text_alignment"],
        "zero-shot": zeroshot["text_alignment"] - zeroshot["chance"],
        "short run": short["text_alignment"] - short["chance"],
    }[wrong]
    rejects("5", "alignment_above_chance", value, match="not within 0.005")
