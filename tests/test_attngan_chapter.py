"""Chapter 4's recipe and commands, end to end in the smoke profile."""

from __future__ import annotations

import dataclasses
import json

import pytest
import torch
from PIL import Image

from ganlab.chapters import attngan as chapter
from ganlab.cli import main
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import Trainer


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("attngan")
    assert main(["train", "attngan", "--profile", "smoke", "--steps", "3", "--out", str(out)]) == 0
    return out


def test_train_exports_a_three_stage_generator(run):
    meta = ckpt.read_meta(run / "generator.safetensors")
    assert meta["chapter"] == "attngan" and meta["config"]["num_stages"] == 3
    assert meta["config"]["lambda_damsm"] == 5.0 and meta["manifest"]["steps"] == 3
    G, _ = chapter.load_generator(run / "generator.safetensors")
    images, attention, feats = chapter.generate_all(G, ["a red bird", "a bird with blue wings"], 3)
    assert [x.shape[-1] for x in images] == [16, 32, 64]
    t = feats.words.shape[-1]
    assert [a.shape for a in attention] == [(2, t, 16, 16), (2, t, 32, 32)]
    # each pixel's attention is a distribution over the caption's own words only
    for a in attention:
        assert torch.allclose(a.sum(1), torch.ones_like(a.sum(1)), atol=1e-5)
        assert (a.permute(0, 2, 3, 1)[feats.padding.cpu()[:, None, None, :].expand_as(
            a.permute(0, 2, 3, 1))] == 0).all()  # fmt: skip
    again = chapter.generate(G, ["a red bird", "a bird with blue wings"], seed=3)
    assert torch.equal(again, images[-1].clamp(-1, 1))  # the same seed, the same birds


def test_sample_evaluate_and_bench_commands(run, tmp_path, capsys):
    weights = str(run / "generator.safetensors")
    png = tmp_path / "s.png"
    cap = ["sample", "attngan", "--weights", weights, "--out", str(png), "--n", "2"]
    assert main([*cap, "--caption", "a red bird"]) == 0
    assert Image.open(png).size == (2 * 66 + 2, 66 + 2)
    capsys.readouterr()
    assert main(["evaluate", "attngan", "--weights", weights, "--n", "100"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["variant"] == "damsm" and result["image_size"] == 64
    for split in ("test", "zeroshot"):
        r = result[split]
        assert r["n"] == 100 and r["r_precision"]["candidates"] == 100
    assert main(["bench", "attngan", "--profile", "smoke", "--steps", "2", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["chapter"] == "attngan" and bench["images_per_second"] > 0
    bad = ["train", "attngan", "--profile", "smoke", "--variant", "no-dasm", "--out", str(tmp_path)]
    assert main(bad) == 2
    assert "unknown attngan variant" in capsys.readouterr().err


def test_damsm_term_is_logged_and_switched_off_by_the_ablation():
    for variant, logged in (("damsm", True), ("no-damsm", False)):
        recipe, cfg = chapter.recipe_and_config("smoke", variant=variant, steps=1, progress=False)
        assert (recipe.lambda_damsm > 0) == logged
        history = Trainer(recipe, cfg).fit().history
        assert ("DAMSM" in history[-1]) == logged
        assert {"loss_D", "loss_G", "KL"} <= set(history[-1])


def test_lambda_damsm_is_a_train_option_weighting_the_term(tmp_path, monkeypatch):
    """``--lambda-damsm L`` reaches G's loss and the config; 0, a negative or infinite weight
    or a weight on the ablation is refused, naming the variant."""
    seen = []
    real_loss = chapter.M.generator_loss

    def recording(pairs, mu, logvar, damsm, lambda_damsm, *args, **kwargs):
        seen.append(lambda_damsm)
        return real_loss(pairs, mu, logvar, damsm, lambda_damsm, *args, **kwargs)

    monkeypatch.setattr(chapter.M, "generator_loss", recording)
    argv = ["train", "attngan", "--profile", "smoke", "--steps", "1", "--lambda-damsm", "1.5"]
    assert main([*argv, "--out", str(tmp_path / "run")]) == 0
    assert seen == [1.5]
    _, meta = chapter.load_generator(tmp_path / "run" / "generator.safetensors")
    assert meta["config"]["lambda_damsm"] == 1.5 and meta["config"]["variant"] == "damsm"
    assert chapter.recipe_and_config("smoke")[0].lambda_damsm == chapter.M.LAMBDA_DAMSM
    no_damsm = chapter.recipe_and_config("smoke", variant="no-damsm")[0]
    assert no_damsm.lambda_damsm == 0.0 and no_damsm.config()["lambda_damsm"] == 0.0
    bad_weights = [(0.0, "damsm"), (-1.0, "damsm"), (float("inf"), "damsm"), (2.0, "no-damsm")]
    bad_weights.append((chapter.M.LAMBDA_DAMSM, "no-damsm"))  # even the paper's weight: no term
    for bad, variant in bad_weights:
        with pytest.raises(ValueError, match="variant"):
            chapter.recipe_and_config("smoke", lambda_damsm=bad, variant=variant)


def test_a_profile_sets_lambda_damsm_and_the_option_overrides_it(monkeypatch):
    profile = chapter.PROFILES["smoke"]
    weighted = dataclasses.replace(profile.model, lambda_damsm=2.0)
    monkeypatch.setitem(chapter.PROFILES, "smoke", dataclasses.replace(profile, model=weighted))
    assert chapter.recipe_and_config("smoke")[0].lambda_damsm == 2.0
    assert chapter.recipe_and_config("smoke", lambda_damsm=3.0)[0].lambda_damsm == 3.0
    assert chapter.recipe_and_config("smoke", variant="no-damsm")[0].lambda_damsm == 0.0


def test_width_options_set_every_stage_and_discriminator(tmp_path, capsys):
    """``--ngf`` / ``--ndf`` reach the config, G's stages and every D_i; a width below 1 is
    refused with the width's name."""
    out = tmp_path / "wide"
    args = ["train", "attngan", "--profile", "smoke", "--steps", "1"]
    assert main([*args, "--ngf", "6", "--ndf", "5", "--out", str(out)]) == 0
    meta = ckpt.read_meta(out / "generator.safetensors")
    assert (meta["config"]["ngf"], meta["config"]["ndf"]) == (6, 5)
    recipe, _ = chapter.recipe_and_config("smoke", ngf=6, ndf=5)
    nets = recipe.build()
    assert nets["G"].ngf == 6 and [nets[d].ndf for d in recipe.d_names] == [5, 5, 5]
    assert main([*args, "--ndf", "0", "--out", str(tmp_path / "bad")]) == 2
    assert "ndf (D's base width) must be an integer >= 1" in capsys.readouterr().err


def test_lambda_ms_pairs_each_caption_with_two_codes(tmp_path, monkeypatch):
    """``--lambda-ms L``: the batch's second half repeats the first half's birds and caption
    encodings, and G's loss gets L times mode seeking on the last image (recorded, with the
    weight in the config); off by default, and a negative weight is refused."""
    recipe, _ = chapter.recipe_and_config("smoke", lambda_ms=1.0, n_birds=16, progress=False)
    data = recipe.data(torch.device("cpu"))
    idx, (sentence, words, lengths, padding) = recipe.captions(data, 8)
    assert torch.equal(idx[:4], idx[4:]) and torch.equal(sentence[:4], sentence[4:])
    assert torch.equal(words[:4], words[4:]) and torch.equal(padding[:4], padding[4:])
    seen = []
    real_term = chapter.mode_seeking_loss

    def recording(images, z):
        seen.append((images.shape, z.shape))
        return real_term(images, z)

    monkeypatch.setattr(chapter, "mode_seeking_loss", recording)
    argv = ["train", "attngan", "--profile", "smoke", "--steps", "1", "--lambda-ms", "0.5"]
    assert main([*argv, "--out", str(tmp_path / "ms")]) == 0
    assert seen == [(torch.Size([8, 3, 64, 64]), torch.Size([8, 100]))]
    _, meta = chapter.load_generator(tmp_path / "ms" / "generator.safetensors")
    assert meta["config"]["lambda_ms"] == 0.5
    assert "lambda_ms" not in chapter.recipe_and_config("smoke")[0].config()
    with pytest.raises(ValueError, match="lambda_ms must be finite and >= 0"):
        chapter.recipe_and_config("smoke", lambda_ms=-1.0)


def test_init_width_reaches_the_generator_and_its_manifest(tmp_path):
    """``--init-width C`` sets G's 4x4 channels and is recorded, so the weights load back;
    without it the spec holds no width (older weights keep loading)."""
    argv = ["train", "attngan", "--profile", "smoke", "--steps", "1", "--init-width", "32"]
    assert main([*argv, "--out", str(tmp_path / "w")]) == 0
    G, meta = chapter.load_generator(tmp_path / "w" / "generator.safetensors")
    assert G.init_stage.width == 32 and meta["config"]["init_width"] == 32
    recipe, _ = chapter.recipe_and_config("smoke")
    assert "init_width" not in recipe.config()
    assert "init_width" not in recipe.generator_spec().kwargs


def test_base_size_and_num_stages_reach_the_generator_its_ds_and_manifest(tmp_path):
    """``--base-size S0 --num-stages N`` (the official TREE.BASE_SIZE and BRANCH_NUM) build
    N stages from S0 with one D each, are recorded, and the weights load back."""
    argv = ["train", "attngan", "--profile", "smoke", "--steps", "1"]
    assert main([*argv, "--base-size", "8", "--num-stages", "2", "--out", str(tmp_path)]) == 0
    G, meta = chapter.load_generator(tmp_path / "generator.safetensors")
    assert G.image_sizes == [8, 16] and meta["config"]["num_stages"] == 2
    assert meta["config"]["base_size"] == 8
    images, attention, _ = chapter.generate_all(G, ["a red bird"], seed=0)
    assert [x.shape[-1] for x in images] == [8, 16] and len(attention) == 1
    recipe, _ = chapter.recipe_and_config("smoke", base_size=8, num_stages=2)
    assert recipe.d_names == ["D0", "D1"] and len(recipe.build()) == 3
    assert main([*argv, "--num-stages", "4", "--out", str(tmp_path / "bad")]) == 2


def test_residual_minibatch_std_and_image_skip_options_reach_the_models_and_manifest(tmp_path):
    """``--residual``, ``--minibatch-std`` and ``--image-skip`` (course options, not
    AttnGAN's) build G's and every D's extra layers, are recorded, resume, and the weights
    load back; without them configs are as before."""
    from ganlab.nn.bottleneck import BottleneckResidual
    from ganlab.nn.minibatch_std import MinibatchStdDev

    options = ["--residual", "--minibatch-std", "--image-skip"]
    argv = ["train", "attngan", "--profile", "smoke", *options]
    assert main([*argv, "--steps", "1", "--out", str(tmp_path)]) == 0
    assert main([*argv, "--steps", "2", "--resume", "--out", str(tmp_path)]) == 0
    G, meta = chapter.load_generator(tmp_path / "generator.safetensors")
    assert meta["config"]["residual"] is True and meta["config"]["minibatch_std"] is True
    assert G.init_stage.residual and G.image_skip and meta["config"]["image_skip"] is True
    recipe, _ = chapter.recipe_and_config("smoke", residual=True, minibatch_std=True)
    modules = recipe.build()
    for name in recipe.d_names:
        kinds = {type(m) for m in modules[name].modules()}
        assert {BottleneckResidual, MinibatchStdDev} <= kinds
    plain = chapter.recipe_and_config("smoke")[0].config()
    assert not {"residual", "minibatch_std", "image_skip"} & set(plain)
    images, _, _ = chapter.generate_all(G, ["a red bird with a black crown"], seed=0)
    assert images[-1].shape[-1] == G.image_sizes[-1]


def test_lr_decay_start_decays_every_rate_from_that_step_and_resumes_alike(tmp_path):
    """``--lr-decay-start S`` (a course option, not the paper's): G's and every D's rate is
    2e-4 before step S, then falls linearly to 0 at the run's end. The schedule counts
    absolute steps, so a run trained to S and resumed with more steps follows the same rates
    as one trained in one go; recorded only when used; a negative step is refused."""
    from ganlab.train.loop import linear_decay_from

    decay = linear_decay_from(4)
    assert [decay(s, 8) for s in (0, 3, 4, 5, 6, 7)] == [1, 1, 1, 0.75, 0.5, 0.25]
    assert [decay(s, 12) for s in (3, 4, 8)] == [1, 1, 0.5]  # resumed longer: same start
    for bad in (-1, 2.5, True):
        with pytest.raises(ValueError, match="a step >= 0"):
            chapter.recipe_and_config("smoke", lr_decay_start=bad)
    recipe, cfg = chapter.recipe_and_config("smoke", lr_decay_start=2, steps=4, progress=False)
    assert recipe.config()["lr_decay_start"] == 2
    trainer = Trainer(recipe, cfg, device="cpu")
    seen, real_step = [], recipe.step

    def spy(ctx):
        seen.append([trainer.opts[k].param_groups[0]["lr"] for k in ("G", *recipe.d_names)])
        return real_step(ctx)

    recipe.step = spy
    trainer.fit()
    assert [row[0] for row in seen] == pytest.approx([2e-4, 2e-4, 2e-4, 1e-4])
    assert all(len(set(row)) == 1 for row in seen)  # every D decays with G
    argv = ["train", "attngan", "--profile", "smoke", "--lr-decay-start", "1"]
    assert main([*argv, "--steps", "1", "--out", str(tmp_path)]) == 0
    assert main([*argv, "--steps", "2", "--resume", "--out", str(tmp_path)]) == 0
    assert ckpt.read_meta(tmp_path / "generator.safetensors")["config"]["lr_decay_start"] == 1
    plain, _ = chapter.recipe_and_config("cpu")  # the profiles keep the paper's constant rate
    assert plain.schedules() == {} and "lr_decay_start" not in plain.config()


def test_kl_weight_reaches_g_loss_and_the_manifest(tmp_path, monkeypatch):
    """``--kl-weight W`` multiplies the CA's KL in G's loss and is recorded; the official
    weight (1) leaves configs as they were; a negative or NaN weight is refused."""
    seen = []
    real = chapter.M.generator_loss

    def spy(*args):
        seen.append(args[-1])
        return real(*args)

    monkeypatch.setattr(chapter.M, "generator_loss", spy)
    argv = ["train", "attngan", "--profile", "smoke", "--steps", "1", "--kl-weight", "4"]
    assert main([*argv, "--out", str(tmp_path)]) == 0
    assert seen == [4.0]
    _, meta = chapter.load_generator(tmp_path / "generator.safetensors")
    assert meta["config"]["kl_weight"] == 4.0
    assert "kl_weight" not in chapter.recipe_and_config("smoke")[0].config()
    for bad in (-1.0, float("nan")):
        with pytest.raises(ValueError, match="kl_weight must be finite and >= 0"):
            chapter.recipe_and_config("smoke", kl_weight=bad)


def test_an_8px_first_stage_trains_on_birds_shrunk_from_16px():
    """The world draws birds from 16 px: an 8 px first stage (the cpu profile's) gets the
    16 px birds averaged down, as the official code resizes one photograph per stage."""
    import torch.nn.functional as F

    from ganlab.data.birds import load_birds

    world = {"framing": "tight", "scene": "plain"}
    recipe, cfg = chapter.recipe_and_config(
        "smoke", base_size=8, n_birds=16, steps=1, progress=False, **world
    )
    data = recipe.data(torch.device("cpu"))
    assert [im.shape[-1] for im in data["images"]] == [8, 16, 32]
    drawn = load_birds(16, "train", 16, progress=False, **world).images
    shrunk = F.interpolate(drawn.float(), size=(8, 8), mode="area").round().to(torch.uint8)
    assert torch.equal(data["images"][0], shrunk) and torch.equal(data["images"][1], drawn)
    assert chapter.shrink(drawn, 16) is drawn
    history = Trainer(recipe, cfg).fit().history
    assert {"loss_D", "loss_G", "DAMSM"} <= set(history[-1])


def test_lazy_r1_on_every_discriminator(tmp_path, monkeypatch, capsys):
    """``--r1-gamma`` adds R1 on every D_i's real pairs (each at its own size, in fp32) every
    ``--r1-every`` steps, logged where it ran and recorded in the config; without it the
    config has no R1, as the paper's runs; bad settings are refused before training."""
    seen = []
    penalty = chapter.r1_penalty

    def recording(scores, x, gamma, **kw):
        seen.append((x.shape[-1], x.dtype, gamma))
        return penalty(scores, x, gamma, **kw)

    monkeypatch.setattr(chapter, "r1_penalty", recording)
    out = tmp_path / "r1"
    argv = ["train", "attngan", "--profile", "smoke", "--steps", "3"]
    assert main([*argv, "--r1-gamma", "2", "--r1-every", "2", "--out", str(out)]) == 0
    assert seen == [(s, torch.float32, 2.0) for s in (16, 32, 64)] * 2  # steps 1 and 3
    history = ckpt.read_meta(out / "checkpoint.safetensors")["history"]
    assert ["R1" in h for h in history] == [True, False, True]
    assert all(h["R1"] > 0 for h in history if "R1" in h)
    cfg = ckpt.read_meta(out / "generator.safetensors")["config"]
    assert (cfg["r1_gamma"], cfg["r1_every"]) == (2.0, 2)
    recipe, _ = chapter.recipe_and_config("cpu", r1_gamma=0.5)
    assert (recipe.r1_gamma, recipe.r1_every) == (0.5, 16)  # StyleGAN2's interval
    assert chapter.recipe_and_config("gpu")[0].r1_gamma == 0.0  # the paper's: no R1
    assert "r1_gamma" not in chapter.recipe_and_config("gpu")[0].config()
    bad = [*argv, "--out", str(tmp_path / "bad")]
    assert main([*bad, "--r1-gamma", "-1"]) == 2
    assert "r1_gamma must be >= 0" in capsys.readouterr().err
    assert main([*bad, "--r1-gamma", "1", "--r1-every", "0"]) == 2
    assert "r1_every must be an int >= 1" in capsys.readouterr().err


def test_damsm_term_reaches_the_generator():
    """The DAMSM loss of the last image trains G's last head, never the frozen encoder."""
    recipe, _ = chapter.recipe_and_config("smoke")
    data = recipe.data(torch.device("cpu"))
    G = recipe.build()["G"]
    idx = torch.arange(4)
    sentence, words, lengths, padding = recipe.text(data, idx)
    images, _, _, _ = G(torch.randn(4, G.z_dim), sentence, words, padding)
    regions, global_ = data["image_encoder"](images[-1])
    from ganlab.text.damsm import damsm_loss

    loss = damsm_loss(words, sentence, regions, global_, lengths, data["species"][idx])["total"]
    loss.backward()
    head = G.heads[-1].conv.weight.grad
    assert head is not None and head.abs().sum() > 0
    assert all(p.grad is None for p in data["image_encoder"].parameters())  # frozen judge


def test_word_attention_figure_draws_one_map_per_word_and_stage(run):
    import matplotlib

    matplotlib.use("Agg")
    from ganlab.viz.attention import word_attention_figure

    G, _ = chapter.load_generator(run / "generator.safetensors")
    caption = "a bird with a red crown"
    images, attention, feats = chapter.generate_all(G, [caption], seed=0)
    words = caption.split()
    fig = word_attention_figure([x[0] for x in images], [a[0] for a in attention], words)
    assert len(fig.axes) == 2 * (len(words) + 1)  # two attention stages, image + one per word
    assert [ax.get_title() for ax in fig.axes[1 : len(words) + 1]] == words
    with pytest.raises(ValueError, match="one attention map set per stage"):
        word_attention_figure([x[0] for x in images], [attention[0][0]], words)


def test_caption_tokens_and_word_kinds():
    from ganlab.text.train import load_encoders

    text_encoder, _ = load_encoders("damsm")
    words = chapter.caption_tokens(text_encoder, "A bird with a RED crown, zzz wings")
    assert words == ["a", "bird", "with", "a", "red", "crown", "<unk>", "wings"]
    kinds = [chapter.word_kind(w) for w in words]
    assert kinds == ["other", "other", "other", "other", "colour", "part", "other", "part"]
    assert chapter.word_kind("grey") == chapter.word_kind("gray") == "colour"
    assert chapter.word_kind("beak") == chapter.word_kind("eye") == "part"


def test_attention_by_word_kind_averages_real_words_only(run):
    G, _ = chapter.load_generator(run / "generator.safetensors")
    captions = ["a bird with a red crown", "this bird has blue wings and a white belly"]
    out = chapter.attention_by_word_kind(G, captions, seed=1)
    assert out["n_captions"] == 2 and set(out) == {"n_captions", "stage 1", "stage 2"}
    counts = {k: v["words"] for k, v in out["stage 1"].items()}
    assert counts == {"colour": 3, "part": 3, "other": 9}  # 6 + 9 real words; no padding
    # lifts are shares of each pixel's attention times the caption's length: they average
    # to 1 over all real words of a caption, so the kinds' word-weighted mean is 1 here
    for stage in ("stage 1", "stage 2"):
        rows = out[stage].values()
        mean = sum(r["lift"] * r["words"] for r in rows) / sum(r["words"] for r in rows)
        assert mean == pytest.approx(1.0, abs=1e-4)
        assert all(0 < r["peak"] <= 1 for r in rows)


def test_attention_explorer_draws_and_reports_bad_captions(run, capsys):
    import matplotlib

    matplotlib.use("Agg")
    from ganlab.text.train import load_encoders

    G, _ = chapter.load_generator(run / "generator.safetensors")
    text_encoder, _ = load_encoders("damsm")
    # outside a kernel the Output widget captures nothing: display() prints to stdout
    box, seed, _ = chapter.attention_explorer(G, text_encoder, "a bird with a red crown").children
    assert "Figure" in capsys.readouterr().out  # the first view is drawn at once
    box.value = "!!!"  # no words at all
    assert "cannot encode this caption" in capsys.readouterr().out
    box.value = "a bird with blue wings"
    seed.value = 5
    assert capsys.readouterr().out.count("Figure") == 2  # redrawn for each change


def test_the_step_keeps_indices_and_lengths_on_the_cpu():
    """The caption lengths are read on the CPU (packing needs them there): a device copy
    would cost a host sync per step. Indices on another device are refused."""
    recipe, _ = chapter.recipe_and_config("smoke")
    data = recipe.data(torch.device("cpu"))
    assert data["lengths"].device.type == "cpu"
    with pytest.raises(ValueError, match="on the CPU"):
        recipe.text(data, torch.arange(4, device="meta"))
    torch.manual_seed(0)
    sentence, words, lengths, padding = recipe.text(data, torch.arange(4))
    torch.manual_seed(0)
    pick = torch.randint(0, data["ids"].shape[1], (4,))  # the same caption choice
    rows = torch.arange(4)
    want = data["text_encoder"](data["ids"][rows, pick], data["lengths"][rows, pick])
    assert torch.equal(words, want[0]) and torch.equal(sentence, want[1])
    assert torch.equal(padding, words.abs().sum(1) == 0)  # padding is where the LSTM wrote 0
