"""``python -m ganlab.experiments.stage2_on_real``: Stage-II fed real birds in place of its
sketches, beside the sketches alone and real birds at Stage-II's size."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from ganlab.chapters import stackgan as chapter
from ganlab.experiments import stage2_on_real as experiment
from ganlab.weights import shipped


def test_refine_is_what_forward_does_after_stage_one():
    G = chapter.load_generator(stage=2)[0]
    t, z = torch.randn(3, G.text_dim), torch.randn(3, G.z_dim)
    sketch, image, mu, _ = G(t, z, torch.Generator().manual_seed(4))
    gen = torch.Generator().manual_seed(4)
    again = G.stage1(t, z, gen)[0]  # draws Stage-I's eps first, as forward does
    refined, mu2, _ = G.refine(again, t, gen)
    assert torch.equal(again, sketch) and torch.equal(refined, image) and torch.equal(mu, mu2)
    with pytest.raises(ValueError, match="stage1_image"):
        G.refine(torch.zeros(3, 3, 8, 8), t)  # a sketch of the wrong size


def test_rows_on_the_shipped_stage_two(tmp_path, capsys):
    out = tmp_path / "rows.json"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # n = 40 < 256 judge features: a rank-deficient FD
        argv = ["--n", "40", "--noise", "0", "0.5", "--json", str(out), "--sketches-from"]
        assert experiment.main([*argv, str(shipped("stackgan_stage1")), "gan-int-cls"]) == 0
    rows = {r["label"]: r for r in json.loads(out.read_text())["rows"]}
    assert list(rows) == [  # the shipped pair draws 32 px sketches and 64 px birds
        "real 32 px birds upsampled",
        "Stage-II on real 32 px birds",
        "Stage-II on real 32 px birds + noise 0",
        "Stage-II on real 32 px birds + noise 0.5",
        f"Stage-II on {shipped('stackgan_stage1')}",
        "gan-int-cls itself",
        "Stage-II on gan-int-cls",
        "real 64 px birds upsampled",
        "Stage-II on its Stage-I",
    ]
    for r in rows.values():
        assert r["fd"] == pytest.approx(r["fd_mean"] + r["fd_covariance"], abs=1e-3)
    assert rows["real 64 px birds upsampled"]["fd"] < rows["real 32 px birds upsampled"]["fd"]
    clean = rows["Stage-II on real 32 px birds"]["fd"]
    assert rows["Stage-II on real 32 px birds + noise 0"]["fd"] == pytest.approx(clean, abs=1e-6)
    assert rows["Stage-II on real 32 px birds + noise 0.5"]["fd"] != pytest.approx(clean)
    assert "n = 40 training birds" in capsys.readouterr().out


def test_speckled_adds_noise_of_the_given_std_and_stays_in_range():
    sketches = torch.zeros(64, 3, 16, 16)
    noisy = experiment.speckled(sketches, 0.1, seed=0)
    assert noisy.std().item() == pytest.approx(0.1, rel=0.05)
    assert torch.equal(noisy, experiment.speckled(sketches, 0.1, seed=0))  # seeded
    assert experiment.speckled(sketches + 1, 0.5, seed=0).max() <= 1


def test_sketches_from_gives_sketches_of_a_stage_one_or_of_chapter_two():
    encoder = experiment.load_encoders("joint")[0]
    captions = ["a small red bird with black wings", "a blue bird with a white belly"]
    stage1 = experiment.sketches_from(str(shipped("stackgan_stage1")), captions, 32, encoder, 0)
    world = {"framing": "tight", "scene": "plain"}  # chapter 2's shipped model's
    chapter2 = chapter.shrink(experiment.chapter2_birds(captions, encoder, 0, world), 16)
    assert stage1.shape == (2, 3, 32, 32) and stage1.abs().max() <= 1
    assert chapter2.shape == (2, 3, 16, 16) and chapter2.abs().max() <= 1
    with pytest.raises(ValueError, match="expected a 16 px Stage-I generator"):  # it is 32 px
        experiment.sketches_from(str(shipped("stackgan_stage1")), captions, 16, encoder, 0)
    with pytest.raises(ValueError, match="expected a 32 px Stage-I generator"):
        experiment.sketches_from(str(shipped("stackgan_stage2")), captions, 32, encoder, 0)
    with pytest.raises(ValueError, match="chapter 2's shipped model draws birds of"):
        experiment.chapter2_birds(captions, encoder, 0, {"framing": "full", "scene": "full"})


def test_a_negative_noise_is_refused(capsys):
    assert experiment.main(["--n", "4", "--noise", "-0.1"]) == 2
    assert "--noise: each std must be finite and >= 0" in capsys.readouterr().err


def test_a_stage_one_file_is_refused(capsys):
    assert experiment.main([str(shipped("stackgan_stage1")), "--n", "4"]) == 2
    assert "holds a Stage-I generator" in capsys.readouterr().err
