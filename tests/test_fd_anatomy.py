"""``python -m ganlab.experiments.fd_anatomy``: a text-to-image generator's judge FD taken
apart (its mean and covariance parts, the features' spread, a blur, the judge's attributes)."""

from __future__ import annotations

import pytest
import torch

from ganlab.cli import main as ganlab
from ganlab.evaluation.birds import real_birds
from ganlab.experiments.fd_anatomy import (
    attribute_distance,
    fd_anatomy,
    feature_spread,
    main,
    value_mix,
)


@pytest.fixture(scope="module")
def birds():
    return real_birds(24, "train", 64, "tight", scene="plain")


def test_real_birds_against_themselves_score_nothing(birds):
    with pytest.warns(UserWarning):  # 24 birds in 256 dimensions: rank deficient
        out = fd_anatomy(birds, birds, birds)
    worst = out["worst_group"]
    assert worst["generated"] == worst["real"] and sum(worst["real"].values()) == pytest.approx(1)
    assert out["n"] == 24 and out["fd"]["mean"] == pytest.approx(0, abs=1e-6)
    assert out["fd"]["total"] == pytest.approx(0, abs=0.05)
    assert set(out["attributes"].values()) == {0.0} and len(out["attributes"]) == 14
    s = out["spread"]
    assert s["trace"]["generated"] == pytest.approx(s["trace"]["real"])
    for band in s["bands"].values():
        assert band["generated"] == pytest.approx(band["real"], rel=1e-6, abs=1e-9)
    assert out["fd_blurred"]["total"] > 1.0  # the judge notices a blur


def test_parts_tell_collapse_from_shift():
    """Spread: a collapsed set (every row the same) has trace 0; a shifted copy keeps the
    spread. Attributes: disjoint values give 1, the same mix 0."""
    real = torch.randn(64, 8, generator=torch.Generator().manual_seed(0))
    collapsed = feature_spread(real[:1].expand(64, -1), real)
    assert collapsed["trace"]["generated"] == pytest.approx(0, abs=1e-12)
    shifted = feature_spread(real + 5, real)
    assert shifted["trace"]["generated"] == pytest.approx(shifted["trace"]["real"])
    assert list(shifted["bands"]) == ["0-5", "5-8"]
    codes = torch.tensor([0, 0, 1, 1])[:, None].expand(4, 14)  # (N, 14), every group alike
    same = attribute_distance(codes, codes.flip(0))
    assert len(same) == 14 and set(same.values()) == {0.0}
    other = attribute_distance(torch.zeros_like(codes), torch.ones_like(codes))  # none shared
    assert set(other.values()) == {1.0}


def test_value_mix_names_each_value_with_its_share():
    """wing_pattern is the 6th group; its values are plain, striped and spotted."""
    codes = torch.zeros(8, 14, dtype=torch.long)
    codes[:, 5] = torch.tensor([0, 2, 2, 2, 1, 2, 0, 2])
    assert value_mix(codes, "wing_pattern") == {"plain": 0.25, "striped": 0.125, "spotted": 0.625}
    with pytest.raises(ValueError, match="expected one of"):
        value_mix(codes, "no_such_group")


def test_bad_input_is_refused(birds):
    with pytest.raises(ValueError, match="as many birds"):
        fd_anatomy(birds[:4], birds, birds)
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        fd_anatomy(birds * 3, birds, birds)


def test_command_prints_every_part(tmp_path, capsys):
    run = tmp_path / "run"
    argv = ["train", "attngan", "--profile", "smoke", "--steps", "1", "--out", str(run)]
    assert ganlab(argv) == 0
    capsys.readouterr()
    with pytest.warns(UserWarning):
        assert main(["attngan", str(run / "generator.safetensors"), "--n", "4"]) == 0
    out = capsys.readouterr().out
    parts = ("FD", "covariance", "drawn at 32 px", "box blur", "trace", "background")
    parts += ("most distant",)
    for part in parts:
        assert part in out, (part, out)
    assert main(["attngan", str(tmp_path / "missing.safetensors")]) == 2
    assert main(["attngan", str(run / "generator.safetensors"), "--n", "1"]) == 2
