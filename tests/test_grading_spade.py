"""Chapter 7's checks accept reference answers and reject plausible wrong ones.

The references below are what the solution notebook's answer cells contain; the library's own
implementations (``ganlab.models.spade``) must pass too. Each wrong answer is a mistake a
student (or a port) could really make; each check tries more than one input size.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import ganlab.grading.checks.spade as spade_checks  # registers chapter "spade"
from ganlab.grading import CheckFailed, check, get_exercise
from ganlab.grading.registry import EXERCISES
from ganlab.models import spade as M


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def rejects(exercise_id: str, names: dict, match: str | None = None):
    with pytest.raises(CheckFailed, match=match) as info:
        check("spade", exercise_id, names)
    print(f"rejected: {info.value}")
    title = get_exercise("spade", exercise_id).title
    assert str(info.value).startswith(f"Exercise {exercise_id} ({title}): ")


def library_agrees_but_is_refused(exercise_id: str, answers: dict) -> None:
    """The check's own logic accepts the library's implementation (it agrees with it), but
    ``check`` refuses it as a student's answer: it is ganlab's, not the student's."""
    exercise = get_exercise("spade", exercise_id)
    exercise.check(*(answers[name] for name in exercise.names))
    rejects(exercise_id, answers, match="ganlab's own")


def test_registry_lists_five_exercises_worth_ten_points():
    exercises = EXERCISES["spade"]
    assert [e.id for e in exercises] == ["1", "2", "3", "4", "5"]
    assert [e.points for e in exercises] == [2] * 5
    assert get_exercise("spade", "3").names == ("d_hinge_loss", "g_hinge_loss")
    assert spade_checks.CHAPTER == "spade"


# --- Exercise 1: SPADE ------------------------------------------------------------------


class SPADE(nn.Module):
    """Reference answer."""

    def __init__(self, norm_nc, label_nc, nhidden=128, resize="nearest", one_plus=True,
                 affine=False, norm="batch"):  # fmt: skip
        super().__init__()
        self.resize, self.one_plus = resize, one_plus
        if norm == "batch":
            self.param_free_norm = nn.BatchNorm2d(norm_nc, affine=affine)
        else:
            self.param_free_norm = nn.InstanceNorm2d(norm_nc, affine=affine)
        self.mlp_shared = nn.Sequential(nn.Conv2d(label_nc, nhidden, 3, padding=1), nn.ReLU())
        self.mlp_gamma = nn.Conv2d(nhidden, norm_nc, 3, padding=1)
        self.mlp_beta = nn.Conv2d(nhidden, norm_nc, 3, padding=1)

    def forward(self, x, segmap):
        normalized = self.param_free_norm(x)
        kw = {"align_corners": False} if self.resize != "nearest" else {}
        segmap = F.interpolate(segmap, size=x.shape[2:], mode=self.resize, **kw)
        actv = self.mlp_shared(segmap)
        gamma, beta = self.mlp_gamma(actv), self.mlp_beta(actv)
        return normalized * ((1 + gamma) if self.one_plus else gamma) + beta


def variant(**kw):
    return lambda norm_nc, label_nc, nhidden: SPADE(norm_nc, label_nc, nhidden, **kw)


def test_spade_accepts_the_reference_and_the_library():
    check("spade", "1", {"SPADE": SPADE})
    check("spade", "1", {"SPADE": lambda a, b, c: M.SPADE(a, b, nhidden=c)})


def test_spade_rejects_gamma_without_one_plus():
    rejects("1", {"SPADE": variant(one_plus=False)}, match="without the 1 +")


def test_spade_rejects_an_affine_norm():
    rejects("1", {"SPADE": variant(affine=True)}, match="parameter-free")


def test_spade_rejects_a_bilinear_map_resize():
    rejects("1", {"SPADE": variant(resize="bilinear")}, match="bilinear")


def test_spade_rejects_instance_norm():
    rejects("1", {"SPADE": variant(norm="instance")}, match="instance normalisation")


def test_spade_check_tries_more_than_one_size():
    """An answer hard-wired to one size (the map resized to a fixed 4x4) fails the others."""

    class FixedSize(SPADE):
        def forward(self, x, segmap):
            m = F.interpolate(segmap, size=(4, 4), mode="nearest")
            actv = self.mlp_shared(m)
            return self.param_free_norm(x) * (1 + self.mlp_gamma(actv)) + self.mlp_beta(actv)

    fixed = {"SPADE": lambda a, b, c: FixedSize(a, b, c)}
    check("spade", "1", {"SPADE": SPADE})  # the sizes the first case uses pass...
    with pytest.raises(RuntimeError, match="Exercise 1"):  # ...a later size does not
        check("spade", "1", fixed)


# --- Exercise 2: the ResBlk --------------------------------------------------------------


class SPADEResnetBlock(nn.Module):
    """Reference answer (with the reference SPADE)."""

    def __init__(self, fin, fout, label_nc, nhidden=128, shortcut_norm=True, slope=0.2):
        super().__init__()
        self.learned_shortcut, self.shortcut_norm, self.slope = fin != fout, shortcut_norm, slope
        fmiddle = min(fin, fout)
        self.conv_0 = nn.Conv2d(fin, fmiddle, 3, padding=1)
        self.conv_1 = nn.Conv2d(fmiddle, fout, 3, padding=1)
        self.norm_0 = SPADE(fin, label_nc, nhidden)
        self.norm_1 = SPADE(fmiddle, label_nc, nhidden)
        if self.learned_shortcut:
            self.conv_s = nn.Conv2d(fin, fout, 1, bias=False)
            self.norm_s = SPADE(fin, label_nc, nhidden)

    def act(self, x):
        return F.leaky_relu(x, self.slope) if self.slope else F.relu(x)

    def forward(self, x, segmap):
        if self.learned_shortcut:
            x_s = self.conv_s(self.norm_s(x, segmap) if self.shortcut_norm else x)
        else:
            x_s = x
        dx = self.conv_0(self.act(self.norm_0(x, segmap)))
        dx = self.conv_1(self.act(self.norm_1(dx, segmap)))
        return x_s + dx


def test_resblock_accepts_the_reference_and_the_library():
    check("spade", "2", {"SPADEResnetBlock": SPADEResnetBlock})
    lib = lambda a, b, c, d: M.SPADEResnetBlock(a, b, c, spectral=False, nhidden=d)  # noqa: E731
    check("spade", "2", {"SPADEResnetBlock": lib})


def test_resblock_rejects_a_shortcut_without_its_spade():
    wrong = lambda a, b, c, d: SPADEResnetBlock(a, b, c, d, shortcut_norm=False)  # noqa: E731
    rejects("2", {"SPADEResnetBlock": wrong}, match="skips its SPADE")


def test_resblock_rejects_relu():
    wrong = lambda a, b, c, d: SPADEResnetBlock(a, b, c, d, slope=0.0)  # noqa: E731
    rejects("2", {"SPADEResnetBlock": wrong}, match="ReLU instead of LeakyReLU")


def test_resblock_rejects_a_missing_learned_shortcut():
    class NoShortcut(SPADEResnetBlock):
        def __init__(self, fin, fout, label_nc, nhidden):
            super().__init__(fin, fout, label_nc, nhidden)
            if self.learned_shortcut:
                del self.conv_s, self.norm_s
            self.learned_shortcut = False

        def forward(self, x, segmap):
            dx = self.conv_0(self.act(self.norm_0(x, segmap)))
            return self.conv_1(self.act(self.norm_1(dx, segmap)))

    rejects("2", {"SPADEResnetBlock": NoShortcut}, match="missing")


# --- Exercise 3: hinge -------------------------------------------------------------------


def d_hinge_loss(real_logits, fake_logits):
    """Reference answer."""
    k = len(real_logits)
    return sum(F.relu(1 - r).mean() + F.relu(1 + f).mean()
               for r, f in zip(real_logits, fake_logits)) / k  # fmt: skip


def g_hinge_loss(fake_logits):
    """Reference answer."""
    return -sum(f.mean() for f in fake_logits) / len(fake_logits)


def test_hinge_accepts_the_reference():
    check("spade", "3", {"d_hinge_loss": d_hinge_loss, "g_hinge_loss": g_hinge_loss})


def test_hinge_rejects_swapped_signs():
    def swapped(real, fake):
        return d_hinge_loss(fake, real)

    rejects("3", {"d_hinge_loss": swapped, "g_hinge_loss": g_hinge_loss}, match="swapped")


def test_hinge_rejects_a_flipped_g_loss_and_a_hinged_g_loss():
    flipped = lambda fake: -g_hinge_loss(fake)  # noqa: E731
    rejects("3", {"d_hinge_loss": d_hinge_loss, "g_hinge_loss": flipped}, match="flipped")
    hinged = lambda fake: sum(F.relu(1 - f).mean() for f in fake) / len(fake)  # noqa: E731
    rejects("3", {"d_hinge_loss": d_hinge_loss, "g_hinge_loss": hinged}, match="hinged too")


def test_hinge_rejects_summed_scales():
    summed = lambda r, f: d_hinge_loss(r, f) * len(r)  # noqa: E731
    rejects("3", {"d_hinge_loss": summed, "g_hinge_loss": g_hinge_loss}, match="summed")


# --- Exercise 4: feature matching ----------------------------------------------------------


def feature_matching_loss(fake_features, real_features, lambda_feat=10.0):
    """Reference answer."""
    loss = 0.0
    for fake, real in zip(fake_features, real_features):
        for f, r in zip(fake[:-1], real[:-1]):
            loss = loss + F.l1_loss(f, r.detach())
    return loss * lambda_feat / len(fake_features)


def test_feature_matching_accepts_the_reference_and_the_library():
    check("spade", "4", {"feature_matching_loss": feature_matching_loss})
    library_agrees_but_is_refused("4", {"feature_matching_loss": M.feature_matching_loss})


def test_feature_matching_rejects_gradients_into_the_real_features():
    def leaky(fake_features, real_features, lambda_feat=10.0):
        loss = 0.0
        for fake, real in zip(fake_features, real_features):
            for f, r in zip(fake[:-1], real[:-1]):
                loss = loss + F.l1_loss(f, r)  # no detach
        return loss * lambda_feat / len(fake_features)

    rejects("4", {"feature_matching_loss": leaky}, match="real image's features")


def test_feature_matching_rejects_matching_the_logits_and_mse():
    def with_logits(fake_features, real_features, lambda_feat=10.0):
        loss = sum(F.l1_loss(f, r.detach()) for fs, rs in zip(fake_features, real_features)
                   for f, r in zip(fs, rs))  # fmt: skip
        return loss * lambda_feat / len(fake_features)

    rejects("4", {"feature_matching_loss": with_logits}, match="logits")

    def mse(fake_features, real_features, lambda_feat=10.0):
        loss = sum(F.mse_loss(f, r.detach()) for fs, rs in zip(fake_features, real_features)
                   for f, r in zip(fs[:-1], rs[:-1]))  # fmt: skip
        return loss * lambda_feat / len(fake_features)

    rejects("4", {"feature_matching_loss": mse}, match="MSE")


# --- Exercise 5: KL ------------------------------------------------------------------------


def kl_loss(mu, logvar, lambda_kld=0.05):
    """Reference answer."""
    return lambda_kld * -0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())


def test_kl_accepts_the_reference_and_the_library():
    check("spade", "5", {"kl_loss": kl_loss})
    library_agrees_but_is_refused("5", {"kl_loss": M.kl_loss})


def test_kl_rejects_a_batch_mean_and_a_flipped_sign():
    per_sample = lambda mu, lv, lam=0.05: kl_loss(mu, lv, lam) / len(mu)  # noqa: E731
    rejects("5", {"kl_loss": per_sample}, match="mean over the batch")
    flipped = lambda mu, lv, lam=0.05: -kl_loss(mu, lv, lam)  # noqa: E731
    rejects("5", {"kl_loss": flipped}, match="sign")
