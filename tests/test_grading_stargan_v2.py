"""Chapter 8's checks accept reference answers and reject plausible wrong ones.

The references are what the solution notebook's answer cells contain. Every wrong answer is a
mistake a student (or a port) could really make: the wrong domain's head, a diversity term
with the wrong sign or never decayed, the cycle back through the target style, a missing
detach where the official code has one, and one added where it has none.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import ganlab.grading.checks.stargan_v2 as checks  # registers chapter "stargan-v2"
from ganlab.grading import CheckFailed, check, get_exercise
from ganlab.grading.registry import EXERCISES

CH = "stargan-v2"


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def rejects(exercise_id: str, answers: dict, match: str | None = None, error=CheckFailed):
    with pytest.raises(error, match=match) as info:
        check(CH, exercise_id, answers)
    print(f"rejected: {info.value}")
    if error is CheckFailed:
        title = get_exercise(CH, exercise_id).title
        assert str(info.value).startswith(f"Exercise {exercise_id} ({title}): ")


def test_registry_lists_five_exercises():
    exercises = EXERCISES[CH]
    assert [e.id for e in exercises] == ["1", "2", "3", "4", "5"]
    assert [e.points for e in exercises] == [2] * 5
    assert checks.CHAPTER == CH and all(e.hints for e in exercises)


# --- Exercise 1: the AdaIN ResBlk --------------------------------------------------------


def adain(x, s, fc, one_plus=True, norm=lambda h: F.instance_norm(h, eps=1e-5)):
    gamma, beta = fc(s).chunk(2, dim=1)
    scale = 1 + gamma if one_plus else gamma
    return scale[:, :, None, None] * norm(x) + beta[:, :, None, None]


def make_block(one_plus=True, sqrt2=True, shortcut=True, norm=None, detach_style=False):
    kw = {} if norm is None else {"norm": norm}

    def adain_resblk(blk, x, s):
        s = s.detach() if detach_style else s
        up = (
            (lambda t: F.interpolate(t, scale_factor=2, mode="nearest"))
            if blk.upsample
            else (lambda t: t)
        )
        h = F.leaky_relu(adain(x, s, blk.norm1.affine, one_plus, **kw), 0.2)
        h = blk.conv1(up(h))
        h = blk.conv2(F.leaky_relu(adain(h, s, blk.norm2.affine, one_plus, **kw), 0.2))
        sc = up(x)
        sc = blk.conv1x1(sc) if blk.learned_sc else sc
        out = sc + h if shortcut else h
        return out / math.sqrt(2) if sqrt2 else out

    return adain_resblk


def test_adain_resblk_accepts_the_reference_and_the_course_block():
    check(CH, "1", {"adain_resblk": make_block()})
    check(CH, "1", {"adain_resblk": lambda blk, x, s: blk(x, s)})


def test_adain_resblk_rejects_the_usual_mistakes():
    rejects("1", {"adain_resblk": make_block(one_plus=False)}, "not \\(1 \\+ gamma\\)")
    rejects("1", {"adain_resblk": make_block(sqrt2=False)}, "sqrt\\(2\\)")
    rejects("1", {"adain_resblk": make_block(shortcut=False)}, "residual alone")
    batch_norm = lambda h: F.batch_norm(h, None, None, training=True, eps=1e-5)  # noqa: E731
    rejects("1", {"adain_resblk": make_block(norm=batch_norm)}, "over the batch")
    rejects("1", {"adain_resblk": make_block(detach_style=True)}, "detached\\?")
    rejects("1", {"adain_resblk": lambda blk, x, s: 1 / 0}, "ZeroDivisionError")


# --- Exercise 2: the mapping network's heads ----------------------------------------------


def mapping_style(F_net, z, y):
    h = F_net.shared(z)
    out = torch.stack([head(h) for head in F_net.unshared], dim=1)  # (B, K, style)
    return out[torch.arange(len(y)), y]


def test_mapping_style_accepts_the_reference():
    check(CH, "2", {"mapping_style": mapping_style})


def test_mapping_style_rejects_the_wrong_head():
    def first_row_domain(F_net, z, y):
        h = F_net.shared(z)
        return F_net.unshared[int(y[0])](h)

    def batch_indexed(F_net, z, y):
        h = F_net.shared(z)
        out = torch.stack([head(h) for head in F_net.unshared], dim=1)
        return out[y, torch.arange(len(y)) % out.shape[1]]

    def shortcut(F_net, z, y):
        return F_net(z, y)

    rejects("2", {"mapping_style": first_row_domain}, "head of y\\[0\\]")
    rejects("2", {"mapping_style": batch_indexed}, "indexed the BATCH")
    rejects("2", {"mapping_style": shortcut}, "called F\\(z, y\\)")
    rejects("2", {"mapping_style": lambda F_net, z, y: mapping_style(F_net, z, (y + 1) % 3)},
            "NEXT domain")  # fmt: skip


# --- Exercise 3: style reconstruction ------------------------------------------------------


def style_reconstruction_loss(E, x_fake, y_trg, s_trg):
    return torch.mean(torch.abs(s_trg - E(x_fake, y_trg)))


def test_style_reconstruction_accepts_the_reference():
    check(CH, "3", {"style_reconstruction_loss": style_reconstruction_loss})


def test_style_reconstruction_rejects_mistakes():
    sq = lambda E, x, y, s: torch.mean((s - E(x, y)) ** 2)  # noqa: E731
    head0 = lambda E, x, y, s: torch.mean(torch.abs(s - E(x, 0)))  # noqa: E731
    det_s = lambda E, x, y, s: torch.mean(torch.abs(s.detach() - E(x, y)))  # noqa: E731
    det_x = lambda E, x, y, s: torch.mean(torch.abs(s - E(x.detach(), y)))  # noqa: E731
    rejects("3", {"style_reconstruction_loss": sq}, "squared error")
    rejects("3", {"style_reconstruction_loss": head0}, "head 0")
    rejects("3", {"style_reconstruction_loss": det_s}, "does not\ndetach|detach the target")
    rejects("3", {"style_reconstruction_loss": det_x}, "reaches x_fake")


# --- Exercise 4: the diversity-sensitive term ----------------------------------------------


def diversity_term(G, x_real, s1, s2, step, initial, ds_iter):
    lambda_ds = initial * max(0.0, 1 - step / ds_iter)
    return -lambda_ds * torch.mean(torch.abs(G(x_real, s1) - G(x_real, s2).detach()))


def test_diversity_term_accepts_the_reference():
    check(CH, "4", {"diversity_term": diversity_term})


def test_diversity_term_rejects_sign_decay_and_detach_mistakes():
    def wrong_sign(G, x, s1, s2, step, initial, ds_iter):
        return -diversity_term(G, x, s1, s2, step, initial, ds_iter)

    def not_decayed(G, x, s1, s2, step, initial, ds_iter):
        return -initial * torch.mean(torch.abs(G(x, s1) - G(x, s2).detach()))

    def negative_after(G, x, s1, s2, step, initial, ds_iter):
        lam = initial * (1 - step / ds_iter)
        return -lam * torch.mean(torch.abs(G(x, s1) - G(x, s2).detach()))

    def no_detach(G, x, s1, s2, step, initial, ds_iter):
        lam = initial * max(0.0, 1 - step / ds_iter)
        return -lam * torch.mean(torch.abs(G(x, s1) - G(x, s2)))

    rejects("4", {"diversity_term": wrong_sign}, "sign is flipped")
    rejects("4", {"diversity_term": not_decayed}, "not decayed")
    rejects("4", {"diversity_term": negative_after}, "does not stop at 0")
    rejects("4", {"diversity_term": no_detach}, "reaches s2")


# --- Exercise 5: the cycle loss -------------------------------------------------------------


def cycle_loss(G, E, x_real, y_org, x_fake, y_trg):
    s_org = E(x_real, y_org)
    return torch.mean(torch.abs(x_real - G(x_fake, s_org)))


def test_cycle_loss_accepts_the_reference():
    check(CH, "5", {"cycle_loss": cycle_loss})


def test_cycle_loss_rejects_the_target_style_and_detaches():
    def target_style(G, E, x_real, y_org, x_fake, y_trg):
        return torch.mean(torch.abs(x_real - G(x_fake, E(x_fake, y_trg))))

    def target_head(G, E, x_real, y_org, x_fake, y_trg):
        return torch.mean(torch.abs(x_real - G(x_fake, E(x_real, y_trg))))

    def detached_style(G, E, x_real, y_org, x_fake, y_trg):
        return torch.mean(torch.abs(x_real - G(x_fake, E(x_real, y_org).detach())))

    def detached_fake(G, E, x_real, y_org, x_fake, y_trg):
        return torch.mean(torch.abs(x_real - G(x_fake.detach(), E(x_real, y_org))))

    rejects("5", {"cycle_loss": target_style}, "TARGET style")
    rejects("5", {"cycle_loss": target_head}, "target's head")
    rejects("5", {"cycle_loss": detached_style}, "reaches E")
    rejects("5", {"cycle_loss": detached_fake}, "reaches x_fake")


def test_unwritten_answers_count_as_not_implemented():
    def todo(*args):
        raise NotImplementedError("Exercise 5: write your answer here")

    with pytest.raises(NotImplementedError):
        check(CH, "5", {"cycle_loss": todo})
