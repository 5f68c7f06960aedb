"""The shipped GAN-INT-CLS generators, re-measured on CPU with the bird judge.

What is shipped is a short CPU run (8,000 steps at 32 px) and, trained the same way, the
same architecture without text (``gan_int_cls_no_text``). The main model's text alignment
must beat both the no-text model and chance by ``MARGIN`` on held-out test captions, and
agree with what its manifest recorded. The five comparison models of the lecture (2,000
steps each) are checked for integrity.
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
    assert manifest("gan_int_cls")["manifest"]["steps"] == 8000
    assert manifest("gan_int_cls_no_text")["manifest"]["steps"] == 8000


def test_text_alignment_beats_no_text_and_chance(measured):
    main, base = measured["main"]["text_alignment"], measured["no-text"]["text_alignment"]
    assert main["n_named"] > 300
    assert main["value"] > base["value"] + MARGIN, (main["value"], base["value"])
    assert main["value"] > main["chance"] + MARGIN, (main["value"], main["chance"])


def test_main_model_agrees_with_its_manifest(measured):
    recorded = manifest("gan_int_cls")["manifest"]["metrics"]["test"]["text_alignment"]
    got = measured["main"]["text_alignment"]["value"]
    assert got == pytest.approx(recorded, abs=0.04)  # the first 300 of the 1,000 captions
