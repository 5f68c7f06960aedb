"""Chapter 4's checks accept reference answers and reject plausible wrong ones.

The references below are what the solution notebook's answer cells should contain; the
checks' logic must accept the library's own implementations too (while ``check`` refuses
them as a student's answer). Every wrong answer is a mistake a student (or a
published port) could really make.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ganlab.grading.checks.attngan as attngan_checks  # registers chapter "attngan"
from ganlab.grading import CheckFailed, check, get_exercise
from ganlab.grading.registry import EXERCISES
from ganlab.nn.attention import word_attention as library_word_attention
from ganlab.nn.glu import glu as library_glu
from ganlab.text.damsm import word_level_similarity


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def rejects(exercise_id: str, name: str, wrong, match: str | None = None, error=CheckFailed):
    """Assert that ``check`` refuses ``wrong`` (with ``error``, message matching ``match``)."""
    with pytest.raises(error, match=match) as info:
        check("attngan", exercise_id, {name: wrong})
    print(f"rejected: {info.value}")  # shown with pytest -s, to read the messages
    if error is CheckFailed:
        title = get_exercise("attngan", exercise_id).title
        assert str(info.value).startswith(f"Exercise {exercise_id} ({title}): ")


def test_registry_lists_five_exercises_worth_nine_points():
    exercises = EXERCISES["attngan"]
    assert [e.id for e in exercises] == ["1", "2", "3", "4", "5"]
    assert [e.points for e in exercises] == [2, 2, 1, 3, 1]
    assert all(e.hints for e in exercises)
    assert get_exercise("attngan", "2").names == ("damsm_word_similarity",)
    assert attngan_checks.CHAPTER == "attngan"


# --- Exercise 1: word_attention --------------------------------------------------------


def word_attention(h, words, mask):
    """Reference answer: h (B, C, ...) with any number of spatial axes."""
    B, C, *spatial = h.shape
    scores = torch.bmm(h.flatten(2).transpose(1, 2), words)  # (B, N, T), N positions
    scores = scores.masked_fill(mask[:, None, :], float("-inf"))  # padding: weight 0
    empty = mask.all(dim=1)  # captions without a real word
    scores = scores.masked_fill(empty[:, None, None], 0.0)  # finite, so no NaN
    beta = torch.softmax(scores, dim=2).masked_fill(mask[:, None, :], 0.0)
    context = torch.bmm(words, beta.transpose(1, 2)).view(B, C, *spatial)
    return context, beta.transpose(1, 2).reshape(B, -1, *spatial)


def _images_only(h, words, mask):
    """The lecture's computation as it stands: h must be (B, C, H, W)."""
    B, C, H, W = h.shape
    context, beta = word_attention(h, words, mask)
    return context.view(B, C, H, W), beta.reshape(B, -1, H, W)


def _positions_flattened(h, words, mask):
    """Right numbers, but the spatial axes come back as one."""
    context, beta = word_attention(h, words, mask)
    return (context, beta) if h.dim() == 4 else (context.flatten(2), beta.flatten(2))


def _last_two_axes(h, words, mask):
    """The outputs shaped by h's last two axes, taken for H and W."""
    context, beta = word_attention(h, words, mask)
    return context.reshape(len(h), -1, *h.shape[-2:]), beta.reshape(len(h), -1, *h.shape[-2:])


def _scores(h, words):
    return torch.einsum("bchw,bct->bthw", h, words)  # (B, T, H, W)


def _finish(beta, words):
    return torch.einsum("bthw,bct->bchw", beta, words), beta


def _over_pixels(h, words, mask):
    s = _scores(h, words).masked_fill(mask[:, :, None, None], float("-inf"))
    beta = torch.softmax(s.flatten(2), dim=2).view(s.shape)
    return _finish(beta, words)


def _unmasked(h, words, mask):
    return _finish(torch.softmax(_scores(h, words), dim=1), words)


def _mask_after(h, words, mask):
    beta = torch.softmax(_scores(h, words), dim=1).masked_fill(mask[:, :, None, None], 0.0)
    return _finish(beta, words)


def _nan_on_empty(h, words, mask):
    s = _scores(h, words).masked_fill(mask[:, :, None, None], float("-inf"))
    return _finish(torch.softmax(s, dim=1), words)


def _no_transpose(h, words, mask):
    B, C, H, W = h.shape
    _, beta = word_attention(h, words, mask)  # right numbers ...
    beta = beta.flatten(2).transpose(1, 2)  # (B, H*W, T)
    return torch.einsum("bthw,bct->bchw", beta.reshape(B, -1, H, W), words), beta.reshape(
        B, -1, H, W
    )  # ... viewed without moving the word axis


def _words_last(h, words, mask):
    context, beta = word_attention(h, words, mask)
    return context, beta.permute(0, 2, 3, 1)  # (B, H, W, T)


def _exp_by_hand(h, words, mask):
    s = torch.exp(_scores(h, words)).masked_fill(mask[:, :, None, None], 0.0)
    beta = s / s.sum(1, keepdim=True).clamp_min(1e-30)
    return _finish(beta, words)


def _detached(h, words, mask):
    context, beta = word_attention(h.detach(), words.detach(), mask)
    return context, beta


def _context_from_raw_scores(h, words, mask):
    _, beta = word_attention(h, words, mask)
    s = _scores(h, words).masked_fill(mask[:, :, None, None], 0.0)
    return torch.einsum("bthw,bct->bchw", s, words), beta


def _context_unpermuted(h, words, mask):
    B, C, H, W = h.shape
    context, beta = word_attention(h, words, mask)
    return context.flatten(2).transpose(1, 2).reshape(B, C, H, W), beta


def _hard_coded_size(h, words, mask):
    context, beta = word_attention(h, words, mask)
    if h.shape[2:] != (4, 5):  # an answer that only handles the first size it met
        return context, beta.reshape(len(h), -1, 4, 5) if beta.numel() % 20 == 0 else beta * 0
    return context, beta


WRONG_ATTENTION = {
    "works only at one size": _hard_coded_size,
    "softmax over pixels": _over_pixels,
    "padding not masked": _unmasked,
    "mask after the softmax, not renormalised": _mask_after,
    "NaN on a fully masked caption": _nan_on_empty,
    "attention reshaped without the transpose": _no_transpose,
    "attention with the word axis last": _words_last,
    "exp by hand (overflows)": _exp_by_hand,
    "detached": _detached,
    "context from the raw scores": _context_from_raw_scores,
    "context reshaped without the transpose": _context_unpermuted,
}

# the generalisation: h (B, C, ...) with any number of spatial axes
WRONG_SPATIAL = {
    "the lecture's code, images only": (_images_only, "ANY number of spatial axes"),
    "spatial axes flattened in the outputs": (_positions_flattened, "keep the spatial axes"),
    "the last two axes taken for H and W": (_last_two_axes, "ANY number of spatial axes"),
}


@pytest.mark.parametrize("mistake", WRONG_SPATIAL)
def test_word_attention_rejects_answers_for_images_only(mistake):
    wrong, match = WRONG_SPATIAL[mistake]
    rejects("1", "word_attention", wrong, match=match)


def test_word_attention_accepts_the_reference(capsys):
    check("attngan", "1", {"word_attention": word_attention})
    assert capsys.readouterr().out.strip() == get_exercise("attngan", "1").passed_line()


def test_word_attention_refuses_the_library_as_an_answer():
    rejects("1", "word_attention", library_word_attention, match="ganlab's own")


def test_word_attention_agrees_with_the_library_on_images():
    """On (B, C, H, W) features the reference is the course's attention."""
    gen = torch.Generator().manual_seed(0)
    h = torch.randn(3, 4, 5, 6, generator=gen)
    words = torch.randn(3, 4, 7, generator=gen)
    mask = torch.arange(7)[None] >= torch.tensor([7, 3, 0])[:, None]
    for got, want in zip(word_attention(h, words, mask), library_word_attention(h, words, mask)):
        torch.testing.assert_close(got, want)


@pytest.mark.parametrize("mistake", WRONG_ATTENTION)
def test_word_attention_rejects(mistake):
    rejects("1", "word_attention", WRONG_ATTENTION[mistake])


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("softmax over pixels", "PIXELS"),
        ("padding not masked", "not masked"),
        ("mask after the softmax, not renormalised", "renormalising"),
        ("NaN on a fully masked caption", "no real word"),
        ("attention reshaped without the transpose", "word axis in front"),
        ("attention with the word axis last", "word axis is last"),
        ("exp by hand (overflows)", "subtracts the maximum"),
        ("detached", "detached"),
        ("context reshaped without the transpose", "channel axis"),
    ],
)
def test_word_attention_names_the_mistake(mistake, diagnosis):
    rejects("1", "word_attention", WRONG_ATTENTION[mistake], match=diagnosis)


# --- Exercise 2: damsm_word_similarity -------------------------------------------------


def damsm_word_similarity(words, regions, length, gamma1, gamma2):
    """Reference answer: words (D, T), regions (D, R) -> R(Q, D)."""
    e = words[:, :length]  # (D, L) real words only
    s = torch.softmax(e.T @ regions, dim=0)  # Eq. 8: over the words, per region (L, R)
    alpha = torch.softmax(gamma1 * s, dim=1)  # Eq. 9: over the regions, per word
    c = regions @ alpha.T  # (D, L)
    cos = F.cosine_similarity(c, e, dim=0)  # (L,)
    return torch.logsumexp(gamma2 * cos, dim=0)


def library_similarity(words, regions, length, gamma1, gamma2):
    """The course's batched DAMSM code on a batch of one pair."""
    lengths = torch.tensor([int(length)])
    r = word_level_similarity(words[None], regions[None, :, :, None], lengths, gamma1, gamma2)
    return r[0, 0]


def _variant(*, length=None, g1=None, g2=None, eq8=0, eq9=1, cos=True, reduce="lse"):
    def answer(words, regions, length_, gamma1, gamma2):
        n = length_ if length is None else words.shape[1]
        e = words[:, :n]
        s = torch.softmax(e.T @ regions, dim=eq8)
        alpha = torch.softmax((gamma1 if g1 is None else g1) * s, dim=eq9)
        c = regions @ alpha.T
        r = F.cosine_similarity(c, e, dim=0) if cos else (c * e).sum(0)
        g = gamma2 if g2 is None else g2
        if reduce == "lse":
            return torch.logsumexp(g * r, dim=0)
        if reduce == "paper":
            return torch.logsumexp(g * r, dim=0) / g
        if reduce == "mean":
            return torch.log(torch.exp(g * r).mean())
        return r.sum()

    return answer


def _detached_similarity(words, regions, length, gamma1, gamma2):
    return damsm_word_similarity(words.detach(), regions.detach(), length, gamma1, gamma2)


def _hard_coded_length(words, regions, length, gamma1, gamma2):
    return damsm_word_similarity(
        words, regions, min(int(length), 4) if words.shape[0] == 3 else length, gamma1, gamma2
    ) + (0.0 if words.shape[0] == 5 else 0.1)


WRONG_SIMILARITY = {
    "works only at one size": _hard_coded_length,
    "gamma1 missing": _variant(g1=1.0),
    "gamma2 missing": _variant(g2=1.0),
    "Eq. 8 over the regions": _variant(eq8=1),
    "Eq. 9 over the words": _variant(eq9=0),
    "both softmaxes over the regions": _variant(eq8=1, eq9=1),
    "padding words counted": _variant(length="all"),
    "dot instead of cosine": _variant(cos=False),
    "the paper's 1/gamma2 power": _variant(reduce="paper"),
    "mean instead of sum": _variant(reduce="mean"),
    "sum of cosines": _variant(reduce="sum"),
    "detached": _detached_similarity,
}


@pytest.mark.parametrize("answer", [damsm_word_similarity, library_similarity])
def test_damsm_word_similarity_accepts_the_references(answer, capsys):
    check("attngan", "2", {"damsm_word_similarity": answer})
    assert capsys.readouterr().out.strip() == get_exercise("attngan", "2").passed_line()


@pytest.mark.parametrize("mistake", WRONG_SIMILARITY)
def test_damsm_word_similarity_rejects(mistake):
    rejects("2", "damsm_word_similarity", WRONG_SIMILARITY[mistake])


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("gamma1 missing", "gamma1 is missing"),
        ("gamma2 missing", "gamma2 is missing"),
        ("Eq. 8 over the regions", r"Eq. 8\) runs over the regions"),
        ("padding words counted", "padding"),
        ("dot instead of cosine", "dot product"),
        ("the paper's 1/gamma2 power", "1/gamma2"),
        ("detached", "detached"),
    ],
)
def test_damsm_word_similarity_names_the_mistake(mistake, diagnosis):
    rejects("2", "damsm_word_similarity", WRONG_SIMILARITY[mistake], match=diagnosis)


# --- Exercise 3: glu -------------------------------------------------------------------


def glu(x):
    """Reference answer."""
    a, b = x.chunk(2, dim=1)
    return a * torch.sigmoid(b)


def _half(x, dim=1):
    return x.chunk(2, dim=dim)


WRONG_GLU = {
    "halves swapped": lambda x: _half(x)[1] * torch.sigmoid(_half(x)[0]),
    "tanh instead of sigmoid": lambda x: _half(x)[0] * torch.tanh(_half(x)[1]),
    "split on the last axis": lambda x: _half(x, -1)[0] * torch.sigmoid(_half(x, -1)[1]),
    "split on the batch axis": lambda x: _half(x, 0)[0] * torch.sigmoid(_half(x, 0)[1]),
    "no gate squashing": lambda x: _half(x)[0] * _half(x)[1],
    "sigmoid on both": lambda x: torch.sigmoid(_half(x)[0]) * torch.sigmoid(_half(x)[1]),
    "always float32": lambda x: glu(x).float(),
    "detached": lambda x: glu(x.detach()),
    "interleaved channels": lambda x: x[:, 0::2] * torch.sigmoid(x[:, 1::2]),
}


@pytest.mark.parametrize("answer", [glu, lambda x: F.glu(x, dim=1)])
def test_glu_accepts_the_references(answer, capsys):
    check("attngan", "3", {"glu": answer})
    assert capsys.readouterr().out.strip() == get_exercise("attngan", "3").passed_line()


def test_glu_agrees_with_the_library_but_refuses_it_as_an_answer():
    get_exercise("attngan", "3").check(library_glu)
    rejects("3", "glu", library_glu, match="ganlab's own `ganlab.nn.glu.glu`")


@pytest.mark.parametrize("mistake", WRONG_GLU)
def test_glu_rejects(mistake):
    rejects("3", "glu", WRONG_GLU[mistake])


@pytest.mark.parametrize(
    "mistake, diagnosis",
    [
        ("halves swapped", "swapped"),
        ("tanh instead of sigmoid", "tanh"),
        ("split on the last axis", "dim 1"),
        ("always float32", "dtype"),
    ],
)
def test_glu_names_the_mistake(mistake, diagnosis):
    rejects("3", "glu", WRONG_GLU[mistake], match=diagnosis)


# --- Exercise 4: train_step --------------------------------------------------------------


def _bce(logits, target):
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def _step(
    *,
    detach=True,
    lam=5.0,
    damsm_stage=-1,
    kl=True,
    d_weights=(2, 3),
    wrong=True,
    g_uncond=True,
    all_stages=True,
    zero=True,
):
    """An AttnGAN step with one thing changed at a time (the defaults are right)."""

    def step(G, Ds, opt_g, opt_ds, xs, sentence, words, mask, z, damsm):
        fakes, _, mu, logvar = G(z, sentence, words, mask)
        loss_d = 0.0
        for D, opt_d, x, fake in zip(Ds, opt_ds, xs, fakes):
            real_u, real_c, wrong_c = D(x, sentence, wrong=True)
            fake_u, fake_c = D(fake.detach() if detach else fake, sentence)
            negatives = _bce(fake_u, 0) + _bce(fake_c, 0) + (_bce(wrong_c, 0) if wrong else 0)
            loss = (_bce(real_u, 1) + _bce(real_c, 1)) / d_weights[0] + negatives / d_weights[1]
            if zero:
                opt_d.zero_grad()
            loss.backward(retain_graph=True)
            opt_d.step()
            loss_d += loss.item()
        loss_g = lam * damsm(fakes[damsm_stage]) if lam else 0.0
        pairs = list(zip(Ds, fakes))
        for D, fake in pairs if all_stages else pairs[-1:]:
            fake_u, fake_c = D(fake, sentence)
            loss_g = loss_g + _bce(fake_c, 1) + (_bce(fake_u, 1) if g_uncond else 0)
        if kl:
            loss_g = (
                loss_g + (0.5 * (logvar.exp() + mu**2 - 1 - logvar)).sum(1).mean() / mu.shape[1]
            )
        if zero:
            opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_d, loss_g.item()

    return step


WRONG_STEPS = {
    "fakes not detached for D": (_step(detach=False), "cut from G's graph"),
    "DAMSM term missing": (_step(lam=0.0), "G's parameters"),
    "lambda = 50 (COCO's)": (_step(lam=50.0), "G's parameters"),
    "DAMSM on the first stage": (_step(damsm_stage=0), "LAST stage"),
    "KL missing": (_step(kl=False), "G's parameters"),
    "D's terms both halved": (_step(d_weights=(2, 2)), "discriminator's"),
    "wrong pairs left out of D": (_step(wrong=False), "discriminator's"),
    "G ignores the unconditional heads": (_step(g_uncond=False), "G's parameters"),
    "G fools only the last D": (_step(all_stages=False), "G's parameters"),
    "gradients never cleared": (_step(zero=False), "left over"),
}


def test_train_step_reference_pattern_passes(capsys):
    check("attngan", "4", {"train_step": _step()})
    assert capsys.readouterr().out.strip() == get_exercise("attngan", "4").passed_line()


@pytest.mark.parametrize("mistake", WRONG_STEPS)
def test_train_step_rejects(mistake):
    wrong, match = WRONG_STEPS[mistake]
    rejects("4", "train_step", wrong, match=match)


# --- Exercise 5: reading the R-precision result -------------------------------------------


def lecture_r_precisions() -> dict[str, float]:
    """The shipped AttnGAN's R-precisions as the lecture's stored outputs print them: section
    5's manifest line (n = 1,000, measured when shipped) and section 7's re-measurement."""
    import re
    from pathlib import Path

    import nbformat

    path = Path(__file__).resolve().parents[1] / "notebooks" / "04_attngan.ipynb"
    text = "".join(
        output.get("text", "")
        for cell in nbformat.read(path, as_version=4).cells
        if cell.cell_type == "code"
        for output in cell.get("outputs", [])
    )
    shipped = re.search(r"shipped attngan:.*\n.*n = 1000 test captions: R-precision ([\d.]+)", text)
    table = re.search(r"^AttnGAN +([\d.]+) ", text, flags=re.MULTILINE)
    assert shipped and table, "the lecture's stored outputs no longer print both numbers"
    return {"section 5": float(shipped.group(1)), "section 7": float(table.group(1))}


def test_r_precision_ratio_accepts_the_measured_value():
    want = attngan_checks.measured_r_precision_over_chance()
    assert 10 < want < 60  # the shipped manifest's R-precision over chance
    check("attngan", "5", {"r_precision_over_chance": round(want, 1)})


def test_r_precision_ratio_accepts_the_number_the_lecture_prints_for_the_question(capsys):
    printed = lecture_r_precisions()["section 5"]  # three decimals, as the exercise says
    check("attngan", "5", {"r_precision_over_chance": printed * 100})
    assert "passed" in capsys.readouterr().out


@pytest.mark.parametrize(
    "wrong",
    [
        "fraction",
        "paper",
        "zero-shot",
        "chance of 1/10",
        "rounded to 0.3",
        "section 7's re-measurement",
    ],
)
def test_r_precision_ratio_rejects_plausible_misreadings(wrong):
    from ganlab.chapters import attngan as chapter

    metrics = chapter.load_generator()[1]["manifest"]["metrics"]
    value = {
        "fraction": metrics["test"]["r_precision"],
        "paper": 67.82,
        "zero-shot": metrics["zeroshot"]["r_precision"] * 100,
        "chance of 1/10": metrics["test"]["r_precision"] * 10,
        # "about 0.3 of the test captions": one digit where the lecture prints three
        "rounded to 0.3": round(metrics["test"]["r_precision"], 1) * 100,
        # the comparison table's AttnGAN row: other captions (500 in cpu), not the shipped n
        "section 7's re-measurement": lecture_r_precisions()["section 7"] * 100,
    }[wrong]
    rejects("5", "r_precision_over_chance", value, match="not within 0.3")
