"""The shipped StyleGAN (cpu profile, 32 px), re-measured on CPU with the face judge against
what its manifest recorded at shipping time: Frechet distance, and the style-mixing table
(coarse styles carry pose, fine styles carry colour)."""

from __future__ import annotations

import pytest
import torch

from ganlab.chapters import stylegan as chapter
from ganlab.weights import HERE, manifest, verify_sha256

SHIPPED = (HERE / f"{chapter.SHIPPED}.safetensors").exists()
needs_weights = pytest.mark.skipif(
    not SHIPPED,
    reason="StyleGAN weights not shipped yet: ganlab train stylegan --profile cpu --out "
    "runs/stylegan, then ganlab ship stylegan runs/stylegan --n 1000",
)


@pytest.fixture(scope="module")
def shipped():
    return chapter.load_generator()


@pytest.fixture(scope="module")
def measured(shipped):
    G, meta = shipped
    return chapter.CHAPTER.evaluate_generator(G, meta, n=chapter.RECHECK_N)


@pytest.fixture(scope="module")
def mixing(shipped):
    G, _ = shipped
    return chapter.mixing_table(G, chapter.MIXING_N, 0)


@needs_weights
def test_checksum_and_manifest():
    verify_sha256(chapter.SHIPPED)
    meta = manifest(chapter.SHIPPED)
    m = meta["manifest"]
    assert {"command", "steps", "seconds", "device", "metrics", "n_eval", "mixing"} <= set(m)
    # the run may be shorter than the profile's (--steps): the lecture prints its own length
    assert m["profile"] == "cpu" and 0 < m["steps"] <= chapter.PROFILES["cpu"].loop.steps
    assert m["metrics"]["recheck"]["n"] == chapter.RECHECK_N
    assert meta["config"]["resolution"] >= 32


@needs_weights
def test_samples_are_faces_that_differ(shipped):
    G, _ = shipped
    x = chapter.generate(G, 16, seed=0)
    assert x.shape[:2] == (16, 3) and torch.isfinite(x).all()
    assert x.std(0).mean() > 0.05  # no collapse to one image


@needs_weights
def test_metrics_agree_with_the_manifest(measured):
    recorded = manifest(chapter.SHIPPED)["manifest"]["metrics"]["recheck"]
    fd = measured["frechet_distance"]["value"]
    assert fd == pytest.approx(recorded["frechet_distance"], rel=0.02), (fd, recorded)


@needs_weights
def test_samples_beat_an_untrained_generator(measured, shipped):
    G, meta = shipped
    fd = measured["frechet_distance"]
    spec = dict(manifest(chapter.SHIPPED)["generator"]["kwargs"])
    untrained = type(G)(**spec).eval()
    floor = chapter.CHAPTER.evaluate_generator(untrained, meta, n=200)["frechet_distance"]
    assert fd["real_vs_real"] < fd["value"] < 0.5 * floor["value"], (fd, floor)


@needs_weights
def test_mixing_table_agrees_with_the_manifest(mixing):
    recorded = manifest(chapter.SHIPPED)["manifest"]["mixing"]["table"]
    for band, row in recorded.items():
        for group, value in row.items():
            assert mixing["table"][band][group] == pytest.approx(value, abs=0.02), (band, group)


@needs_weights
def test_fine_styles_carry_colour_more_than_the_others(mixing):
    """The paper's Fig. 3, fine row, read by the judge: B's fine styles bring B's colours far
    more often than B's coarse or middle styles do."""
    table = mixing["table"]
    assert table["fine"]["colours"] > table["coarse"]["colours"] + 0.2, table
    assert table["fine"]["colours"] > table["middle"]["colours"] + 0.2, table


@needs_weights
@pytest.mark.xfail(
    strict=True,
    reason="the fine styles bring B's colours in 0.36 of 200 mixes (coarse 0.14, middle 0.12): "
    "colour is spread over the bands at 32 px, background most (fine 0.27). The gamma-1 run "
    "shipped before read 0.62 here, with samples close to one template (FD 112.7 vs 90.9)",
)
def test_fine_styles_carry_colour_in_most_mixes(mixing):
    assert mixing["table"]["fine"]["colours"] > 0.5, mixing["table"]


@needs_weights
@pytest.mark.xfail(
    strict=True,
    reason="at 32 px without progressive growing the fine styles re-decide the pose: a turn of "
    "the head moves the features 2-3 px, within the last two layers' reach (the lecture, "
    "section 7, measures both). The shipped run reads coarse / fine pose 0.47 / 0.45 (200 "
    "pairs): more from the coarse band than the fine, but in fewer than half the mixes; the "
    "gamma-1 run before it read 0.38 / 0.47",
)
def test_coarse_styles_carry_pose(mixing):
    """The paper's Fig. 3, coarse row: B's coarse styles bring B's pose more often than B's
    fine styles do, and in most mixes."""
    table = mixing["table"]
    assert table["coarse"]["pose"] > table["fine"]["pose"], table
    assert table["coarse"]["pose"] > 0.5, table
