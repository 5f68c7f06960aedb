"""`ganlab` on the birds world: chapter 2's commands and `ganlab world birds`."""

from __future__ import annotations

import json

import pytest
import torch
from PIL import Image

from ganlab.cli import main
from ganlab.train import checkpoint as ckpt


def test_gan_int_cls_train_sample_evaluate_bench_smoke(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "4", "--out", str(out)]
    assert main([*args, "--variant", "gan-cls"]) == 0
    meta = ckpt.read_meta(out / "generator.safetensors")
    assert meta["chapter"] == "gan-int-cls" and meta["config"]["variant"] == "gan-cls"
    weights = str(out / "generator.safetensors")
    png = tmp_path / "s.png"
    cap = ["sample", "gan-int-cls", "--weights", weights, "--out", str(png), "--n", "3"]
    assert main([*cap, "--caption", "a red bird", "--caption", "a bird with blue wings"]) == 0
    assert Image.open(png).size == (3 * 18 + 2, 2 * 18 + 2)  # 16 px images, 2 px padding
    assert main([*cap, "--caption", ""]) == 2
    assert "has no words" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", "gan-int-cls", "--weights", weights, "--n", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    for split in ("test", "zeroshot"):
        r = result[split]
        assert r["n"] == 100 and {"value", "n_named", "chance", "real"} <= set(r["text_alignment"])
        assert r["frechet_distance"]["n"] == {"generated": 100, "real": 100}
    assert main(["bench", "gan-int-cls", "--profile", "smoke", "--steps", "2", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["chapter"] == "gan-int-cls" and bench["images_per_second"] > 0
    assert main(["train", "gan-int-cls", "--profile", "smoke", "--variant", "gan-int-bls"]) == 2
    assert "variant must be one of" in capsys.readouterr().err


def test_gan_int_cls_r1_and_d_learning_rate_options(tmp_path, capsys):
    """``--r1-gamma`` adds R1 to D's loss (logged) every ``--r1-every`` steps, ``--lr-d`` sets
    D's Adam apart from G's; all recorded in the run's config, and a negative gamma is refused
    before training."""
    from ganlab.chapters import gan_int_cls as chapter

    out = tmp_path / "r1"
    args = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "2", "--out", str(out)]
    assert main([*args, "--r1-gamma", "2", "--r1-every", "1", "--lr-d", "5e-5"]) == 0
    cfg = ckpt.read_meta(out / "generator.safetensors")["config"]
    assert (cfg["r1_gamma"], cfg["r1_every"], cfg["lr_d"], cfg["lr"]) == (2.0, 1, 5e-5, 2e-4)
    history = ckpt.read_meta(out / "checkpoint.safetensors")["history"]
    assert all(h["R1"] > 0 for h in history)
    lazy = tmp_path / "lazy"  # the default: every 16 steps (logged where it ran)
    argv = [*args[:-3], "3", "--out", str(lazy), "--r1-gamma", "2"]
    assert main(argv) == 0
    history = ckpt.read_meta(lazy / "checkpoint.safetensors")["history"]
    assert ["R1" in h for h in history] == [True, False, False]
    assert ckpt.read_meta(lazy / "generator.safetensors")["config"]["r1_every"] == 16
    recipe, _ = chapter.recipe_and_config("smoke", r1_gamma=2.0, lr_d=5e-5)
    opts = recipe.optimizers(recipe.build(), torch.device("cpu"))
    assert [opts[k].param_groups[0]["lr"] for k in ("G", "D")] == [2e-4, 5e-5]
    paper, _ = chapter.recipe_and_config("gpu")
    assert (paper.r1_gamma, paper.d_lr) == (0.0, 2e-4)  # the paper's: no R1, one lr
    laptop, _ = chapter.recipe_and_config("cpu")  # the shipped run's lazy R1
    assert (laptop.r1_gamma, laptop.r1_every, laptop.d_lr) == (0.1, 16, 2e-4)
    assert chapter.recipe_and_config("cpu", r1_gamma=0.0)[0].r1_gamma == 0.0
    assert main([*args, "--r1-gamma", "-1", "--overwrite"]) == 2
    assert "r1_gamma must be >= 0" in capsys.readouterr().err
    both = tmp_path / "lr"  # --lr sets G's rate, and D's without --lr-d
    assert main([*args[:-1], str(both), "--lr", "1e-4"]) == 0
    cfg = ckpt.read_meta(both / "generator.safetensors")["config"]
    assert (cfg["lr"], cfg["lr_d"]) == (1e-4, 1e-4)
    assert main([*args[:-1], str(tmp_path / "bad"), "--lr", "0"]) == 2
    assert "lr must be > 0, got 0.0" in capsys.readouterr().err
    assert main([*args, "--r1-gamma", "1", "--r1-every", "0", "--overwrite"]) == 2
    assert "r1_every must be an int >= 1" in capsys.readouterr().err


def test_world_birds_grid(tmp_path):
    png = tmp_path / "birds.png"
    assert main(["world", "birds", "--n", "4", "--size", "32", "--out", str(png)]) == 0
    assert Image.open(png).size[0] > 200
    plain = tmp_path / "plain.png"
    argv = ["world", "birds", "--n", "4", "--size", "32", "--framing", "tight", "--scene", "plain"]
    assert main([*argv, "--out", str(plain)]) == 0
    assert Image.open(plain).size == Image.open(png).size
    with pytest.raises(SystemExit):  # argparse names the choices
        main(["world", "birds", "--scene", "empty"])


@pytest.mark.filterwarnings("ignore:feats_a has n")
def test_gan_int_cls_trains_and_is_measured_on_a_simpler_world(tmp_path, capsys):
    """``--framing tight --scene plain`` (the birds study's finding): the run records the
    world it trained on, and ``evaluate`` measures it against real birds of that world."""
    out = tmp_path / "plain"
    args = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "2", "--out", str(out)]
    assert main([*args, "--framing", "tight", "--scene", "plain"]) == 0
    meta = ckpt.read_meta(out / "generator.safetensors")
    assert meta["config"]["framing"] == "tight" and meta["config"]["scene"] == "plain"
    capsys.readouterr()
    assert main(["evaluate", "gan-int-cls", "--weights", str(out / "generator.safetensors"),
                 "--n", "100"]) == 0  # fmt: skip
    result = json.loads(capsys.readouterr().out)
    assert result["test"]["world"] == {"framing": "tight", "scene": "plain"}
    with pytest.raises(ValueError, match="birds world's options"):
        from ganlab.data.captioned import load_captioned

        load_captioned(4, root=tmp_path, scene="plain")


@pytest.mark.filterwarnings("ignore:feats_a has n")
@pytest.mark.parametrize(
    "chapter, weights",
    [("stackgan", "stage2/generator.safetensors"), ("attngan", "generator.safetensors")],
)
def test_stackgan_and_attngan_train_on_a_simpler_world(tmp_path, chapter, weights):
    """Chapters 3 and 4 take ``--framing`` / ``--scene`` too; StackGAN's two stages share it."""
    out = tmp_path / chapter
    args = ["train", chapter, "--profile", "smoke", "--steps", "1", "--out", str(out)]
    assert main([*args, "--framing", "tight", "--scene", "plain"]) == 0
    config = ckpt.read_meta(out / weights)["config"]
    assert (config["framing"], config["scene"]) == ("tight", "plain")
    if chapter == "stackgan":
        assert config["stage1"]["framing"] == "tight"  # Stage-II grew on a tight Stage-I


def test_stage_two_refuses_a_stage_one_of_another_world():
    from ganlab.chapters import stackgan

    with pytest.raises(ValueError, match="train both stages on one world"):
        stackgan.recipe_and_config("smoke", 2, framing="full")  # shipped Stage-I: tight crops
    with pytest.raises(ValueError, match="train both stages on one world"):
        stackgan.recipe_and_config("smoke", 2, scene="full")  # ... before plain backgrounds


def test_profiles_world_and_real_data():
    """The laptop profiles of chapters 2 and 3 train on tight crops before plain backgrounds (the
    birds study); a real dataset (``data_root``) is never re-framed unless asked."""
    from ganlab.chapters import gan_int_cls

    recipe, _ = gan_int_cls.recipe_and_config("cpu")
    assert (recipe.framing, recipe.scene) == ("tight", "plain")
    assert recipe.config()["framing"] == "tight"
    recipe, _ = gan_int_cls.recipe_and_config("cpu", data_root="/some/cub")
    assert (recipe.framing, recipe.scene) == ("full", "full")
    assert "framing" not in recipe.config()  # runs on the whole scene read as they always did
    recipe, _ = gan_int_cls.recipe_and_config("gpu")
    assert (recipe.framing, recipe.scene) == ("full", "full")
    from ganlab.chapters import stackgan  # chapter 3's laptop profiles too, both stages

    for stage in (1, 2):
        recipe, _ = stackgan.recipe_and_config("cpu", stage)
        assert (recipe.framing, recipe.scene) == ("tight", "plain")
    assert (stackgan.recipe_and_config("gpu", 1)[0].framing) == "full"


def test_gan_int_cls_linear_lr_decay_option(tmp_path, capsys):
    """``--lr-decay linear``: G's and D's rates stay at 2e-4 for the first half of the run,
    then fall linearly to 0 at its end; recorded in the config only when used."""
    from ganlab.chapters import gan_int_cls as chapter
    from ganlab.train.loop import Trainer, linear_decay

    assert [linear_decay(s, 8) for s in (0, 3, 4, 6, 7, 8)] == [1, 1, 1, 0.5, 0.25, 0]
    assert linear_decay(0, 1) == 1.0  # a one-step run trains at the full rate
    out = tmp_path / "decay"
    args = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "2", "--out", str(out)]
    assert main([*args, "--lr-decay", "linear"]) == 0
    assert ckpt.read_meta(out / "generator.safetensors")["config"]["lr_decay"] == "linear"
    recipe, cfg = chapter.recipe_and_config("smoke", lr_decay="linear", steps=8, progress=False)
    trainer = Trainer(recipe, cfg, device="cpu")
    seen = []
    real_step = recipe.step

    def spy(ctx):
        seen.append([trainer.opts[k].param_groups[0]["lr"] for k in ("G", "D")])
        return real_step(ctx)

    recipe.step = spy
    trainer.fit()
    assert [g for g, _ in seen] == pytest.approx([2e-4] * 5 + [1.5e-4, 1e-4, 5e-5])
    assert all(g == d for g, d in seen)
    constant, _ = chapter.recipe_and_config("cpu")  # the profiles keep the paper's constant rate
    assert constant.schedules() == {} and "lr_decay" not in constant.config()
    with pytest.raises(ValueError, match="lr_decay must be one of"):
        chapter.recipe_and_config("smoke", lr_decay="cosine")
    assert main([*args, "--lr-decay", "cosine", "--overwrite"]) == 2
    assert "invalid choice: 'cosine'" in capsys.readouterr().err


def test_gan_int_cls_width_options(tmp_path, capsys):
    """``--ngf`` / ``--ndf`` set G's and D's base widths (recorded in the config, and the
    exported G has them); a width below 1 is refused with the width's name."""
    out = tmp_path / "wide"
    args = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "1"]
    assert main([*args, "--ngf", "12", "--ndf", "6", "--out", str(out)]) == 0
    meta = ckpt.read_meta(out / "generator.safetensors")
    assert (meta["config"]["ngf"], meta["config"]["ndf"]) == (12, 6)
    tensors, _ = ckpt.load_state(out / "generator.safetensors")
    first = next(v for k, v in tensors.items() if k.endswith("net.0.weight"))
    assert first.shape[1] == 12 * 8  # ConvT from the 1x1 code to 8 ngf channels
    assert main([*args, "--ngf", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "ngf (G's base width) must be an integer >= 1" in capsys.readouterr().err


@pytest.mark.parametrize("variant", ["gan", "gan-cls", "gan-int", "gan-int-cls", "no-text"])
def test_gan_int_cls_ship_names_main_comparison_and_variant_models(variant):
    """``ganlab ship gan-int-cls RUN`` picks the shipped name from the run's config: the main
    model (``--main``), the lecture's comparison model (``--comparison``, a 2,000-step run)
    or a variant; the no-text baseline is named by its missing text, not its variant."""
    from argparse import Namespace

    from ganlab.chapters import gan_int_cls as chapter

    text = variant != "no-text"
    meta = {
        "config": {"variant": variant if text else "gan", "text": text},
        "manifest": {"steps": chapter.COMPARISON_STEPS},
    }
    ship = chapter.CHAPTER.ship_target
    under = variant.replace("-", "_")
    assert ship(meta, Namespace(main=True, comparison=False)) == ("gan_int_cls", False)
    assert ship(meta, Namespace(main=False, comparison=False)) == (f"gan_int_cls_{under}", True)
    comparison = ship(meta, Namespace(main=False, comparison=True))
    assert comparison == (chapter.shipped_variant(variant).stem, True)
    assert comparison[0] == f"gan_int_cls_2k_{under}"
    meta["manifest"]["steps"] = 7000
    with pytest.raises(ValueError, match="2000 steps.*this run has 7000"):
        ship(meta, Namespace(main=False, comparison=True))
    with pytest.raises(ValueError, match="exclude each other"):
        ship(meta, Namespace(main=True, comparison=True))
