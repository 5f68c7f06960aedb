"""The shipped digit judge: checksum, manifest, re-measured accuracy, input checks, and the
discriminating power of the metrics computed in its features."""

import hashlib
import json
import shutil

import pytest
import torch
import torch.nn.functional as F

import ganlab.weights as weights
from ganlab.data.digits import load_digits
from ganlab.errors import CheckpointError
from ganlab.judges.digits import (
    MODEL,
    SHIPPED,
    DigitJudge,
    judge_in_batches,
    load_digit_judge,
    save_digit_judge,
)
from ganlab.metrics import DtypeError, conditional_accuracy, frechet_distance
from ganlab.metrics import kernel_inception_distance as kid
from ganlab.train import checkpoint as ckpt

MANIFEST_KEYS = {
    "chapter", "profile", "command", "steps", "seconds", "device", "metrics", "seed",
    "created", "torch",
}  # fmt: skip


@pytest.fixture(scope="module")
def judge():
    return load_digit_judge()


@pytest.fixture(scope="module")
def test_digits(judge):
    x, y = load_digits("test")
    feats, logits = judge_in_batches(judge, x)
    return x, y, feats, logits


def test_manifest_and_sha256():
    path = weights.shipped(SHIPPED)
    doc = weights.manifest(SHIPPED)
    assert doc["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert weights.verify_sha256(SHIPPED) == doc["sha256"]
    assert doc["model"] == MODEL and doc["kind"] == "judge"
    manifest = doc["manifest"]
    assert MANIFEST_KEYS <= set(manifest)
    assert manifest["chapter"] == "judge:digits" and manifest["profile"] == "cpu"
    assert manifest["command"].startswith("python -m ganlab.judges.digits --train")
    # the sidecar repeats the header of the safetensors file, plus the checksum
    assert ckpt.read_meta(path) == {k: v for k, v in doc.items() if k != "sha256"}


def test_verify_sha256_catches_a_changed_file(tmp_path, monkeypatch):
    for suffix in (".safetensors", ".json"):
        src = weights.shipped(SHIPPED).with_suffix(suffix)
        shutil.copy(src, tmp_path / src.name)
    monkeypatch.setattr(weights, "HERE", tmp_path)
    weights.verify_sha256(SHIPPED)  # an intact copy passes
    with open(tmp_path / f"{SHIPPED}.safetensors", "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0xFF]))
    with pytest.raises(CheckpointError, match="sha256"):
        weights.verify_sha256(SHIPPED)
    with pytest.raises(CheckpointError, match="no shipped weights"):
        weights.shipped("no_such_weights")


def test_held_out_accuracy_is_re_measured(judge, test_digits):
    x, y, feats, logits = test_digits
    assert len(y) == 1000 and not judge.training
    accuracy = conditional_accuracy(logits, y)
    assert accuracy >= 0.97, f"held-out accuracy {accuracy:.4f} < 0.97"
    recorded = weights.manifest(SHIPPED)["manifest"]["metrics"]["held_out_accuracy"]
    assert recorded["n"] == 1000
    assert accuracy == pytest.approx(recorded["value"], abs=0.003)


def test_features_and_logits_shapes(judge, test_digits):
    x, _, feats, logits = test_digits
    assert feats.shape == (1000, judge.feature_dim) == (1000, 128)
    assert logits.shape == (1000, 10) and feats.dtype == torch.float32
    with torch.no_grad():
        assert torch.allclose(judge(x[:7]), logits[:7], atol=1e-5)
        assert torch.allclose(judge.features(x[:7]), feats[:7], atol=1e-5)


@pytest.mark.parametrize(
    "images,error,match",
    [
        (torch.zeros(4, 28, 28), ValueError, r"\(N, 1, 28, 28\)"),
        (torch.zeros(4, 3, 28, 28), ValueError, r"\(N, 1, 28, 28\)"),
        (torch.zeros(4, 1, 32, 32), ValueError, r"\(N, 1, 28, 28\)"),
        (torch.randint(0, 256, (4, 1, 28, 28), dtype=torch.uint8), DtypeError, "uint8"),
        (torch.rand(4, 1, 28, 28) * 255, ValueError, r"\[-1, 1\]"),
        (torch.full((4, 1, 28, 28), float("nan")), ValueError, "NaN"),
        (torch.zeros(4, 1, 28, 28).numpy(), DtypeError, "torch.Tensor"),
    ],
)
def test_bad_inputs_raise_clear_errors(judge, images, error, match):
    with pytest.raises(error, match=match):
        judge(images)
    with pytest.raises(error, match=match):
        judge.features(images)


def test_uint8_error_is_a_value_error_too(judge):
    with pytest.raises(ValueError, match="127.5"):
        judge(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))


def test_load_rejects_weights_of_another_model(tmp_path):
    path = tmp_path / "other.safetensors"
    ckpt.save_state(path, {"w": torch.zeros(2)}, {"model": "cgan.ConvGenerator"})
    with pytest.raises(CheckpointError, match="DigitJudge"):
        load_digit_judge(path)


def test_save_and_load_round_trip(tmp_path, judge):
    report = {
        "steps": 1, "epochs": 1, "seconds": 0.0, "seed": 0, "device": "cpu",
        "held_out_accuracy": {"value": 0.5, "n": 1000},
    }  # fmt: skip
    path = save_digit_judge(judge, tmp_path / "j.safetensors", report, "test")
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    again = load_digit_judge(path)
    x = torch.rand(3, 1, 28, 28) * 2 - 1
    with torch.no_grad():
        assert torch.equal(again(x), judge(x))
    assert isinstance(again, DigitJudge) and not again.training


def test_frechet_and_kid_in_judge_features_discriminate(judge, test_digits):
    """Real vs real (two halves of the held-out digits) must score far below real vs
    blurred digits, which must score far below real vs noise."""
    x, _, feats, _ = test_digits
    gen = torch.Generator().manual_seed(0)
    perm = torch.randperm(len(x), generator=gen)
    a, b = perm[:500], perm[500:]
    kernel = torch.tensor([1.0, 4, 6, 4, 1])
    kernel = (kernel[:, None] * kernel[None]) / 256  # 5x5 binomial blur
    blurred = F.conv2d(F.pad(x[b], (2, 2, 2, 2), value=-1.0), kernel[None, None])
    noise = torch.rand(500, 1, 28, 28, generator=gen) * 2 - 1
    f_blur, _ = judge_in_batches(judge, blurred)
    f_noise, _ = judge_in_batches(judge, noise)
    fd_real = frechet_distance(feats[a], feats[b])
    fd_blur = frechet_distance(feats[a], f_blur)
    fd_noise = frechet_distance(feats[a], f_noise)
    assert fd_blur > 5 * fd_real, (fd_real, fd_blur)
    assert fd_noise > 10 * fd_blur, (fd_blur, fd_noise)
    kid_real, kid_real_std = kid(feats[a], feats[b], subsets=20, subset_size=250)
    kid_blur, _ = kid(feats[a], f_blur, subsets=20, subset_size=250)
    assert abs(kid_real) < 3 * kid_real_std + 0.05  # unbiased: about 0 for real vs real
    assert kid_blur > 10 * max(kid_real, 0.05)
