"""Chapter 3's recipes and commands: both stages end to end in the smoke profile."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from PIL import Image

from ganlab.chapters import stackgan as chapter
from ganlab.cli import main
from ganlab.models import stackgan as M
from ganlab.train import checkpoint as ckpt
from ganlab.train.ema import recalibrate_batchnorm


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """``ganlab train stackgan`` in the smoke profile: Stage-I, then Stage-II on it."""
    out = tmp_path_factory.mktemp("stackgan")
    assert main(["train", "stackgan", "--profile", "smoke", "--steps", "3", "--out", str(out)]) == 0
    return out


def test_train_runs_stage1_then_stage2_on_it(run):
    m1 = ckpt.read_meta(run / "stage1" / "generator.safetensors")
    m2 = ckpt.read_meta(run / "stage2" / "generator.safetensors")
    assert m1["chapter"] == m2["chapter"] == "stackgan"
    assert m1["config"]["stage"] == 1 and m2["config"]["stage"] == 2
    assert m2["config"]["stage1"] == m1["config"]  # built on the Stage-I just trained
    scale = chapter.PROFILES["smoke"].model.scale2
    assert m2["config"]["image_size"] == scale * m1["config"]["image_size"]
    assert m1["manifest"]["steps"] == m2["manifest"]["steps"] == 3


def test_refine_sketch_is_the_laptop_profiles_and_a_stage2_train_option(run, tmp_path):
    """The laptop profiles refine the sketch (a course deviation); ``--no-refine-sketch`` is
    the paper's Stage-II, which the gpu profile keeps."""
    assert all(chapter.PROFILES[p].model.refine_sketch for p in ("smoke", "cpu"))
    assert not chapter.PROFILES["gpu"].model.refine_sketch
    assert ckpt.read_meta(run / "stage2" / "generator.safetensors")["config"]["refine_sketch"]
    argv = ["train", "stackgan", "--profile", "smoke", "--stage", "2", "--steps", "1"]
    stage1 = str(run / "stage1" / "generator.safetensors")
    assert main([*argv, "--stage1", stage1, "--no-refine-sketch", "--out", str(tmp_path)]) == 0
    meta = ckpt.read_meta(tmp_path / "stage2" / "generator.safetensors")
    assert meta["config"]["refine_sketch"] is False
    G, _ = chapter.load_generator(tmp_path / "stage2" / "generator.safetensors")
    assert not G.refine_sketch


def test_code_size_is_a_stage2_train_option_recorded_only_when_set(run, tmp_path, capsys):
    """``--code-size`` sets Stage-II's M_g (recorded in the config and the model spec, so the
    weights rebuild it); without it the config reads as the paper's; a bad size is refused."""
    assert chapter.PROFILES["gpu"].model.code_size2 is None  # the paper's quarter
    assert all(chapter.PROFILES[p].model.code_size2 == 16 for p in ("smoke", "cpu"))
    assert ckpt.read_meta(run / "stage2" / "generator.safetensors")["config"]["code_size"] == 16
    argv = ["train", "stackgan", "--profile", "smoke", "--stage", "2", "--steps", "1"]
    argv += ["--stage1", str(run / "stage1" / "generator.safetensors")]
    assert main([*argv, "--code-size", "8", "--out", str(tmp_path)]) == 0
    weights = tmp_path / "stage2" / "generator.safetensors"
    assert ckpt.read_meta(weights)["config"]["code_size"] == 8
    G, _ = chapter.load_generator(weights)
    assert G.code_size == 8 and len(G.upsample) == {4: 3, 2: 2}[G.scale]  # 8 -> 64 or 32 px
    assert main([*argv, "--code-size", "5", "--out", str(tmp_path / "bad")]) == 2
    assert "code_size (M_g) must be the Stage-I size 16" in capsys.readouterr().err
    recipe, _ = chapter.recipe_and_config("smoke", 1, code_size=8)  # Stage-I ignores it
    assert "code_size" not in recipe.config()


def test_scale_is_a_stage2_train_option_recorded_only_when_not_the_papers(run, tmp_path):
    """``--scale 2`` trains a Stage-II at twice the sketch's size (a course option; recorded in
    the config and the spec, so the weights rebuild it); ``--scale 4`` is the paper's and reads
    as before (no key); the gpu profile keeps the paper's."""
    assert chapter.PROFILES["gpu"].model.scale2 == 4
    argv = ["train", "stackgan", "--profile", "smoke", "--stage", "2", "--steps", "1"]
    argv += ["--stage1", str(run / "stage1" / "generator.safetensors")]
    for scale in (2, 4):
        assert main([*argv, "--scale", str(scale), "--out", str(tmp_path / str(scale))]) == 0
        weights = tmp_path / str(scale) / "stage2" / "generator.safetensors"
        config = ckpt.read_meta(weights)["config"]
        assert config.get("scale", 4) == scale and ("scale" in config) == (scale != 4)
        assert config["image_size"] == scale * config["stage1"]["image_size"]
        G, meta = chapter.load_generator(weights)
        assert G.scale == scale
        images = chapter.generate(G, ["a small red bird"], text_encoder=None)
        assert images.shape[-1] == scale * config["stage1"]["image_size"]
        judged = chapter.CHAPTER.generator(G, meta, for_evaluation=True)(["a red bird"], 0)
        assert judged.shape[-1] == chapter.EVAL_SIZE  # the judge reads 64 px either way
    recipe, _ = chapter.recipe_and_config("smoke", 1, scale=2)  # Stage-I ignores it
    assert "scale" not in recipe.config()


def test_lambda_rec_is_a_stage2_train_option_recorded_only_when_set(run, tmp_path, capsys):
    """``--lambda-rec L`` adds L times the L1 distance between real birds and Stage-II's
    redrawing of them from their drawings at Stage-I's size (a course deviation): recorded in
    the config when set, logged, absent from the paper's config (``--lambda-rec 0``, the gpu
    profile's); negative or NaN: refused."""
    assert chapter.PROFILES["gpu"].model.lambda_rec2 == 0
    assert all(chapter.PROFILES[p].model.lambda_rec2 == 10 for p in ("smoke", "cpu"))
    assert ckpt.read_meta(run / "stage2" / "generator.safetensors")["config"]["lambda_rec"] == 10
    argv = ["train", "stackgan", "--profile", "smoke", "--stage", "2", "--steps", "2"]
    argv += ["--stage1", str(run / "stage1" / "generator.safetensors")]
    assert main([*argv, "--lambda-rec", "3", "--out", str(tmp_path)]) == 0
    meta = ckpt.read_meta(tmp_path / "stage2" / "generator.safetensors")
    assert meta["config"]["lambda_rec"] == 3
    assert "L1 real" in capsys.readouterr().err  # the progress bar logs the term
    assert main([*argv, "--lambda-rec", "0", "--out", str(tmp_path / "paper")]) == 0
    meta = ckpt.read_meta(tmp_path / "paper" / "stage2" / "generator.safetensors")
    assert "lambda_rec" not in meta["config"]
    for bad in ("-1", "nan"):
        assert main([*argv, "--lambda-rec", bad, "--out", str(tmp_path / "bad")]) == 2
        assert "lambda_rec must be finite and >= 0" in capsys.readouterr().err
    recipe, _ = chapter.recipe_and_config("smoke", 1, lambda_rec=10)  # Stage-I ignores it
    assert "lambda_rec" not in recipe.config()


def test_rec_noise_speckles_the_drawings_stage2_redraws(run, tmp_path, capsys, monkeypatch):
    """``--rec-noise S`` adds Gaussian pixel noise of std S to the drawings Stage-II redraws
    (recorded only when set; negative refused); with drawings of zeros, what ``refine`` reads
    is the noise alone, of that std, and exactly zero without it."""
    argv = ["train", "stackgan", "--profile", "smoke", "--stage", "2", "--steps", "1"]
    argv += ["--stage1", str(run / "stage1" / "generator.safetensors")]
    assert main([*argv, "--rec-noise", "0.05", "--out", str(tmp_path)]) == 0
    assert (
        ckpt.read_meta(tmp_path / "stage2" / "generator.safetensors")["config"]["rec_noise"] == 0.05
    )
    assert "rec_noise" not in ckpt.read_meta(run / "stage2" / "generator.safetensors")["config"]
    assert main([*argv, "--rec-noise", "-0.1", "--out", str(tmp_path / "bad")]) == 2
    assert "rec_noise (a pixel std) must be finite and >= 0" in capsys.readouterr().err
    monkeypatch.setattr(chapter, "shrink", lambda x, size: x.new_zeros(len(x), 3, size, size))
    for std in (0.0, 0.2):
        recipe, cfg = chapter.recipe_and_config(
            "smoke", 2, stage1_path=str(run / "stage1" / "generator.safetensors"),
            rec_noise=std, steps=1, progress=False,
        )  # fmt: skip
        trainer = chapter.Trainer(recipe, cfg, device="cpu")
        seen = []

        def spy(drawing, t, *rest, seen=seen, refine=trainer.raw["G"].refine):
            if not rest:  # the redrawing's call; G's forward passes its CA sample too
                seen.append(drawing)
            return refine(drawing, t, *rest)

        monkeypatch.setattr(trainer.raw["G"], "refine", spy)
        trainer.fit()
        assert len(seen) == 1 and seen[0].std().item() == pytest.approx(std, rel=0.1, abs=1e-7)


def test_lambda_rec_pulls_stage2_towards_the_real_bird(run):
    """With only the L1 term weighing (a huge lambda), a few steps make Stage-II's redrawing
    of real birds from their 16 px drawings closer to the birds themselves."""
    stage1 = str(run / "stage1" / "generator.safetensors")
    recipe, cfg = chapter.recipe_and_config(
        "smoke", 2, stage1_path=stage1, lambda_rec=1000.0, lr=1e-3, steps=12, progress=False
    )
    trainer = chapter.Trainer(recipe, cfg, device="cpu")
    G, data = trainer.raw["G"], recipe.data(torch.device("cpu"))
    x = data["images"][:32].float().div(127.5).sub(1)  # (32, 3, 32, 32)
    t = recipe.text_embedding(data, torch.arange(32))

    def l1() -> float:  # in training mode: BatchNorm on the batch's own statistics
        with torch.no_grad():
            image, _, _ = G.refine(chapter.shrink(x, G.stage1_size), t)
        return (image - x).abs().mean().item()

    before = l1()
    trainer.fit()
    assert l1() < 0.8 * before, (before, l1())


def test_lr_is_a_train_option_recorded_in_the_config(run, tmp_path, capsys):
    """``--lr`` sets Adam's rate of G and D (the paper's 2e-4 by default); not positive: refused."""
    argv = ["train", "stackgan", "--profile", "smoke", "--stage", "2", "--steps", "1"]
    argv += ["--stage1", str(run / "stage1" / "generator.safetensors")]
    smoke = chapter.PROFILES["smoke"].model.lr2  # Stage-II's rate in the laptop profiles
    assert ckpt.read_meta(run / "stage2" / "generator.safetensors")["config"]["lr"] == smoke
    assert ckpt.read_meta(run / "stage1" / "generator.safetensors")["config"]["lr"] == 2e-4
    assert main([*argv, "--lr", "1e-4", "--out", str(tmp_path)]) == 0
    assert ckpt.read_meta(tmp_path / "stage2" / "generator.safetensors")["config"]["lr"] == 1e-4
    assert main([*argv, "--lr", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "lr (Adam's learning rate) must be positive, got 0.0" in capsys.readouterr().err


def test_stage1_size_and_width_are_train_options(tmp_path, capsys):
    """``--stage1-size 32`` trains a 32 px Stage-I and ``--ndf1`` sets its discriminator's width
    (both recorded in its config); ``--ngf2`` / ``--ndf2`` set Stage-II's; a Stage-II on it
    reads 32 px sketches; a width the discriminator cannot halve is refused."""
    argv = ["train", "stackgan", "--profile", "smoke", "--steps", "1", "--stage1-size", "32"]
    widths = ["--ndf1", "12", "--ngf2", "12", "--ndf2", "6"]
    assert main([*argv, *widths, "--out", str(tmp_path)]) == 0
    m1 = ckpt.read_meta(tmp_path / "stage1" / "generator.safetensors")
    m2 = ckpt.read_meta(tmp_path / "stage2" / "generator.safetensors")
    assert m1["config"]["image_size"] == m2["config"]["stage1"]["image_size"] == 32
    smoke = chapter.PROFILES["smoke"].model
    assert m1["config"]["ndf"] == 12 != smoke.ndf1
    assert m1["config"]["ngf"] == smoke.ngf1  # --ngf2 is Stage-II's alone
    assert (m2["config"]["ngf"], m2["config"]["ndf"]) == (12, 6) != (smoke.ngf2, smoke.ndf2)
    assert m2["config"]["image_size"] == 32 * chapter.PROFILES["smoke"].model.scale2
    assert main([*argv, "--stage", "1", "--ndf1", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "ndf" in capsys.readouterr().err


def test_stage1_residual_is_a_train_option_and_stage2_reads_it(tmp_path):
    """``--stage1-residual`` trains the TF code's Stage-I (recorded only when on), the laptop
    profiles' default, and the Stage-II trained on it rebuilds that Stage-I from its config."""
    argv = ["train", "stackgan", "--profile", "smoke", "--steps", "1", "--stage1-residual"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    m1 = ckpt.read_meta(tmp_path / "stage1" / "generator.safetensors")
    assert m1["config"]["residual"] is True
    G, meta = chapter.load_generator(tmp_path / "stage2" / "generator.safetensors")
    assert meta["config"]["stage1"]["residual"] is True
    assert any(isinstance(m, M.BottleneckResidual) for m in G.stage1.modules())
    assert "residual" not in chapter.StageIRecipe(image_size=16, ngf=4, ndf=4).config()
    # the laptop profiles train it; --no-stage1-residual gives back the PyTorch port's Stage-I
    assert all(chapter.PROFILES[p].model.residual1 for p in ("smoke", "cpu"))
    assert not chapter.PROFILES["gpu"].model.residual1
    off = tmp_path / "port"
    assert main([*argv[:-1], "--stage", "1", "--no-stage1-residual", "--out", str(off)]) == 0
    assert "residual" not in ckpt.read_meta(off / "stage1" / "generator.safetensors")["config"]


def test_lazy_r1_on_stage2s_discriminator(run, tmp_path, capsys):
    """``--r1-gamma`` adds R1 on D's real pairs every ``--r1-every`` steps (logged where it ran,
    recorded in the config); the laptop profiles' Stage-II has gamma 1, the gpu profile none,
    as the paper; a bad interval is refused."""
    argv = ["train", "stackgan", "--profile", "smoke", "--stage", "2", "--steps", "3"]
    stage1 = str(run / "stage1" / "generator.safetensors")
    out = tmp_path / "r1"
    assert (
        main([*argv, "--stage1", stage1, "--r1-gamma", "2", "--r1-every", "2", "--out", str(out)])
        == 0
    )
    history = ckpt.read_meta(out / "stage2" / "checkpoint.safetensors")["history"]
    assert ["R1" in h for h in history] == [True, False, True]
    assert all(h["R1"] > 0 for h in history if "R1" in h)
    cfg = ckpt.read_meta(out / "stage2" / "generator.safetensors")["config"]
    assert (cfg["r1_gamma"], cfg["r1_every"]) == (2.0, 2)
    # the profile's own: R1 (gamma 1) on Stage-II's D only; --r1-gamma 0 is the paper's D
    assert ckpt.read_meta(run / "stage2" / "generator.safetensors")["config"]["r1_gamma"] == 1.0
    assert "r1_gamma" not in ckpt.read_meta(run / "stage1" / "generator.safetensors")["config"]
    assert chapter.PROFILES["gpu"].model.r1_gamma2 == 0.0
    off = tmp_path / "off"
    assert main([*argv, "--stage1", stage1, "--r1-gamma", "0", "--out", str(off)]) == 0
    assert "r1_gamma" not in ckpt.read_meta(off / "stage2" / "generator.safetensors")["config"]
    assert main([*argv, "--stage1", stage1, "--r1-gamma", "1", "--r1-every", "0",
                 "--out", str(tmp_path / "bad")]) == 2  # fmt: skip
    assert "r1_every must be an int >= 1" in capsys.readouterr().err


def test_a_profile_sets_stage1s_r1_apart_from_stage2s(monkeypatch):
    profile = chapter.PROFILES["smoke"]
    model = dataclasses.replace(profile.model, r1_gamma1=0.1, r1_gamma2=1.0)
    monkeypatch.setitem(chapter.PROFILES, "smoke", dataclasses.replace(profile, model=model))
    assert chapter.recipe_and_config("smoke", 1)[0].r1_gamma == 0.1
    assert chapter.recipe_and_config("smoke", 1, r1_gamma=0.5)[0].r1_gamma == 0.5
    assert chapter.recipe_and_config("smoke", 2, stage1_path=None)[0].r1_gamma == 1.0


def test_stage2_training_leaves_stage1_untouched(run):
    s1, _ = ckpt.load_state(run / "stage1" / "generator.safetensors")
    s2, _ = ckpt.load_state(run / "stage2" / "generator.safetensors")
    inner = {k.replace("G.stage1.", "G."): v for k, v in s2.items() if k.startswith("G.stage1.")}
    assert inner.keys() == s1.keys()
    for k in s1:  # weights and BatchNorm statistics alike
        assert torch.equal(inner[k], s1[k]), k


def test_one_file_draws_both_stages(run):
    G, meta = chapter.load_generator(run / "stage2" / "generator.safetensors")
    assert isinstance(G, M.StageIIGenerator) and not G.training and not G.stage1.training
    t = torch.randn(3, 1024)
    low, high = chapter.generate_stages(G, t, seed=4)
    size = 16 * chapter.PROFILES["smoke"].model.scale2  # 32 px: the laptop profiles grow 2x
    assert low.shape == (3, 3, 16, 16) and high.shape == (3, 3, size, size)
    again_low, again_high = chapter.generate_stages(G, t, seed=4)
    assert torch.equal(low, again_low) and torch.equal(high, again_high)
    other_low, _ = chapter.generate_stages(G, t, seed=5)
    assert not torch.equal(low, other_low)
    # the Stage-I images are exactly what the Stage-I file alone draws from the same seed
    G1, _ = chapter.load_generator(run / "stage1" / "generator.safetensors")
    alone, none = chapter.generate_stages(G1, t, seed=4)
    assert none is None and torch.allclose(alone, low)


def test_sample_evaluate_and_bench_commands(run, tmp_path, capsys):
    weights = str(run / "stage2" / "generator.safetensors")
    png = tmp_path / "s.png"
    cap = ["sample", "stackgan", "--weights", weights, "--out", str(png), "--n", "3"]
    assert main([*cap, "--caption", "a red bird", "--caption", "a bird with blue wings"]) == 0
    side = 16 * chapter.PROFILES["smoke"].model.scale2 + 2  # the run's images, 2 px padding
    assert Image.open(png).size == (3 * side + 2, 2 * side + 2)
    assert main([*cap, "--caption", ""]) == 2
    assert "has no words" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["evaluate", "stackgan", "--weights", weights, "--n", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["stage"] == 2 and result["eval_size"] == 64
    for split in ("test", "zeroshot"):
        r = result[split]
        assert r["n"] == 100 and r["frechet_distance"]["n"] == {"generated": 100, "real": 100}
        assert {"value", "chance", "real"} <= set(r["text_alignment"])
    stage1 = str(run / "stage1" / "generator.safetensors")
    bench_args = ["bench", "stackgan", "--profile", "smoke", "--steps", "2", "--json"]
    assert main([*bench_args, "--stage", "1"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["chapter"] == "stackgan" and bench["model"] == "stackgan.StageIGenerator"
    assert bench["images_per_second"] > 0 and bench["config"]["stage"] == 1
    assert stage1  # the Stage-II bench needs shipped Stage-I weights: tested with them


def test_bad_variant_and_stage_give_clear_errors(tmp_path, capsys):
    args = ["train", "stackgan", "--profile", "smoke", "--steps", "1", "--out", str(tmp_path)]
    assert main([*args, "--stage", "1", "--variant", "no-cb"]) == 2
    assert "unknown stackgan variant" in capsys.readouterr().err
    assert main([*args, "--stage", "2", "--variant", "no-ca"]) == 2
    assert "Stage-I ablation" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # refused before training anything
    assert main([*args, "--variant", "no-ca"]) == 0  # the ablation trains Stage-I only
    assert [p.name for p in tmp_path.iterdir()] == ["stage1"]


def test_stage2_refuses_weights_that_are_not_stage1(run):
    with pytest.raises(ckpt.CheckpointError, match="needs Stage-I weights"):
        chapter.StageIIRecipe(stage1_path=str(run / "stage2" / "generator.safetensors"))
    with pytest.raises(ckpt.CheckpointError, match="not 'stackgan'"):
        from ganlab.weights import shipped

        chapter.load_generator(shipped("gan_int_cls"))


def test_no_ca_variant_is_deterministic_and_has_no_kl():
    recipe, _ = chapter.recipe_and_config("smoke", 1, variant="no-ca")
    assert recipe.kl_weight == 0.0 and recipe.config()["use_ca"] is False
    G = recipe.build()["G"].eval()
    t, z = torch.randn(4, 1024), torch.randn(4, G.z_dim)
    a, mu, _ = G(t, z, torch.Generator().manual_seed(0))
    b, _, _ = G(t, z, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)  # c = mu: the seed of CA's eps changes nothing
    G_ca = chapter.recipe_and_config("smoke", 1)[0].build()["G"].eval()
    a, _, _ = G_ca(t, z, torch.Generator().manual_seed(0))
    b, _, _ = G_ca(t, z, torch.Generator().manual_seed(1))
    assert not torch.equal(a, b)


def test_discriminator_wrong_pairs_come_from_the_same_features():
    D = M.StageIIDiscriminator(ndf=4, image_size=64).eval()
    x, cond = torch.rand(5, 3, 64, 64) * 2 - 1, torch.randn(5, 128)
    real, uncond, wrong = D(x, cond, wrong=True)
    assert real.shape == uncond.shape == (5,) and wrong.shape == (4,)
    h = D.features(x)
    assert torch.allclose(wrong, D.cond_logits(h[:-1], cond[1:]))
    assert torch.allclose(real, D(x, cond)[0])


def test_standing_statistics_keep_the_frozen_stage1():
    G1 = M.StageIGenerator(1024, ngf=8, image_size=16)
    for m in G1.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.fill_(0.3)
    G = M.StageIIGenerator(G1, ngf=8, num_residual=1)
    before = {k: v.clone() for k, v in G.stage1.state_dict().items()}
    batches = [(torch.randn(8, 1024), torch.randn(8, 100)) for _ in range(2)]
    recalibrate_batchnorm(G, batches, keep=G.stage1)
    after = G.stage1.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not G.training and not G.stage1.training
    top = G.joint[1]  # a Stage-II BatchNorm: recomputed from the two batches
    assert int(top.num_batches_tracked) == 2
