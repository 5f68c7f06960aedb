"""The shipped AttnGAN generators, re-measured on CPU with the DAMSM encoders and the judge.

Shipped: AttnGAN (16 -> 32 -> 64 px, lambda = 5) and the no-DAMSM ablation trained alike
(lambda = 0), both 2,000-step CPU runs. Every number must agree with what the manifest
recorded at shipping time (1,000 captions; here 300). The paper's claims are tested on the
same captions and the same encoders: AttnGAN's R-precision beats StackGAN's (chapter 3's
shipped Stage-II, and its Stage-I upsampled), and the DAMSM term is what raises it.
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
    for name in NAMES:
        verify_sha256(name)
        meta = manifest(name)
        m = meta["manifest"]
        assert {"command", "steps", "seconds", "device", "metrics", "n_eval"} <= set(m)
        assert m["profile"] == "cpu" and m["n_eval"] == 1000 and m["steps"] == 2000
        assert meta["config"]["num_stages"] == 3
    assert manifest(chapter.SHIPPED)["config"]["lambda_damsm"] == 5.0
    assert manifest(chapter.SHIPPED_NO_DAMSM)["config"]["lambda_damsm"] == 0.0


@pytest.mark.parametrize("name", NAMES)
def test_metrics_agree_with_the_manifest(measured, name):
    recorded = manifest(name)["manifest"]["metrics"]["test"]
    got = measured[name]
    assert got["text_alignment"]["value"] == pytest.approx(recorded["text_alignment"], abs=0.04)
    fd = got["frechet_distance"]["value"]  # on 300 of the 1,000 captions: allow 25%
    assert fd == pytest.approx(recorded["frechet_distance"], rel=0.25), (fd, recorded)
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
