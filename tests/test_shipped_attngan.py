"""The shipped AttnGAN generators, re-measured on CPU with the DAMSM encoders and the judge.

Shipped: AttnGAN (the cpu profile: 8 -> 16 -> 32 px on the birds cropped tight before plain
backgrounds, lambda = 5), the snapshot of its run that scored best on training captions
(``ganlab ship --pick-snapshot``), and the no-DAMSM ablation trained alike (lambda = 0) and
taken at the same step, so that the two differ by the DAMSM term alone. Every number must
agree with what the manifest recorded at shipping time (1,000 captions; here 300). The
paper's claims are tested on the same captions and the same encoders: AttnGAN's R-precision
beats StackGAN's (chapter 3's shipped Stage-II, and its Stage-I upsampled), and the DAMSM
term is what raises it.
"""

from __future__ import annotations

import pytest

from ganlab.chapters import attngan as chapter
from ganlab.chapters import stackgan
from ganlab.chapters.contract import world_of
from ganlab.weights import manifest, shipped, verify_sha256

N = 300  # test captions, one image each (the manifests measured 1,000)
NAMES = (chapter.SHIPPED, chapter.SHIPPED_NO_DAMSM)


@pytest.fixture(scope="module")
def measured():
    G_stack = stackgan.load_generator(stage=2)[0]
    models = {
        chapter.SHIPPED: chapter.load_generator()[0],
        chapter.SHIPPED_NO_DAMSM: chapter.load_generator(shipped(chapter.SHIPPED_NO_DAMSM))[0],
    }
    out = {
        name: chapter.evaluate_generator(G, n=N, split="test", **world_of(manifest(name)))
        for name, G in models.items()
    }
    stack_world = world_of(manifest("stackgan_stage2"))  # each model meets its own world
    out["stackgan_stage2"] = stackgan.evaluate_generator(G_stack, n=N, **stack_world)
    out["stackgan_stage1"] = stackgan.evaluate_generator(G_stack.stage1, n=N, **stack_world)
    return out


def _r(result) -> tuple[float, float]:
    return result["r_precision"]["value"], result["r_precision"]["std"]


def test_checksums_and_manifests():
    recipe, loop = chapter.recipe_and_config("cpu")
    for name in NAMES:
        verify_sha256(name)
        meta = manifest(name)
        m = meta["manifest"]
        assert {"command", "steps", "seconds", "device", "metrics", "n_eval"} <= set(m)
        assert m["profile"] == "cpu" and m["n_eval"] == 1000 and m["steps"] <= loop.steps
        config = meta["config"]
        assert (config["num_stages"], config["base_size"]) == (recipe.num_stages, recipe.base_size)
        assert (config["ngf"], config["ndf"]) == (recipe.ngf, recipe.ndf)
        assert m["world"] == {"framing": recipe.framing, "scene": recipe.scene}
    main = manifest(chapter.SHIPPED)["manifest"]
    selection = main["selection"]  # picked on the training split, never the test split
    assert selection["split"] == "train" and selection["n"] >= 500
    scores = {c["steps"]: c["frechet_distance"] for c in selection["candidates"]}
    assert len(scores) >= 10 and min(scores, key=scores.get) == selection["picked_steps"]
    assert main["steps"] == selection["picked_steps"]
    assert manifest(chapter.SHIPPED_NO_DAMSM)["manifest"]["steps"] == main["steps"]  # alike
    assert manifest(chapter.SHIPPED)["config"]["lambda_damsm"] == 5.0
    assert manifest(chapter.SHIPPED_NO_DAMSM)["config"]["lambda_damsm"] == 0.0


def test_payoff_bars_as_measured_at_shipping():
    """Issue 21's bars, as the manifest measured them (n = 1,000): better than a perfect
    16 px generator of its world, not collapsed across seeds, and aligned with its captions
    beyond chance."""
    m = manifest(chapter.SHIPPED)["manifest"]
    test, ladder = m["metrics"]["test"], m["ladder"]
    assert test["frechet_distance"] < ladder["drawn_16_up"], (test, ladder)
    diversity = m["caption_diversity"]
    assert diversity["model"]["judge_features"] >= 0.5 * diversity["real"]["judge_features"]
    assert test["text_alignment"] > test["chance"] + 2 * test["text_alignment_std"]


@pytest.mark.xfail(
    strict=True,
    reason="FD 64.0 (n = 1,000) sits between the blurred-real (48.5) and drawn-at-16-px (95.4) "
    "rungs of its world (the cpu profile's 6,000-step run, its best snapshot by training-split "
    "FD, the last); strict: the mark goes when a model below it ships",
)
def test_fd_below_the_blurred_rung_of_its_world():
    m = manifest(chapter.SHIPPED)["manifest"]
    assert m["metrics"]["test"]["frechet_distance"] < m["ladder"]["box_blur_5x5"]


@pytest.mark.parametrize("name", NAMES)
def test_metrics_agree_with_the_manifest(measured, name):
    recorded = manifest(name)["manifest"]["metrics"]["test"]
    got = measured[name]
    assert got["text_alignment"]["value"] == pytest.approx(recorded["text_alignment"], abs=0.04)
    # FD on 300 of the 1,000 captions: its bias grows as n shrinks, and real birds against
    # real birds carry the same bias; so compare each FD above its own sample's real-vs-real
    # floor, within 15% (as test_shipped_stackgan does)
    fd, floor = got["frechet_distance"]["value"], got["frechet_distance"]["real_vs_real"]
    above = recorded["frechet_distance"] - recorded["real_vs_real"]
    assert fd - floor == pytest.approx(above, rel=0.15), (fd, floor, recorded)
    r, std = _r(got)  # std: across 10 folds of the 300 images
    assert r == pytest.approx(recorded["r_precision"], abs=max(0.03, 3 * std)), (r, recorded)


def test_attngan_beats_stackgan_on_r_precision(measured):
    r_attn, std_attn = _r(measured[chapter.SHIPPED])
    for name in ("stackgan_stage2", "stackgan_stage1"):
        r_stack, std_stack = _r(measured[name])
        assert r_attn > r_stack + 2 * max(std_attn, std_stack), (r_attn, name, r_stack)


def test_the_damsm_term_raises_r_precision(measured):
    r_attn, std_attn = _r(measured[chapter.SHIPPED])
    r_none, std_none = _r(measured[chapter.SHIPPED_NO_DAMSM])
    assert r_attn > r_none + 2 * max(std_attn, std_none), (r_attn, r_none)
