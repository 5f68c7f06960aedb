"""The birds study's infrastructure: the world's framings, the ladder, train / evaluate / table.

Everything runs on a few birds and a second or two of CPU; the numbers are not the study's.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import replace

import numpy as np
import pytest
import torch

from ganlab.data.birds import BirdsWorld, load_birds
from ganlab.data.birds.dataset import _cache_path
from ganlab.errors import CheckpointError
from ganlab.evaluation.faces import degraded
from ganlab.experiments import birds_study as S
from ganlab.train import checkpoint as ckpt

R = importlib.import_module("ganlab.data.birds.render")  # the package re-exports a render()
TINY = {"g_width": 8, "d_width": 8, "batch": 8, "n_real": 24}


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("GANLAB_CACHE", str(tmp_path / "cache"))


def _fill(bird, framing: str) -> float:
    """Share of the frame the bird covers, from the renderer's exact coverage (256 px)."""
    cover = R.bird_coverage(bird.attributes, bird.placement, 256)  # full frame, (256, 256)
    crop = R.framing_crop(bird.attributes, bird.placement, framing)
    if crop is None:
        return float(cover.mean())
    x0, y0, side = (round(v * 256) for v in crop)
    return float(cover[y0 : y0 + side, x0 : x0 + side].mean())


def test_crops_are_deterministic_and_the_bird_fills_more_of_the_frame():
    world, again = BirdsWorld("test"), BirdsWorld("test")
    for i in range(4):
        bird = world.bird(i)
        assert np.array_equal(world.image(i, 32, "tight"), again.image(i, 32, "tight"))
        assert not np.array_equal(world.image(i, 32, "tight"), world.image(i, 32))
        full, cub, tight = (_fill(bird, f) for f in ("full", "cub", "tight"))
        assert cub >= full - 1e-9 and tight > 1.3 * full, (i, full, cub, tight)
        # the box holds every pixel the bird touches, and the crop holds the box
        x0, y0, x1, y1 = R.bird_box(bird.attributes, bird.placement)
        cover = R.bird_coverage(bird.attributes, bird.placement, 64)
        ys, xs = np.nonzero(cover > 0.01)
        # pixel p spans [p, p + 1): every covered pixel overlaps the box
        assert x0 * 64 < xs.min() + 1 and xs.max() < x1 * 64
        assert y0 * 64 < ys.min() + 1 and ys.max() < y1 * 64
        cx, cy, side = R.framing_crop(bird.attributes, bird.placement, "tight")
        assert cx <= x0 and cy <= y0 and x1 <= cx + side + 1e-9 and y1 <= cy + side + 1e-9


def test_full_framing_is_the_default_and_keeps_its_cache_name(tmp_path):
    assert _cache_path("train", 3, 32, 0, 10) == _cache_path("train", 3, 32, 0, 10, "full")
    assert _cache_path("train", 3, 32, 0, 10, "tight").name.endswith("_ftight.npz")
    full = load_birds(3, "test", 32, progress=False)
    tight = load_birds(3, "test", 32, progress=False, framing="tight")
    cached = load_birds(3, "test", 32, progress=False, framing="tight")  # read back
    world = BirdsWorld("test")
    assert full.framing == "full" and tight.framing == "tight"
    assert np.array_equal(full.images[1].permute(1, 2, 0).numpy(), world.image(1, 32))
    assert np.array_equal(tight.images[1].permute(1, 2, 0).numpy(), world.image(1, 32, "tight"))
    assert torch.equal(cached.images, tight.images)


def test_box_blur_rung():
    delta = torch.zeros(1, 1, 9, 9)
    delta[0, 0, 4, 4] = 1.0
    out = degraded(delta, "box")
    assert torch.allclose(out[0, 0, 2:7, 2:7], torch.full((5, 5), 1 / 25))
    assert out.sum().item() == pytest.approx(1.0)
    with pytest.raises(ValueError, match="box"):
        degraded(delta, "smudge")


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"size": 48}, "size"),
        ({"framing": "zoom"}, "framing"),
        ({"backbone": "stylegan"}, "backbone"),
        ({"batch": 1}, "batch"),
        ({"lr_d": 0.0}, "lr_d"),
        ({"beta1": 1.0}, "beta1"),
    ],
)
def test_bad_options_are_refused_by_name(bad, match):
    with pytest.raises(ValueError, match=match):
        replace(S.BASE, **bad).check()


def test_bad_names_and_budgets(tmp_path):
    with pytest.raises(ValueError, match="configuration"):
        S.config_from_args("dcgan128", {})
    with pytest.raises(ValueError, match="framing"):
        load_birds(2, "test", 32, progress=False, framing="zoom")
    with pytest.raises(ValueError, match="crop"):
        R.render_bird(
            BirdsWorld().bird(0).attributes, BirdsWorld().bird(0).placement, 32, (0.5, 0, 0.8)
        )
    with pytest.raises(ValueError, match="cpu_seconds"):
        S.train(replace(S.BASE, **TINY), tmp_path / "run", cpu_seconds=0)


def test_train_stops_at_the_budget_resumes_and_refuses_another_config(tmp_path):
    cfg = replace(S.CONFIGS["dcgan32_tight"], **TINY)
    run = tmp_path / "run"
    first = S.train(cfg, run, cpu_seconds=0.4, snapshot_every=0.2)
    # the first step of a process allocates and can take a second alone
    assert first["steps"] > 0 and 0.4 <= first["cpu_s"] < 0.4 + 1.5
    marks = [float(s["file"][len("G_ema_") : -len("s.safetensors")]) for s in first["snapshots"]]
    assert marks and marks == sorted(set(marks)) and marks[-1] <= first["cpu_s"]
    again = S.train(cfg, run, cpu_seconds=0.4)  # budget already spent: nothing to do
    assert again["steps_this_session"] == 0 and again["steps"] == first["steps"]
    more = S.train(cfg, run, cpu_seconds=first["cpu_s"] + 0.4, snapshot_every=0.2)
    assert more["steps"] > first["steps"] and more["cpu_s"] >= first["cpu_s"] + 0.4
    assert len(more["snapshots"]) > len(first["snapshots"])  # marks passed after the resume
    files = {s["file"] for s in more["snapshots"]}
    assert files == {p.name for p in (run / "snapshots").glob("*.safetensors")}
    assert json.loads((run / "train.json").read_text())["steps"] == more["steps"]
    with pytest.raises(CheckpointError, match="config"):
        S.train(replace(cfg, lr_g=1e-3), run, cpu_seconds=1.0)


def test_chapter_backbone_without_text_trains(tmp_path):
    cfg = replace(S.CONFIGS["intcls32"], **TINY)
    report = S.train(cfg, tmp_path / "run", cpu_seconds=0.3)
    _, nets, _ = S.load_generators(tmp_path / "run")
    assert report["steps"] > 0
    assert S.sample(nets["G_ema"], 3).shape == (3, 3, 64, 64)  # 32 px upsampled to 64


def test_g_ema_is_scored_with_standing_batchnorm_statistics(tmp_path):
    """The EMA copy's BatchNorm buffers are the raw G's; the study recomputes them for G_ema
    (the raw G keeps its own running statistics)."""
    run = tmp_path / "run"
    S.train(replace(S.BASE, **TINY), run, cpu_seconds=0.3)
    tensors, _ = ckpt.load_state(run / "checkpoint.safetensors")
    _, nets, _ = S.load_generators(run)
    keys = [k for k in nets["G_ema"].state_dict() if k.endswith("running_mean")]
    assert keys and not nets["G_ema"].training
    assert any(not nets["G_ema"].state_dict()[k].equal(tensors[f"G_ema.{k}"]) for k in keys)
    assert all(nets["G"].state_dict()[k].equal(tensors[f"G.{k}"]) for k in keys)


def test_ema_decay_warms_up():
    ema = S._State(S.BASE, 0).ema  # the course's EMA, with its warm-up
    assert ema.current_decay() == pytest.approx(0.1)
    ema.updates = 10**6
    assert ema.current_decay() == S.BASE.ema


@pytest.mark.filterwarnings("ignore:feats_a has n")  # a tiny n: FD's bias warning is expected
def test_evaluate_and_table(tmp_path):
    run = tmp_path / "dcgan32"
    S.train(replace(S.BASE, framing="cub", **TINY), run, cpu_seconds=0.3, snapshot_every=0.15)
    result = S.evaluate(run, n=12, n_diversity=6, snapshots=True)
    keys = {"run", "config", "steps", "cpu_s", "n", "split", "framing", "scene", "ladder", "fd"}
    more = {"rung", "diversity", "alignment", "caption_diversity", "snapshots", "eval_cpu_s"}
    assert keys | more == set(result)
    assert set(result["alignment"]) == {"real", "chance", "G", "G_ema"}
    assert result["caption_diversity"] == {}  # an untexted run: alignment is its baseline
    assert list(result["ladder"]) == ["real_vs_real", "drawn_32_up", "box_blur_5x5", "drawn_16_up"]
    assert set(result["fd"]) == {"G", "G_ema"} and result["framing"] == "cub"
    assert set(result["diversity"]) == {"real", "G", "G_ema"}
    assert result["snapshots"] and "fd_G_ema" in result["snapshots"][0]
    assert json.loads((run / "evaluate.json").read_text())["fd"] == result["fd"]
    ladder_files = list((tmp_path / "cache" / "birds").glob("ladder*_cub_n12_s64_*.json"))
    assert len(ladder_files) == 1  # the ladder is cached for the next run
    doc = S.table([run, tmp_path / "missing"], tmp_path / "t.md", tmp_path / "t.json")
    assert doc["rows"][0]["run"] == "dcgan32" and doc["not_evaluated"] == [
        str(tmp_path / "missing")
    ]
    text = (tmp_path / "t.md").read_text()
    assert "| dcgan32 | dcgan | False | 32 | cub | full |" in text
    assert "cub (n=12, test): real_vs_real" in text


def test_command_line_lists_configurations_and_refuses_bad_options(capsys):
    assert S.main(["list"]) == 0
    names = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert names == list(S.CONFIGS)
    with pytest.raises(SystemExit):
        S.main(["train", "--config", "dcgan32", "--size", "48"])
    assert "size must be one of [32, 64]" in capsys.readouterr().err


def test_plain_scene_keeps_the_bird_and_the_gradient_only(tmp_path):
    """``scene="plain"``: the same bird on its background's bare gradient (every row of the
    background one colour), pixel for pixel the full scene's bird where the bird covers all."""
    world = BirdsWorld("test")
    for i in range(3):
        bird = world.bird(i)
        full, plain = world.image(i, 64), world.image(i, 64, scene="plain")
        assert np.array_equal(plain, world.image(i, 64, scene="plain"))  # deterministic
        cover = R.bird_coverage(bird.attributes, bird.placement, 64)
        inside, outside = cover > 0.999, cover == 0
        assert np.array_equal(full[inside], plain[inside])
        assert not np.array_equal(full[outside], plain[outside])  # details and perch gone
        for y in range(64):
            row = plain[y][outside[y]]
            assert len(row) == 0 or np.ptp(row.astype(int), axis=0).max() <= 1, (i, y)
    assert _cache_path("train", 3, 32, 0, 10, "tight", "plain").name.endswith("_ftight_splain.npz")
    data = load_birds(2, "test", 32, progress=False, framing="tight", scene="plain")
    assert data.scene == "plain"
    assert np.array_equal(
        data.images[1].permute(1, 2, 0).numpy(), world.image(1, 32, "tight", "plain")
    )
    with pytest.raises(ValueError, match="scene"):
        load_birds(2, "test", 32, progress=False, scene="empty")
    with pytest.raises(ValueError, match="scene"):
        replace(S.BASE, scene="empty").check()


def test_runs_from_before_scene_resume_as_full(tmp_path):
    cfg = replace(S.BASE, **TINY)
    run = tmp_path / "run"
    S.train(cfg, run, cpu_seconds=0.2)
    tensors, meta = S.ckpt.load_state(run / "checkpoint.safetensors")
    del meta["config"]["scene"]  # as a run written before the option existed
    S.ckpt.save_state(run / "checkpoint.safetensors", tensors, meta)
    assert S.train(cfg, run, cpu_seconds=0.4)["steps"] > 0
    assert S.load_generators(run)[0].scene == "full"


@pytest.mark.filterwarnings("ignore:feats_a has n")
def test_text_runs_train_on_captions_and_measure_alignment_and_caption_diversity(tmp_path):
    """``text=True``: chapter 2's G(z, t) and D(x, t) with GAN-INT-CLS's losses; evaluation
    adds what the samples say against their captions and how varied one caption's birds are."""
    with pytest.raises(ValueError, match="gan_int_cls"):
        replace(S.BASE, text=True).check()
    cfg = replace(S.CONFIGS["intcls32_text"], **TINY)
    G, D = S.build(cfg)
    assert G.text_dim == S.TEXT_DIM and D.text_dim == S.TEXT_DIM
    text = S.training_text(cfg)
    assert text["text"].shape == (TINY["n_real"], 10, S.TEXT_DIM)
    assert text["text"].dtype == torch.float16 and text["species"].shape == (TINY["n_real"],)
    rng = torch.Generator().manual_seed(0)
    t = S.text_features(text["text"], torch.tensor([0, 0, 5]), rng)
    assert t.shape == (3, S.TEXT_DIM) and not torch.equal(t[0], t[2])
    run = tmp_path / "text"
    report = S.train(cfg, run, cpu_seconds=0.5)
    assert report["steps"] > 0 and report["config"]["text"] is True
    result = S.evaluate(run, n=12, n_diversity=6, n_captions=4, pool=60)
    assert set(result["alignment"]) == {"real", "chance", "G", "G_ema"}
    assert 0 <= result["alignment"]["G_ema"] <= 1 and result["alignment"]["real"] > 0.5
    capdiv = result["caption_diversity"]
    assert set(capdiv) == {"real", "G", "G_ema"} and capdiv["G_ema"]["per_caption"] == 16
    row = S.table([run])["rows"][0]
    assert row["text"] is True and row["capdiv_real"] == round(capdiv["real"]["judge_features"], 3)
    png = S.figure([run], tmp_path / "study.png", per_row=4)
    assert png.is_file() and png.stat().st_size > 1000
