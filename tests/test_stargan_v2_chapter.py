"""Chapter 8's recipe and commands in the smoke profile: the loop's step is the official
iteration (the same updates as ``ganlab.models.stargan_v2.train_step``), the batches draw
references of one target domain, lambda_ds decays over the run, the export holds the EMA
G, F, E, and sample / evaluate / bench work with clear errors for bad input."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from PIL import Image

from ganlab.chapters import stargan_v2 as chapter
from ganlab.cli import main
from ganlab.models import stargan_v2 as M
from ganlab.train import checkpoint as ckpt
from ganlab.train.loop import StepContext, Trainer


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("stargan_v2")
    assert main(["train", "stargan-v2", "--profile", "smoke", "--out", str(out)]) == 0
    return out


def test_train_exports_the_averaged_translator(run):
    meta = ckpt.read_meta(run / "generator.safetensors")
    assert meta["chapter"] == "stargan-v2" and meta["manifest"]["steps"] == 4
    assert meta["generator"]["class"] == "ganlab.models.stargan_v2.Translator"
    T, meta = chapter.load_translator(run / "generator.safetensors")
    assert isinstance(T, M.Translator) and not T.training
    # the exported nets are the EMA copies, not the raw ones
    tensors, _ = ckpt.load_state(run / "checkpoint.safetensors")
    raw = tensors["G.generator.from_rgb.weight"]
    ema = tensors["ema.G.generator.from_rgb.weight"]
    assert not torch.equal(raw, ema)
    assert torch.equal(T.generator.from_rgb.weight, ema)
    history = ckpt.read_meta(run / "checkpoint.safetensors")["history"]
    keys = set(history[-1])
    assert {"D/latent_real", "D/ref_reg", "G/latent_ds", "G/ref_cyc", "G/latent_sty"} <= keys


def test_translate_and_grids(run):
    T, _ = chapter.load_translator(run / "generator.safetensors")
    x = chapter.held_out_sources(3, 16)
    a = chapter.translate(T, x, "dog", seed=1)
    assert a.shape == (3, 3, 16, 16) and a.abs().max() <= 1
    assert torch.equal(a, chapter.translate(T, x, 1, seed=1))  # name or index, reproducible
    assert not torch.equal(a, chapter.translate(T, x, "dog", seed=2))  # z matters
    assert not torch.equal(a, chapter.translate(T, x, "cat", seed=1))  # the domain matters
    refs = chapter.references(2, 16, "wild")
    grid = chapter.reference_grid(T, x, refs, ["wild", "wild"])
    assert grid.shape == (3 * 4, 3, 16, 16) and torch.equal(grid[4], refs[0])
    images, per_row = chapter.latent_grid(T, x, seeds=(0, 1))
    assert per_row == 3 and images.shape == (3 + 3 * 2 * 3, 3, 16, 16)
    with pytest.raises(ValueError, match="unknown domain 'fox'"):
        chapter.translate(T, x, "fox")
    foxes = chapter.kind_references(3, 16, "fox")
    from ganlab.evaluation.faces import face_judge

    assert face_judge().domain_probs(foxes).argmax(1).tolist() == [2, 2, 2]  # wild
    pay, labels = chapter.payoff_figure(T, n=3)
    assert pay.shape == (18, 3, 16, 16) and len(labels) == 6 and torch.equal(pay[15:], foxes)
    assert torch.equal(pay[9:12], chapter.references(3, 16, "dog"))  # the dog row's references
    with pytest.raises(ValueError, match="unknown kind 'unicorn'"):
        chapter.kind_references(1, 16, "unicorn")


def _same_nets(seed: int = 0):
    """The smoke recipe's Translator and D, and a StarGANv2 holding copies of them."""
    recipe, cfg = chapter.recipe_and_config("smoke", progress=False)
    torch.manual_seed(seed)
    modules = recipe.build()
    T, D = modules["G"], modules["D"]
    model = M.StarGANv2(
        16, 3, recipe.latent_dim, recipe.style_dim, recipe.hidden_dim,
        recipe.dim_in, recipe.max_conv_dim, recipe.repeat_num,
    )  # fmt: skip
    for name, net in (("generator", T.generator), ("mapping_network", T.mapping_network),
                      ("style_encoder", T.style_encoder), ("discriminator", D)):  # fmt: skip
        getattr(model, name).load_state_dict(net.state_dict())
    return recipe, cfg, modules, model


def test_the_loop_step_makes_the_official_updates():
    """One step of the recipe (one Adam, three groups) moves every parameter exactly as the
    model's ``train_step`` (four official Adams) on the same batch."""
    recipe, cfg, modules, model = _same_nets()
    torch.manual_seed(5)
    ctx = StepContext(0, 8, torch.device("cpu"), modules, modules,
                      recipe.optimizers(modules, torch.device("cpu")),
                      recipe.data(torch.device("cpu")), False, 10)  # fmt: skip
    inp = recipe.batch(ctx)
    recipe.batch = lambda ctx: inp  # the step reads this very batch
    before = {k: v.clone() for k, v in model.state_dict().items() if "_ema." not in k}
    recipe.step(ctx)
    args = recipe.weights_at(0, 10)
    M.train_step(model, M.build_optimizers(model), args, **inp)
    ours = {**{f"{k}": v for k, v in modules["G"].state_dict().items()},
            **{f"discriminator.{k}": v for k, v in modules["D"].state_dict().items()}}  # fmt: skip
    theirs = {k: v for k, v in model.state_dict().items() if "_ema." not in k}
    assert set(ours) == set(theirs)
    for k in ours:  # the updates agree (F's are ~1e-6: compare the steps, not the weights)
        if ours[k].is_floating_point():
            step_ours, step_theirs = ours[k] - before[k], theirs[k] - before[k]
            torch.testing.assert_close(step_ours, step_theirs, rtol=1e-4, atol=1e-10, msg=k)


def test_reference_step_updates_g_alone_and_f_learns_100x_slower():
    recipe, cfg, modules, _ = _same_nets()
    opts = recipe.optimizers(modules, torch.device("cpu"))
    lrs = [g["lr"] for g in opts["G"].param_groups]
    assert lrs == [M.LR, M.F_LR, M.LR]
    assert all(g["betas"] == M.BETAS and g["weight_decay"] == M.WEIGHT_DECAY
               for o in opts.values() for g in o.param_groups)  # fmt: skip
    before = copy.deepcopy(modules["G"].state_dict())
    ctx = StepContext(0, 8, torch.device("cpu"), modules, modules, opts,
                      recipe.data(torch.device("cpu")), False, 10)  # fmt: skip
    recipe.step(ctx)
    for part in ("generator", "mapping_network", "style_encoder"):
        moved = [not torch.equal(v, before[k]) for k, v in modules["G"].state_dict().items()
                 if k.startswith(part) and v.is_floating_point()]  # fmt: skip
        assert any(moved), part
    # Adam's step counts: G stepped twice (latent + reference), F and E once
    counts = {}
    for group, part in zip(opts["G"].param_groups, ("G", "F", "E")):
        counts[part] = {int(opts["G"].state[p]["step"]) for p in group["params"]}
    assert counts == {"G": {2}, "F": {1}, "E": {1}}


def test_batches_pair_two_references_of_one_target_domain():
    recipe, _ = chapter.recipe_and_config("smoke", progress=False, flip=False)
    k, n = 3, 5
    # every face of domain d is the constant image d: a drawn row reveals its domain
    data = torch.arange(k, dtype=torch.uint8)[:, None, None, None, None].expand(k, n, 3, 4, 4)
    T = M.Translator(16, 3, latent_dim=8, style_dim=16, hidden_dim=32, dim_in=8)
    ctx = StepContext(0, 64, torch.device("cpu"), {}, {"G": T}, {}, data, False, 10)
    inp = recipe.batch(ctx)
    dom = lambda x: torch.round((x[:, 0, 0, 0] + 1) * 127.5).long()  # noqa: E731
    assert torch.equal(dom(inp["x_real"]), inp["y_org"])
    assert torch.equal(dom(inp["x_ref"]), inp["y_trg"]) and torch.equal(
        dom(inp["x_ref2"]), inp["y_trg"]
    )
    assert set(inp["y_org"].tolist()) == set(inp["y_trg"].tolist()) == {0, 1, 2}
    assert inp["z_trg"].shape == (64, 8) and not torch.equal(inp["z_trg"], inp["z_trg2"])


def test_lambda_ds_decays_linearly_to_zero_over_the_run():
    recipe, _ = chapter.recipe_and_config("cpu", progress=False)
    assert recipe.lambda_ds == M.LAMBDA_DS["afhq"] == 2.0
    assert recipe.weights_at(0, 4000).lambda_ds == 2.0
    assert recipe.weights_at(2000, 4000).lambda_ds == pytest.approx(1.0)
    assert recipe.weights_at(3999, 4000).lambda_ds == pytest.approx(2.0 / 4000)
    with pytest.raises(ValueError, match="lambda_ds must be a finite number"):
        chapter.recipe_and_config("smoke", lambda_ds=-1.0)


def test_lambda_options_train_the_ablations_runs(tmp_path, capsys):
    """``--lambda-ds 0 --lambda-cyc 0`` (the ablation's pieces taken out): recorded in the
    run's config, and the step's weights are zero; a negative weight is refused, named."""
    out = tmp_path / "ablated"
    args = ["train", "stargan-v2", "--profile", "smoke", "--steps", "1", "--out", str(out)]
    argv = [*args, "--lambda-ds", "0", "--lambda-cyc", "0", "--lambda-sty", "2"]
    assert main([*argv, "--repeat-num", "0"]) == 0
    cfg = ckpt.read_meta(out / "generator.safetensors")["config"]
    assert (cfg["lambda_ds"], cfg["lambda_cyc"], cfg["lambda_sty"]) == (0.0, 0.0, 2.0)
    assert cfg["repeat_num"] == 0  # G keeps the full 16 px: no down/up blocks
    recipe, _ = chapter.recipe_and_config("smoke", lambda_ds=0.0, lambda_cyc=0.0)
    w = recipe.weights_at(0, 10)
    assert (w.lambda_ds, w.lambda_cyc, w.lambda_sty) == (0.0, 0.0, 1.0)
    assert main([*args, "--lambda-cyc", "-1", "--overwrite"]) == 2
    assert "lambda_cyc must be a finite number >= 0" in capsys.readouterr().err
    assert "f_lr" not in cfg  # the official rate is not recorded
    fast = tmp_path / "fast_f"
    assert main([*args[:-1], str(fast), "--f-lr", "1e-4"]) == 0
    assert ckpt.read_meta(fast / "generator.safetensors")["config"]["f_lr"] == 1e-4
    recipe, _ = chapter.recipe_and_config("smoke", f_lr=1e-4)
    groups = recipe.optimizers(recipe.build(), torch.device("cpu"))["G"].param_groups
    assert [g["lr"] for g in groups] == [M.LR, 1e-4, M.LR]  # G, F, E
    assert main([*args, "--f-lr", "0", "--overwrite"]) == 2
    assert "f_lr must be a finite number > 0" in capsys.readouterr().err


def test_profiles_keep_the_official_batch_and_fit_the_size_budget():
    for name, profile in chapter.PROFILES.items():
        if name != "smoke":
            assert profile.loop.batch_size >= M.BATCH_SIZE  # the trap: batch 4 trains badly
    recipe, cfg = chapter.recipe_and_config("cpu", progress=False)
    assert cfg.compile is False and recipe.img_size == 32
    T = recipe.generator_spec().build()
    assert sum(p.numel() for p in T.parameters()) * 2 < 10 * 2**20  # float16 under 10 MiB
    assert T.generator.widths == [16, 32]  # capped, not 512 everywhere at 32 px
    assert T.generator.repeat_num == 1  # the official log2(S) - 4: the bottleneck at 16 px


def test_sample_evaluate_and_bench_commands(run, tmp_path, capsys):
    weights = str(run / "generator.safetensors")
    png = tmp_path / "s.png"
    base = ["sample", "stargan-v2", "--weights", weights, "--out", str(png), "--n", "3"]
    assert main([*base, "--domain", "dog", "--domain", "wild"]) == 0
    assert Image.open(png).size == (3 * 18 + 2, 3 * 18 + 2)  # sources + 2 domains, 3 each
    ref = tmp_path / "ref.png"
    Image.fromarray(((chapter.references(1, 16, "wild")[0].permute(1, 2, 0) + 1) * 127.5)
                    .round().byte().numpy()).save(ref)  # fmt: skip
    assert main([*base, "--reference", str(ref)]) == 0
    assert "one row per reference" in capsys.readouterr().out
    assert Image.open(png).size == (3 * 18 + 2, 2 * 18 + 2)
    assert main([*base, "--reference", str(tmp_path / "missing.png")]) == 2
    assert "--reference" in capsys.readouterr().err
    (tmp_path / "notes.png").write_text("not an image")
    assert main([*base, "--reference", str(tmp_path / "notes.png")]) == 2
    assert "not a readable image" in capsys.readouterr().err
    assert main([*base, "--reference", str(ref), "--domain", "dog", "--domain", "cat"]) == 2
    assert "one per --reference" in capsys.readouterr().err
    assert main([*base, "--domain", "fox"]) == 2  # argparse names the choices
    assert "invalid choice" in capsys.readouterr().err
    assert main(["evaluate", "stargan-v2", "--weights", weights, "--n", "2", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    for mode in ("latent", "reference"):
        r = result[mode]
        assert r["n_outputs"] == 6 * 2 * 10 and r["chance"] == pytest.approx(1 / 3)
        assert set(r["frechet_distance"]) == {"cat", "dog", "wild"}
        assert {"domain_accuracy", "diversity", "pose_preservation"} <= set(r)
    assert main(["bench", "stargan-v2", "--profile", "smoke", "--steps", "1", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["images_per_second"] > 0


def test_resume_continues_the_same_run(tmp_path):
    recipe, cfg = chapter.recipe_and_config("smoke", steps=2, out=str(tmp_path), progress=False)
    Trainer(recipe, cfg, device="cpu").fit()
    recipe, cfg = chapter.recipe_and_config(
        "smoke", steps=3, out=str(tmp_path), resume=True, progress=False
    )
    trainer = Trainer(recipe, cfg, device="cpu")
    assert trainer.fit().step == 3


@pytest.mark.filterwarnings("ignore:feats_a has n")
def test_the_runs_table_measures_a_run_and_replaces_its_row(run, tmp_path):
    from ganlab.experiments import stargan_runs

    table = tmp_path / "runs.json"
    weights = run / "generator.safetensors"
    row = stargan_runs.add_row(table, "smoke", weights, "ganlab train stargan-v2", n=2)
    assert row["steps"] == 4 and row["lambda_ds"] == chapter.PROFILES["smoke"].model.lambda_ds
    for mode in ("latent", "reference"):
        m = row[mode]
        assert m["n_outputs"] == 3 * 2 * 2 * 10  # 6 pairs x 2 sources x 10 outputs
        assert m["mean_fd"] == pytest.approx(sum(m["frechet_distance"].values()) / 3)
        assert 0 <= m["domain_accuracy"] <= 1 and m["chance"] == pytest.approx(1 / 3)
        assert -1 <= m["yaw_correlation"] <= 1 and m["diversity"] > 0
    again = stargan_runs.add_row(table, "smoke", weights, "the same run", n=2)
    doc = json.loads(table.read_text())
    assert [r["label"] for r in doc["rows"]] == ["smoke"]
    assert doc["rows"][0]["command"] == "the same run"
    assert again["latent"]["mean_fd"] == pytest.approx(row["latent"]["mean_fd"])  # seeded
    assert row["source_dependence"] > 0 and row["source_dependence_n"] == 64
    argv = ["--label", "cli", "--weights", str(weights), "--command", "c", "--n", "2"]
    assert stargan_runs.main([*argv, "--table", str(table)]) == 0
    doc = json.loads(table.read_text())
    assert [r["label"] for r in doc["rows"]] == ["smoke", "cli"]
    doc["rows"] = doc["rows"][:1]
    text = stargan_runs.format_table(doc)
    assert text.count("\n") == 2 and "smoke" in text and "reference" in text
    assert f"{row['source_dependence']:7.3f}" in text


def test_source_dependence_reads_whether_g_uses_its_source(run):
    """1 for a G that returns its source, 0 for one that draws a template whatever the source;
    the trained smoke model lies in between."""
    T, _ = chapter.load_translator(run / "generator.safetensors")

    class Copy(torch.nn.Module):
        def forward(self, x, s):
            return x

    class Template(torch.nn.Module):
        def forward(self, x, s):
            return torch.zeros_like(x) + s[:, :1, None, None]

    real = T.generator
    T.generator = Copy()
    assert chapter.source_dependence(T, n=8) == pytest.approx(1.0)
    T.generator = Template()
    assert chapter.source_dependence(T, n=8) == 0.0
    T.generator = real
    assert 0 < chapter.source_dependence(T, n=8) < 10
