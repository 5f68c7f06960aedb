"""Chapter 7's recipe and commands, end to end in the smoke profile."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from ganlab.chapters import spade as chapter
from ganlab.cli import main
from ganlab.data.landscapes import colorize, painted_map
from ganlab.models import spade as M
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import Trainer


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("spade")
    assert main(["train", "spade", "--profile", "smoke", "--steps", "2", "--out", str(out)]) == 0
    return out


def test_train_exports_g_with_its_encoder(run):
    meta = ckpt.read_meta(run / "generator.safetensors")
    assert meta["chapter"] == "spade" and meta["config"]["variant"] == "spade"
    assert meta["config"]["use_vae"] and meta["manifest"]["steps"] == 2
    G, _ = chapter.load_generator(run / "generator.safetensors")
    assert isinstance(G, M.SPADEPainter) and isinstance(G.netE, M.ConvEncoder)
    labels = torch.from_numpy(painted_map(32).astype(np.int64))[None].expand(3, -1, -1)
    a, b = chapter.generate(G, labels, seed=1), chapter.generate(G, labels, seed=1)
    assert a.shape == (3, 3, 32, 32) and torch.equal(a, b)  # the same seed, the same images
    assert not torch.equal(a, chapter.generate(G, labels, seed=2))  # z changes the picture
    styles = [chapter.parse_style(s) for s in ("evening,winter", "noon,summer")]
    ref = torch.cat([chapter.style_reference(labels[0], s) for s in styles])
    styled = chapter.generate(G, labels[:2], style_images=ref)
    assert styled.shape == (2, 3, 32, 32) and (styled[0] - styled[1]).abs().max() > 0


def test_sample_with_a_painted_map_and_styles(run, tmp_path, capsys):
    weights = str(run / "generator.safetensors")
    rgb, ids = tmp_path / "painted.png", tmp_path / "ids.png"
    Image.fromarray(colorize(painted_map(64))).save(rgb)
    Image.fromarray(painted_map(64)).save(ids)
    assert torch.equal(chapter.read_map(rgb, 32), chapter.read_map(ids, 32))  # both readings
    assert torch.equal(chapter.read_map(rgb, 64), torch.from_numpy(painted_map(64)).long())
    png = tmp_path / "s.png"
    cmd = ["sample", "spade", "--weights", weights, "--out", str(png), "--map", str(rgb)]
    assert main([*cmd, "--style", "evening,winter", "--style", "noon,summer"]) == 0
    assert "1 maps x 2 styles" in capsys.readouterr().out
    assert main(["sample", "spade", "--weights", weights, "--out", str(png), "--n", "2"]) == 0
    assert "4 maps x 2 random styles" in capsys.readouterr().out
    assert main([*cmd, "--style", "dusk,summer"]) == 2
    assert "--style must be TIME,SEASON" in capsys.readouterr().err
    assert main([*cmd[:-1], str(tmp_path / "none.png")]) == 2
    (tmp_path / "junk.png").write_text("not an image")
    assert main([*cmd[:-1], str(tmp_path / "junk.png")]) == 2
    assert "not a readable image" in capsys.readouterr().err


def test_evaluate_and_bench_commands(run, capsys):
    weights = str(run / "generator.safetensors")
    assert main(["evaluate", "spade", "--weights", weights, "--n", "12"]) == 0
    result = json.loads(capsys.readouterr().out)
    proto = result["spade_protocol"]
    assert result["n"] == 12 and proto["generated"]["n"] == 12 and result["size"] == 32
    assert 0 <= proto["generated"]["miou"] <= 1 and proto["real_images"]["miou"] > 0.5
    fd = result["frechet_judge_vs_other_real_scenes"]
    assert set(fd) == {"generated", "real_vs_real", "real_half_res", "real_quarter_res",
                       "real_blur"}  # fmt: skip
    assert result["style_following"]["chance"] == 0.25 and result["diversity"]["k"] == 4
    assert main(["bench", "spade", "--profile", "smoke", "--steps", "2", "--json"]) == 0
    bench = json.loads(capsys.readouterr().out)
    assert bench["chapter"] == "spade" and bench["images_per_second"] > 0


def test_baseline_variant_has_no_encoder_and_refuses_styles(tmp_path, capsys):
    out = tmp_path / "base"
    args = ["train", "spade", "--profile", "smoke", "--steps", "1", "--variant", "baseline"]
    assert main([*args, "--out", str(out)]) == 0
    G, meta = chapter.load_generator(out / "generator.safetensors")
    assert isinstance(G, M.InputMapGenerator) and meta["config"]["use_vae"] is False
    png = str(tmp_path / "s.png")
    cmd = ["sample", "spade", "--weights", str(out / "generator.safetensors"), "--out", png]
    assert main([*cmd, "--style", "noon,summer"]) == 2
    assert "encoder" in capsys.readouterr().err
    bad = ["train", "spade", "--profile", "smoke", "--variant", "pix2pix", "--out", str(out)]
    assert main(bad) == 2
    assert "unknown spade variant" in capsys.readouterr().err


def test_recipe_ttur_decay_and_a_perceptual_net_that_is_not_the_judge():
    recipe, cfg = chapter.recipe_and_config("smoke", steps=8, progress=False)
    modules = recipe.build()
    opts = recipe.optimizers(modules, torch.device("cpu"))
    assert opts["G"].param_groups[0]["lr"] == 1e-4 and opts["D"].param_groups[0]["lr"] == 4e-4
    assert opts["G"].param_groups[0]["betas"] == (0.0, 0.9)
    g_params = {id(p) for p in opts["G"].param_groups[0]["params"]}
    assert all(id(p) in g_params for p in modules["G"].netE.parameters())  # E trains with G
    f = recipe.schedules()["G"]
    assert [f(t, 8) for t in (0, 4, 5, 7)] == [1.0, 1.0, 0.75, 0.25]
    assert isinstance(recipe._perceptual_net, M.RandomFeatures)
    assert not any(p.requires_grad for p in recipe._perceptual_net.parameters())
    assert chapter.recipe_and_config("smoke", perceptual="none")[0]._perceptual_net is None
    history = Trainer(recipe, cfg).fit().history
    assert {"G_GAN", "G_GAN_Feat", "G_VGG", "G_KLD", "D_hinge"} <= set(history[-1])
    with pytest.raises(ValueError, match="unknown perceptual"):
        chapter.recipe_and_config("smoke", perceptual="vgg19")


def test_the_cpu_and_gpu_profiles_are_the_papers_design_at_their_sizes():
    cpu, gpu = chapter.PROFILES["cpu"].model, chapter.PROFILES["gpu"].model
    assert cpu.size >= 64 and cpu.use_vae
    assert (gpu.size, gpu.ngf, gpu.ndf, gpu.nhidden) == (256, 64, 64, 128)
    assert gpu.num_upsampling_layers == "normal" and gpu.num_D == 2 and gpu.n_layers_D == 4


def test_a_uniform_map_is_washed_out_at_the_input_but_not_by_spade():
    """The paper's argument: a conv of a uniform map is uniform, and normalisation zeroes it
    whatever the class; SPADE puts the class back through beta(m)."""
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(10, 6, 3, padding=1, padding_mode="reflect")  # uniform stays uniform
    norm = torch.nn.BatchNorm2d(6, affine=False).train()
    spade = M.SPADE(6, 10, nhidden=8).train()
    torch.nn.init.normal_(spade.mlp_beta.weight)
    outs, spade_outs = [], []
    for c in (0, 4, 9):
        m = M.one_hot_segmap(torch.full((4, 16, 16), c), 10)
        with torch.no_grad():
            outs.append(norm(conv(m)))
            spade_outs.append(spade(conv(m), m))
    assert all(o.abs().max() < 1e-3 for o in outs)  # every class normalised to (round-off) 0
    assert (spade_outs[0] - spade_outs[1]).abs().max() > 1e-2  # SPADE keeps the class


def test_read_map_rejects_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        chapter.read_map(tmp_path / "x.png", 32)


def test_paint_puts_a_class_where_the_sliders_say():
    from ganlab.viz.landscapes import SHAPES, paint

    base = np.zeros((32, 32), np.uint8)
    box = paint(base, 4, "rectangle", 0.5, 0.5, 0.5, 0.25)
    assert (box == 4).sum() == 16 * 8 and box[16, 16] == 4 and box[0, 0] == 0
    below = paint(base, 6, "everything below (horizon)", 0.5, 0.75, 0.1, 0.1)
    assert (below[24:] == 6).all() and (below[:24] == 0).all()
    tri = paint(base, 2, SHAPES[2], 0.5, 0.5, 0.5, 0.5)
    assert (tri == 2).sum(1)[8:24].tolist() == sorted((tri == 2).sum(1)[8:24].tolist())
    assert base.max() == 0  # a copy: the map painted on is untouched
    with pytest.raises(ValueError, match="unknown shape"):
        paint(base, 1, "star", 0.5, 0.5, 0.1, 0.1)
