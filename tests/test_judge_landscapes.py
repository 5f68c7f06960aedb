"""The shipped landscape judge: checksum, size, manifest numbers re-measured, the metric's
power to tell a matching map from another scene's map, features for the Frechet distance."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import ganlab.weights as weights
from ganlab.data.landscapes import load_landscapes
from ganlab.errors import CheckpointError, DtypeError
from ganlab.judges.landscapes import (
    EVAL_N,
    MODEL,
    SHIPPED,
    held_out_scores,
    judge_maps,
    load_landscape_judge,
)
from ganlab.metrics import frechet_distance
from ganlab.train import checkpoint as ckpt


@pytest.fixture(scope="module")
def judge():
    return load_landscape_judge()


def test_shipped_file_checksum_size_and_manifest():
    path = weights.shipped(SHIPPED)
    assert weights.verify_sha256(SHIPPED)
    assert path.stat().st_size < 2_000_000
    doc = weights.manifest(SHIPPED)
    assert doc["model"] == MODEL and doc["kind"] == "judge"
    m = doc["manifest"]
    assert m["chapter"] == "judge:landscapes" and m["stored_dtype"] == "float16"
    assert m["command"].startswith("python -m ganlab.judges.landscapes")
    assert set(m["metrics"]) == {"test_64px", "test_32px"}
    tensors, _ = ckpt.load_state(path)
    assert {v.dtype for v in tensors.values() if v.is_floating_point()} == {torch.float16}


@pytest.mark.parametrize("size", [64, 32])
def test_held_out_scores_are_re_measured_as_the_manifest_says(judge, size):
    recorded = weights.manifest(SHIPPED)["manifest"]["metrics"][f"test_{size}px"]
    got = held_out_scores(judge, size, n=EVAL_N)
    assert got["n"] == recorded["n"] == EVAL_N
    assert got["miou"] == pytest.approx(recorded["miou"], abs=0.005)
    assert got["accuracy"] == pytest.approx(recorded["accuracy"], abs=0.005)
    assert got["miou"] > 0.8 and got["accuracy"] > 0.9, got


def test_the_protocol_tells_the_right_map_from_another_scenes(judge):
    data = load_landscapes(60, "test", 32, progress=False)
    images, labels = data.float_images(), data.labels
    right = judge_maps(judge, images, labels)
    wrong = judge_maps(judge, images, labels.roll(1, dims=0))
    assert right["miou"] > wrong["miou"] + 0.4, (right["miou"], wrong["miou"])
    with pytest.raises(ValueError, match="one map of the same size"):
        judge_maps(judge, images, labels[:5])


def test_features_rank_real_above_degraded_images(judge):
    test = load_landscapes(300, "test", 32, progress=False).float_images()
    train = load_landscapes(300, "train", 32, seed=1, progress=False).float_images()
    small = F.interpolate(test, scale_factor=0.25, mode="bilinear", antialias=True)
    quarter = F.interpolate(small, size=(32, 32), mode="bilinear")
    f_test, f_train, f_quarter = (judge.embed_images(x) for x in (test, train, quarter))
    assert f_test.shape == (300, judge.feature_dim) == (300, 128)
    real_vs_real = frechet_distance(f_train, f_test)
    assert frechet_distance(f_quarter, f_test) > 3 * real_vs_real


def test_inputs_are_checked(judge):
    with pytest.raises(DtypeError, match="float"):
        judge(torch.zeros(1, 3, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="square"):
        judge(torch.zeros(1, 3, 32, 48))
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        judge(torch.full((1, 3, 32, 32), 200.0))
    assert judge(torch.zeros(2, 3, 16, 16)).shape == (2, 10, 16, 16)
    with pytest.raises(CheckpointError, match="not a judges.LandscapeJudge"):
        load_landscape_judge(weights.shipped("bird_judge"))
