"""The shipped face judge: checksum, manifest, held-out scores re-measured, its feature maps,
and the payoff ladder in its features."""

from __future__ import annotations

import pytest
import torch

import ganlab.weights as weights
from ganlab.data.faces import CATEGORIES, CONTINUOUS, DOMAINS, load_faces
from ganlab.experiments.learnability import degraded
from ganlab.judges.faces import (
    CHECK_N,
    CHECK_SIZE,
    MODEL,
    SHIPPED,
    held_out_scores,
    load_face_judge,
)
from ganlab.metrics import frechet_distance


@pytest.fixture(scope="module")
def judge():
    return load_face_judge()


def test_manifest_checksum_and_size():
    doc = weights.manifest(SHIPPED)
    assert weights.verify_sha256(SHIPPED) == doc["sha256"]
    assert doc["model"] == MODEL and doc["kind"] == "judge"
    m = doc["manifest"]
    assert m["stored_dtype"] == "float16" and m["command"].startswith("python -m ganlab.judges")
    assert {"test_64px", "test_32px", "check"} <= set(m["metrics"])
    assert weights.shipped(SHIPPED).stat().st_size < 2_000_000


def test_held_out_scores_are_what_the_manifest_says(judge):
    recorded = weights.manifest(SHIPPED)["manifest"]["metrics"]["check"]
    got = held_out_scores(judge)  # the first 300 test faces at 32 px
    assert (got["n"], got["size"]) == (CHECK_N, CHECK_SIZE) == (recorded["n"], recorded["size"])
    for name in CATEGORIES:
        assert got["accuracy"][name] == pytest.approx(recorded["accuracy"][name], abs=0.02), name
    for name in CONTINUOUS:
        assert got["r2"][name] == pytest.approx(recorded["r2"][name], abs=0.02), name
    # what the chapters lean on: the domain, the pose and the colours are read reliably
    assert got["accuracy"]["domain"] > 0.95 and got["accuracy"]["kind"] > 0.9
    assert min(got["r2"][a] for a in ("yaw", "pitch", "roll")) > 0.8
    assert got["accuracy"]["base"] > 0.8 and got["accuracy"]["background"] > 0.95


def test_features_and_multilayer_maps_have_the_documented_shapes(judge):
    for size in (16, 64, 128):
        x = torch.rand(2, 3, size, size) * 2 - 1
        maps = judge.multilayer_features(x)
        assert [tuple(m.shape) for m in maps] == [
            (2, 32, 32, 32), (2, 64, 16, 16), (2, 128, 8, 8), (2, 160, 4, 4)
        ]  # fmt: skip
        assert judge.features(x).shape == (2, 256)
    out = judge(torch.zeros(1, 3, 32, 32))
    assert set(out) == {*CATEGORIES, "continuous"} and out["continuous"].shape == (1, 11)
    row = judge.read(torch.zeros(1, 3, 32, 32))[0]
    assert row["domain"] in DOMAINS and isinstance(row["yaw"], float)
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        judge.features(torch.zeros(2, 1, 32, 32))


def test_frechet_distance_in_judge_features_orders_the_ladder(judge):
    a = load_faces(CHECK_N, "test", CHECK_SIZE, progress=False).float_images()
    b = load_faces(CHECK_N, "test", CHECK_SIZE, seed=1, progress=False).float_images()
    fa = judge.embed_images(a).numpy()
    real = frechet_distance(judge.embed_images(b).numpy(), fa)
    quarter = frechet_distance(judge.embed_images(degraded(b, "quarter")).numpy(), fa)
    assert real < 0.5 * quarter
