"""Chapter 5's recipe and commands, end to end in the smoke profile, and the growing
schedule as the loop runs it (order of phases, Adam resets, the reals' cross-fade)."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from ganlab.chapters import pggan as chapter
from ganlab.cli import main
from ganlab.models import pggan as M
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import Trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("pggan")
    assert main(["train", "pggan", "--profile", "smoke", "--out", str(out)]) == 0
    return out


def test_train_grows_to_the_last_level_and_exports_it(run):
    meta = ckpt.read_meta(run / "generator.safetensors")
    m = meta["manifest"]
    assert meta["chapter"] == "pggan" and m["steps"] == 10
    assert (m["level"], m["alpha"], m["resolution_reached"]) == (2, 1.0, 16)
    history = ckpt.read_meta(run / "checkpoint.safetensors")["history"]
    # two steps a phase (0.2 x 10): levels 0, 0, 1, 1, 1, 1, 2, 2, 2, 2; logged at steps 2, 4,
    # 5, 6, 8, 10 (every 5, and at each checkpoint, every 2)
    assert [h["level"] for h in history] == [0, 1, 1, 1, 2, 2]
    G, meta = chapter.load_generator(run / "generator.safetensors")
    assert chapter.trained_state(meta).resolution == 16
    x = chapter.generate(G, 3, seed=1)
    assert x.shape == (3, 3, 16, 16) and torch.equal(x, chapter.generate(G, 3, seed=1))
    strip = chapter.level_strip(G, 2, seed=1)
    assert strip.shape == (6, 3, 16, 16) and torch.equal(strip[-2:], chapter.generate(G, 2, 1))
    assert torch.equal(
        strip[0], strip[0, :, ::4, ::4].repeat_interleave(4, 1).repeat_interleave(4, 2)
    )


def test_phase_share_option_sets_the_schedule(tmp_path, capsys):
    """``--phase-share 0.1`` of 10 steps: one step a phase, the last level stabilises for the
    remaining six; an impossible share is refused before training, naming the limit."""
    out = tmp_path / "short"
    args = ["train", "pggan", "--profile", "smoke", "--out", str(out)]
    assert main([*args, "--phase-share", "0.1"]) == 0
    meta = ckpt.read_meta(out / "generator.safetensors")
    assert meta["config"]["phase_share"] == 0.1
    levels = [chapter.recipe_and_config("smoke", phase_share=0.1)[0].schedule()(t).level
              for t in range(10)]  # fmt: skip
    assert levels == [0, 1, 1, 2, 2, 2, 2, 2, 2, 2]
    assert main([*args, "--phase-share", "0.3", "--overwrite"]) != 0
    assert "leaves no steps to stabilise the last level: use < 0.25" in capsys.readouterr().err


def test_width_options_set_the_networks_widths(tmp_path):
    """``--fmap-base 128 --fmap-max 8``: every block of G and D 8 channels wide, latent 8
    (= nf(0)), recorded in the weights' config and rebuilt from it on loading."""
    out = tmp_path / "narrow"
    args = ["train", "pggan", "--profile", "smoke", "--out", str(out), "--steps", "2"]
    assert main([*args, "--fmap-base", "128", "--fmap-max", "8"]) == 0
    meta = ckpt.read_meta(out / "generator.safetensors")
    assert (meta["config"]["fmap_base"], meta["config"]["fmap_max"]) == (128, 8)
    G, _ = chapter.load_generator(out / "generator.safetensors")
    want = M.Generator(resolution=16, fmap_base=128, fmap_max=8)
    assert sum(p.numel() for p in G.parameters()) == sum(p.numel() for p in want.parameters())
    assert G.latent_size == 8
    assert chapter.generate(G, 2, seed=0).shape == (2, 3, 16, 16)


def test_sample_evaluate_and_bench_commands(run, tmp_path, capsys):
    weights = str(run / "generator.safetensors")
    png = tmp_path / "s.png"
    base = ["sample", "pggan", "--weights", weights, "--out", str(png), "--n", "3"]
    assert main([*base, "--all-levels"]) == 0
    assert Image.open(png).size == (3 * 18 + 2, 3 * 18 + 2)  # 3 levels x 3 latents of 16 px
    assert main([*base, "--level", "0"]) == 0
    assert Image.open(png).size == (3 * 6 + 2, 4 * 6 + 2)  # 4 rows of 3 at 4 px
    assert main([*base, "--level", "5"]) == 2
    assert "--level must lie in 0..2" in capsys.readouterr().err
    assert main([*base, "--level", "1", "--all-levels"]) == 2  # one or the other
    capsys.readouterr()
    assert main(["evaluate", "pggan", "--weights", weights, "--n", "100", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["resolution"] == 16 and result["metrics"]["n"] == 100
    swd = result["metrics"]["swd"]
    assert set(swd["generated"]) == set(swd["real_vs_real"]) == {"SWDx1e3_16", "SWDx1e3_avg"}
    assert main(["bench", "pggan", "--profile", "smoke", "--steps", "2", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["chapter"] == "pggan" and bench["images_per_second"] > 0


def test_schedule_fades_in_before_it_stabilises_and_resets_adam_at_every_phase():
    recipe, cfg = chapter.recipe_and_config("smoke", steps=20, progress=False)
    states = [recipe.schedule(cfg.steps)(t) for t in range(cfg.steps)]
    kinds = [(s.level, s.phase) for s in states]
    order = list(dict.fromkeys(kinds))
    assert order == [(0, "stabilise"), (1, "fade"), (1, "stabilise"), (2, "fade"), (2, "stabilise")]
    fades = [s.alpha for s in states if s.phase == "fade" and s.level == 1]
    assert fades == [0.0, 0.25, 0.5, 0.75]  # rising, then 1 while stabilising
    resets = [t for t in range(cfg.steps) if recipe.optimizer_resets(t, cfg.steps)]
    assert resets == [0, 4, 8, 12, 16]
    assert all(recipe.schedules()["G"](t, cfg.steps) == 1.0 for t in range(cfg.steps))
    assert kinds[-1] == (2, "stabilise") and states[-1].alpha == 1.0


def test_start_level_trains_at_full_size_from_the_start():
    recipe, cfg = chapter.recipe_and_config("smoke", start_level=2, steps=4, progress=False)
    assert {recipe.schedule(4)(t).level for t in range(4)} == {2}
    with pytest.raises(ValueError, match="start_level must lie in 0..2"):
        chapter.recipe_and_config("smoke", start_level=3)
    with pytest.raises(ValueError, match="leaves no steps to stabilise"):
        chapter.recipe_and_config("smoke", phase_share=0.3)


def test_step_feeds_d_reals_at_the_level_crossfaded_with_the_same_alpha(monkeypatch):
    recipe, cfg = chapter.recipe_and_config("smoke", steps=10, progress=False)
    calls = []
    real_reals_for = M.reals_for

    def spy(x, level, alpha):
        calls.append((x.shape[-1], level, alpha))
        return real_reals_for(x, level, alpha)

    monkeypatch.setattr(M, "reals_for", spy)
    Trainer(recipe, cfg, device="cpu").fit()
    assert calls[2] == (16, 1, 0.0) and calls[3] == (16, 1, 0.5) and calls[0] == (16, 0, 1.0)


def test_ema_half_life_is_a_tenth_of_a_phase_at_most_the_official_one():
    assert chapter.ema_decay_for(800) == pytest.approx(0.5 ** (1 / 80))
    assert chapter.ema_decay_for(10**6) == M.EMA_DECAY  # long phases: the official 0.999
    _, cfg = chapter.recipe_and_config("cpu", progress=False)
    assert cfg.ema_decay == pytest.approx(chapter.ema_decay_for(400))  # 5 % of 8,000 steps
    _, cfg = chapter.recipe_and_config("cpu", ema_decay=0.9, progress=False)
    assert cfg.ema_decay == 0.9
