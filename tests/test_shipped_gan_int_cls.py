"""The shipped GAN-INT-CLS generators, re-measured on CPU with the bird judge.

What is shipped is a CPU run (the cpu profile: 7,000 steps at 32 px, ngf = ndf = 32, on the
world's tight crops before plain backgrounds, lazy R1 gamma 0.1 on D; its step picked by FD
on training captions) and the same architecture without text (``gan_int_cls_no_text``),
trained alike but for R1's gamma (1, the profile's earlier value:
``chapter.COMPARISON_R1_GAMMA``). The main
model's text alignment must beat both the no-text model and chance by ``MARGIN`` on held-out
test captions, and
agree with what its manifest recorded. The five comparison models of the lecture (2,000
steps each, trained alike on the same world) are re-measured against their manifests, and
each of the paper's four must read its captions better than the no-text one.
"""

from __future__ import annotations

import pytest

from ganlab.chapters import gan_int_cls as chapter
from ganlab.chapters.contract import world_of
from ganlab.weights import manifest, shipped, verify_sha256

N = 300  # test captions, one image each
MARGIN = 0.03  # absolute text-alignment points


@pytest.fixture(scope="module")
def measured():
    out = {}
    for name, path in (("main", None), ("no-text", shipped("gan_int_cls_no_text"))):
        G, meta = chapter.load_generator(path)
        text = meta["config"].get("text", True)
        out[name] = chapter.evaluate_generator(G, n=N, split="test", text=text, **world_of(meta))
    return out


def test_checksums_and_manifests():
    names = ["gan_int_cls", "gan_int_cls_no_text"]
    names += [chapter.shipped_variant(v).stem for v in chapter.VARIANT_NAMES]
    for name in names:
        verify_sha256(name)
        assert {"command", "steps", "device", "metrics"} <= set(manifest(name)["manifest"])
    recipe, loop = chapter.recipe_and_config("cpu")  # the profile reproduces the shipped run
    assert manifest("gan_int_cls_no_text")["manifest"]["steps"] == loop.steps == 7000
    main = manifest("gan_int_cls")
    assert main["config"]["r1_gamma"] == recipe.r1_gamma == 0.1
    no_text = manifest("gan_int_cls_no_text")["config"]
    assert no_text["r1_gamma"] == chapter.COMPARISON_R1_GAMMA and not no_text["text"]
    selection = main["manifest"].get("selection")
    if selection is None:  # the run's last step
        assert main["manifest"]["steps"] == loop.steps
    else:  # the snapshot picked on the training split (ganlab ship --pick-snapshot)
        assert main["manifest"]["steps"] == selection["picked_steps"] <= loop.steps


def test_a_picked_snapshot_was_chosen_away_from_the_test_split():
    """``ganlab ship --pick-snapshot``: the shipped step has the lowest judge FD of the run's
    snapshots on training-split captions; the test split's numbers played no part."""
    m = manifest("gan_int_cls")["manifest"]
    selection = m.get("selection")
    if selection is None:
        pytest.skip("the shipped model is its run's last step")
    assert selection["split"] == "train" and selection["n"] >= 500
    assert "--snapshot-every" in m["command"]
    scores = {c["steps"]: c["frechet_distance"] for c in selection["candidates"]}
    assert len(scores) >= 10 and max(scores) <= 7000
    assert min(scores, key=scores.get) == selection["picked_steps"] == m["steps"]


def test_text_alignment_beats_no_text_and_chance(measured):
    main, base = measured["main"]["text_alignment"], measured["no-text"]["text_alignment"]
    assert main["n_named"] > 300
    assert main["value"] > base["value"] + MARGIN, (main["value"], base["value"])
    assert main["value"] > main["chance"] + MARGIN, (main["value"], main["chance"])


def test_main_model_agrees_with_its_manifest(measured):
    recorded = manifest("gan_int_cls")["manifest"]["metrics"]["test"]["text_alignment"]
    got = measured["main"]["text_alignment"]["value"]
    assert got == pytest.approx(recorded, abs=0.04)  # the first 300 of the 1,000 captions


def test_payoff_bars_as_measured_at_shipping():
    """Issue 21's bars for the main model, from its manifest: n = 1,000 test captions, against
    the reference ladder of its own world (tight crops, plain scene) at the same n; per-caption
    diversity on 50 test captions x 16 samples beside real birds matching the same captions."""
    m = manifest("gan_int_cls")["manifest"]
    assert m["world"] == {"framing": "tight", "scene": "plain"}
    fd, ladder = m["metrics"]["test"]["frechet_distance"], m["ladder"]
    assert fd < ladder["drawn_16_up"], (fd, ladder)  # better than a perfect 16 px generator
    diversity = m["caption_diversity"]
    assert diversity["model"]["judge_features"] >= 0.5 * diversity["real"]["judge_features"]
    test = m["metrics"]["test"]
    assert test["text_alignment"] > test["chance"] + 2 * test["text_alignment_std"]
    base = manifest("gan_int_cls_no_text")["manifest"]["metrics"]["test"]
    spread = max(test["text_alignment_std"], base["text_alignment_std"])
    assert test["text_alignment"] > base["text_alignment"] + 2 * spread, (test, base)


def test_fd_below_the_blurred_rung_of_its_world():
    """Issue 21's bar, from the manifest: the shipped model is nearer its world's real birds
    than a blurred real bird is (FD 40.7 against 48.5 at shipping, n = 1,000 each)."""
    m = manifest("gan_int_cls")["manifest"]
    assert m["metrics"]["test"]["frechet_distance"] < m["ladder"]["box_blur_5x5"]


def test_caption_diversity_re_measured():
    """Re-measured on 10 captions x 8 samples: not collapsed across seeds (at least half of
    real birds' spread for the same captions)."""
    G, meta = chapter.load_generator()
    got = chapter.CHAPTER.caption_diversity(G, meta, n_captions=10, per_caption=8)
    assert got["model"]["judge_features"] >= 0.5 * got["real"]["judge_features"], got


def test_the_comparison_models_are_trained_alike_on_the_laptops_world():
    """The lecture's five comparison models (section 9): the cpu profile's recipe (widths,
    size) on its world with R1 gamma ``COMPARISON_R1_GAMMA``, ``COMPARISON_STEPS`` steps each,
    text only where named."""
    recipe, _ = chapter.recipe_and_config("cpu")
    for name in chapter.VARIANT_NAMES:
        shipped_model = manifest(chapter.shipped_variant(name).stem)
        m, cfg = shipped_model["manifest"], shipped_model["config"]
        assert m["steps"] == chapter.COMPARISON_STEPS and m["n_eval"] == 1000, name
        assert m["world"] == {"framing": recipe.framing, "scene": recipe.scene}, name
        assert (cfg["ngf"], cfg["ndf"], cfg["image_size"], cfg["r1_gamma"]) == (
            recipe.ngf, recipe.ndf, recipe.image_size, chapter.COMPARISON_R1_GAMMA,
        ), name  # fmt: skip
        assert cfg["text"] == (name != "no-text"), name
        assert cfg["variant"] == ("gan" if name == "no-text" else name), name


@pytest.mark.parametrize("name", chapter.VARIANT_NAMES)
def test_each_comparison_model_re_measured_agrees_with_its_manifest(name):
    """Text alignment on the first 200 of the manifest's 1,000 test captions, within 0.06
    (about three times the spread of 200 captions' mean)."""
    G, meta = chapter.load_generator(chapter.shipped_variant(name))
    text = meta["config"]["text"]
    got = chapter.evaluate_generator(G, n=200, split="test", text=text, **world_of(meta))
    recorded = meta["manifest"]["metrics"]["test"]["text_alignment"]
    assert got["text_alignment"]["value"] == pytest.approx(recorded, abs=0.06), name


def test_every_text_model_of_the_comparison_beats_the_no_text_baseline():
    """Issue 21's bar for the lecture's comparison: at 2,000 steps on the laptop's world, each
    of the paper's four models reads its captions (text alignment, n = 1,000) above the
    no-text model trained alike, by at least 2 fold-standard-deviations."""
    metrics = {
        name: manifest(chapter.shipped_variant(name).stem)["manifest"]["metrics"]["test"]
        for name in chapter.VARIANT_NAMES
    }
    base = metrics.pop("no-text")
    assert abs(base["text_alignment"] - base["chance"]) < 2 * base["text_alignment_std"]
    for name, m in metrics.items():
        spread = max(m["text_alignment_std"], base["text_alignment_std"])
        assert m["text_alignment"] > base["text_alignment"] + 2 * spread, (name, m, base)
