"""Chapter 6's recipe and commands, end to end in the smoke profile; the training step as the
paper has it (style mixing and w_avg in training, R1 on the reals in float32, the EMA's
half-life); the mixing figure and the mixing table's arithmetic."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from ganlab.chapters import stylegan as chapter
from ganlab.cli import main
from ganlab.models import stylegan as M
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import Trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stylegan")
    assert main(["train", "stylegan", "--profile", "smoke", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def trained(run):
    return chapter.load_generator(run / "generator.safetensors")


def test_train_exports_a_generator_with_w_avg_and_the_run_config(run, trained):
    meta = ckpt.read_meta(run / "generator.safetensors")
    assert meta["chapter"] == "stylegan" and meta["manifest"]["steps"] == 6
    assert meta["config"]["r1_gamma"] == 10.0 and meta["config"]["resolution"] == 16
    history = ckpt.read_meta(run / "checkpoint.safetensors")["history"]
    assert {"loss_D", "loss_G", "R1", "D_real", "D_fake"} <= set(history[-1])
    G, _ = trained
    assert isinstance(G, M.Generator) and not G.training
    assert G.w_avg.abs().sum() > 0  # tracked during training, exported with the EMA copy
    x = chapter.generate(G, 3, seed=1)
    assert x.shape == (3, 3, 16, 16) and torch.equal(x, chapter.generate(G, 3, seed=1))
    assert not torch.equal(x, chapter.generate(G, 3, seed=2))
    # psi = 0 puts the first 8 layers (all of them here) at w_avg: one face for every z
    flat = chapter.generate(G, 3, seed=1, psi=0.0, noise_mode="none")
    assert (flat - flat[:1]).abs().max() < 1e-5


def test_sample_evaluate_and_bench_commands(run, tmp_path, capsys):
    weights = str(run / "generator.safetensors")
    png = tmp_path / "s.png"
    base = ["sample", "stylegan", "--weights", weights, "--out", str(png), "--n", "3"]
    assert main([*base, "--psi", "0.7"]) == 0
    assert Image.open(png).size == (3 * 18 + 2, 4 * 18 + 2)  # 4 rows of 3 at 16 px
    assert main([*base, "--mix", "5"]) == 0
    assert Image.open(png).size == (3 * 18 + 2, 5 * 18 + 2)  # A, B, coarse, middle, fine
    assert "A with B's coarse, middle, fine" in capsys.readouterr().out
    assert main([*base, "--psi", "1.5"]) == 2
    assert "psi must lie in [-1.0, 1.0]" in capsys.readouterr().err
    assert main([*base, "--mix", "-1"]) == 2
    assert "--mix must be an integer" in capsys.readouterr().err
    assert main(["evaluate", "stylegan", "--weights", weights, "--n", "60", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["resolution"] == 16 and result["metrics"]["n"] == 60
    mixing = result["mixing"]
    assert mixing["n"] == 60 and set(mixing["table"]) == set(chapter.BANDS)
    assert mixing["layers"] == {"coarse": [0, 1], "middle": [2, 3], "fine": [4, 5]}
    assert main(["bench", "stylegan", "--profile", "smoke", "--steps", "2", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["chapter"] == "stylegan" and bench["images_per_second"] > 0


def test_mixing_images_copy_each_band_from_b(trained):
    G, _ = trained
    z_a, z_b = chapter.latents(G, 2, 0), chapter.latents(G, 2, 1)
    rows = chapter.mixing_images(G, z_a, z_b)
    ws_a, ws_b = G.styles(z_a), G.styles(z_b)
    for band, layers in M.style_groups(16).items():
        ws = chapter.band_mix(ws_a, ws_b, layers)
        take_b = [i in layers for i in range(G.num_layers)]
        for i, from_b in enumerate(take_b):
            assert torch.equal(ws[:, i], (ws_b if from_b else ws_a)[:, i])
        assert torch.allclose(rows[band], G.synthesis(ws, noise_mode="const"))
    assert torch.allclose(rows["A"], G.synthesis(ws_a, noise_mode="const"))
    every = chapter.band_mix(ws_a, ws_b, range(G.num_layers))
    assert torch.equal(every, ws_b)
    one = {f"layer {i}": range(i, i + 1) for i in range(G.num_layers)}
    table = chapter.mixing_table(G, n=6, bands=one)
    assert list(table["table"]) == list(one) and table["layers"]["layer 3"] == [3]
    assert set(table["pose_transfer"]["layer 0"]) == set(chapter.POSE)


def test_follows_b_counts_angles_by_nearness_and_names_by_equality():
    a = [{"yaw": 0.0, "base": "black"}, {"yaw": 0.2, "base": "white"}, {"yaw": 0.1, "base": "x"}]
    b = [{"yaw": 0.2, "base": "white"}, {"yaw": 0.0, "base": "white"}, {"yaw": 0.12, "base": "y"}]
    m = [{"yaw": 0.15, "base": "white"}, {"yaw": 0.15, "base": "grey"}, {"yaw": 0.12, "base": "x"}]
    # yaw: pair 3's sources are 0.02 rad apart (< MIN_ANGLE_GAP): skipped; pair 1 follows B
    assert chapter.follows_b(a, b, m, "yaw") == (0.5, 2)
    # base: pair 2's sources agree (skipped); pair 1 follows B, pair 3 keeps A's value
    assert chapter.follows_b(a, b, m, "base") == (0.5, 2)
    assert chapter.follows_b(a[:1], a[:1], m[:1], "yaw")[1] == 0
    # pose transfer: (mix - A) / (B - A) = 0.75 and 0.25 (pair 3 skipped): median 0.5
    assert chapter.pose_transfer(a, b, m, "yaw") == pytest.approx(0.5)


def test_step_mixes_styles_updates_w_avg_and_takes_r1_in_float32(monkeypatch):
    recipe, cfg = chapter.recipe_and_config("smoke", steps=2, progress=False, ema_decay=None)
    calls = []
    real_r1 = chapter.r1_penalty

    def spy(D, real, gamma, **kw):
        calls.append((real.dtype, gamma, real.requires_grad, torch.is_grad_enabled()))
        return real_r1(D, real, gamma, **kw)

    monkeypatch.setattr(chapter, "r1_penalty", spy)
    trainer = Trainer(recipe, cfg, device="cpu")
    mixed = []
    styles = trainer.raw["G"].styles

    def watch(z, *args, **kwargs):
        ws = styles(z, *args, **kwargs)
        mixed.append(bool((ws[:, :1] != ws).any()))  # some layer differs from layer 0
        return ws

    monkeypatch.setattr(trainer.raw["G"], "styles", watch)
    trainer.fit()
    assert calls == [(torch.float32, recipe.r1_gamma, False, True)] * 2
    assert len(mixed) == 4 and any(mixed)  # D's and G's fakes, p = 0.9 each
    assert trainer.raw["G"].w_avg.abs().sum() > 0


def test_mapping_depth_and_learning_rate_multiplier_are_train_options(tmp_path):
    argv = ["train", "stylegan", "--profile", "smoke", "--steps", "1", "--out", str(tmp_path)]
    assert main([*argv, "--mapping-layers", "3", "--mapping-lr-mul", "0.1"]) == 0
    meta = ckpt.read_meta(tmp_path / "generator.safetensors")
    assert (meta["config"]["mapping_layers"], meta["config"]["mapping_lr_mul"]) == (3, 0.1)
    G, _ = chapter.load_generator(tmp_path / "generator.safetensors")
    assert len(G.mapping.layers) == 3 and G.mapping.lr_mul == 0.1
    for bad, match in (
        ({"mapping_lr_mul": 0.0}, "mapping_lr_mul"),
        ({"mapping_layers": 0}, "mapping_layers"),
    ):
        with pytest.raises(ValueError, match=match):
            chapter.recipe_and_config("smoke", **bad)


def test_profiles_r1_gamma_and_the_ema_half_life():
    recipe, cfg = chapter.recipe_and_config("cpu", progress=False)
    assert (recipe.resolution, cfg.batch_size, cfg.steps) == (32, 32, 3000)
    assert recipe.r1_gamma == 10.0 and recipe.config()["r1_gamma_area_scaled"] == 10 / 32**2
    assert cfg.ema_decay == pytest.approx(0.5 ** (32 / 10_000))  # half-life 10k images
    G = recipe.generator_spec().build()
    assert G.num_layers == 8 and G.mapping.lr_mul == M.MAPPING_LR_MUL
    assert len(G.mapping.layers) == 8
    assert chapter.StyleGANRecipe(resolution=32, r1_gamma=None).r1_gamma == M.r1_gamma(32)
    recipe, _ = chapter.recipe_and_config("cpu", r1_gamma=0.01, progress=False)
    assert recipe.r1_gamma == 0.01
    with pytest.raises(ValueError, match="r1_gamma must be >= 0"):
        chapter.recipe_and_config("cpu", r1_gamma=-1.0)
    with pytest.raises(ValueError, match="power of 2"):
        chapter.recipe_and_config("smoke", resolution=24)


def test_band_gap_says_when_a_difference_is_clear_at_its_n():
    table = {
        "table": {
            "coarse": {"pose": 0.47, "colours": 0.14},
            "fine": {"pose": 0.45, "colours": 0.36},
        },
        "pairs": {"yaw": 120, "pitch": 110, "roll": 120, "base": 160, "secondary": 150,
                  "eye_color": 140, "background": 140},
    }  # fmt: skip
    pose = chapter.band_gap(table, "pose", "coarse", "fine")
    se = ((0.47 * 0.53 + 0.45 * 0.55) / 350) ** 0.5
    assert pose["gap"] == pytest.approx(0.02) and pose["se"] == pytest.approx(se)
    assert not pose["clear"]  # 0.02 against 2 x 0.038
    colour = chapter.band_gap(table, "colours", "fine", "coarse")
    assert colour["gap"] == pytest.approx(0.22) and colour["clear"]
    assert not chapter.band_gap(table, "colours", "coarse", "fine")["clear"]  # the sign counts
    with pytest.raises(ValueError, match="group"):
        chapter.band_gap(table, "hair", "coarse", "fine")
    with pytest.raises(ValueError, match="band"):
        chapter.band_gap(table, "pose", "middle", "fine")


def test_the_runs_table_measures_a_run_and_replaces_its_row(run, tmp_path):
    from ganlab.experiments import stylegan_runs

    table = tmp_path / "runs.json"
    weights = run / "generator.safetensors"
    row = stylegan_runs.add_row(
        table, "smoke", weights, "ganlab train stylegan --profile smoke", n=16
    )
    assert (row["steps"], row["r1_gamma"], row["mapping_layers"]) == (6, 10.0, 2)
    assert row["frechet_distance"] > row["real_vs_real"] > 0 and row["diversity"] > 0
    assert 1 <= row["w_participation"] <= 16 and row["diversity_pairs"] == 8
    again = stylegan_runs.add_row(table, "smoke", weights, "the same run", n=16)
    doc = json.loads(table.read_text())
    assert [r["label"] for r in doc["rows"]] == ["smoke"] and doc["rows"][0][
        "command"
    ] == "the same run"
    assert again["frechet_distance"] == pytest.approx(row["frechet_distance"])  # seeded
    assert doc["real"]["n"] == 16 and doc["real"]["diversity"] > 0
