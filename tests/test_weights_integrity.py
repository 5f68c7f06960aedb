"""Weights are checked on load: checksums against the sidecar and the index, and hand-made
headers (invalid JSON, a missing key, a negative width) get an error naming the file."""

import json
import shutil
import time

import pytest
import torch
from safetensors.torch import save_file

import ganlab.weights as weights
from ganlab.chapters.cgan import SHIPPED, load_generator
from ganlab.cli import main
from ganlab.errors import CheckpointError
from ganlab.train import checkpoint as ckpt


def flip_last_byte(path):
    with open(path, "r+b") as f:
        f.seek(-1, 2)
        last = f.read(1)
        f.seek(-1, 2)
        f.write(bytes([last[0] ^ 0x01]))


def copy_shipped(name, folder):
    for suffix in (".safetensors", ".json"):
        src = weights.shipped(name).with_suffix(suffix)
        shutil.copy(src, folder / src.name)
    return folder / f"{name}.safetensors"


# ------------------------------------------------------------------ checksums
def test_every_save_records_its_sha256_in_the_sidecar(tmp_path):
    path = ckpt.save_state(tmp_path / "w.safetensors", {"a": torch.ones(3)}, {"kind": "weights"})
    sidecar = json.loads(path.with_suffix(".json").read_text())
    assert sidecar["sha256"] == weights.sha256_of(path)
    assert {k: v for k, v in sidecar.items() if k != "sha256"} == ckpt.read_meta(path)
    assert weights.verify_file(path, ckpt.read_meta(path)) == sidecar["sha256"]


def test_a_bit_flipped_weights_file_is_refused_by_sample_and_evaluate(tmp_path, capsys):
    path = copy_shipped(SHIPPED, tmp_path)  # with its sidecar, which records the sha256
    want = weights.manifest(SHIPPED)["sha256"]
    load_generator(path)  # intact: loads
    flip_last_byte(path)
    got = weights.sha256_of(path)
    with pytest.raises(CheckpointError) as err:
        load_generator(path)
    for part in (str(path), str(path.with_suffix(".json")), want, got):
        assert part in str(err.value)
    png = tmp_path / "s.png"
    assert main(["sample", "cgan", "--weights", str(path), "--out", str(png)]) == 2
    assert f"expected sha256 {want}, got {got}" in capsys.readouterr().err
    assert not png.exists()
    assert main(["evaluate", "cgan", "--weights", str(path), "--n", "10", "--json"]) == 2
    assert "does not match the checksum" in capsys.readouterr().err


def test_shipped_weights_are_verified_on_load_against_sidecar_and_index(tmp_path, monkeypatch):
    path = copy_shipped(SHIPPED, tmp_path)
    monkeypatch.setattr(weights, "HERE", tmp_path)
    index = tmp_path / "manifest.json"
    index.write_text(json.dumps({SHIPPED: {"sha256": "0" * 64}}))
    with pytest.raises(CheckpointError, match=f"recorded in {index}: expected sha256 0000"):
        load_generator()  # the shipped weights, from the (patched) package folder
    index.unlink()
    load_generator()  # sidecar only: matches
    flip_last_byte(path)
    with pytest.raises(CheckpointError, match="does not match the checksum"):
        load_generator()
    path.with_suffix(".json").unlink()
    with pytest.raises(CheckpointError, match="no sidecar manifest"):
        load_generator()


def test_verification_is_cached_per_file_version(tmp_path, monkeypatch):
    path = ckpt.save_state(tmp_path / "w.safetensors", {"a": torch.ones(3)}, {"kind": "weights"})
    calls = []
    real = weights.sha256_of
    monkeypatch.setattr(weights, "sha256_of", lambda p: calls.append(p) or real(p))
    for _ in range(3):
        ckpt.load_state(path)
    assert calls == []  # hashed once, when it was saved
    weights._SHA_CACHE.clear()
    for _ in range(3):
        ckpt.load_state(path)
    assert len(calls) == 1
    time.sleep(0.05)  # file times tick every few milliseconds
    flip_last_byte(path)  # a new version of the file: new change and modification times
    with pytest.raises(CheckpointError, match="does not match"):
        ckpt.load_state(path)
    assert len(calls) == 2


def test_a_stale_or_absent_sidecar_is_no_false_alarm(tmp_path):
    """A kill between the two renames of a save leaves the previous save's sidecar: it
    describes another file, so it is not evidence of corruption."""
    one = ckpt.save_state(tmp_path / "one.safetensors", {"a": torch.ones(3)}, {"step": 1})
    two = ckpt.save_state(tmp_path / "two.safetensors", {"a": torch.zeros(3)}, {"step": 2})
    shutil.copy(one.with_suffix(".json"), two.with_suffix(".json"))
    tensors, meta = ckpt.load_state(two)
    assert meta["step"] == 2 and torch.equal(tensors["a"], torch.zeros(3))
    two.with_suffix(".json").unlink()
    assert weights.verify_file(two, meta) is None
    ckpt.load_state(two)


# ------------------------------------------------------------------ hand-made headers
def handmade(path, meta_text, tensors=None):
    save_file(tensors or {"G.x": torch.ones(1)}, str(path), metadata={"ganlab": meta_text})
    return path


SPEC = {"class": "ganlab.models.cgan.ConvGenerator", "kwargs": {"width": 4, "z_dim": 8}}
GOOD = {"chapter": "cgan", "kind": "weights", "model": "cgan.ConvGenerator", "generator": SPEC}
CONFIG = {"arch": "conv", "width": 4, "z_dim": 8, "lr": 0.0002, "betas": [0.5, 0.999]}


def test_invalid_json_in_the_header_names_the_file(tmp_path, capsys):
    path = handmade(tmp_path / "bad.safetensors", '{"chapter": "cgan", ')
    with pytest.raises(CheckpointError, match="not valid JSON") as err:
        ckpt.read_meta(path)
    assert str(path) in str(err.value)
    assert main(["sample", "cgan", "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "not valid JSON" in err
    listed = handmade(tmp_path / "list.safetensors", "[1, 2]")
    with pytest.raises(CheckpointError, match="JSON list, but a JSON object"):
        ckpt.read_meta(listed)


def test_a_missing_model_spec_names_the_file(tmp_path, capsys):
    bare = {k: v for k, v in GOOD.items() if k != "generator"}
    path = handmade(tmp_path / "nospec.safetensors", json.dumps({**bare, "config": CONFIG}))
    with pytest.raises(CheckpointError, match="no model spec") as err:
        load_generator(path)
    assert str(path) in str(err.value) and not str(err.value).startswith("'")
    assert main(["sample", "cgan", "--weights", str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and "no model spec" in err


def test_a_negative_width_in_the_model_spec_names_the_file_and_the_key(tmp_path, capsys):
    spec = {**SPEC, "kwargs": {"width": -4, "z_dim": 8}}
    path = handmade(tmp_path / "neg.safetensors", json.dumps({**GOOD, "generator": spec}))
    with pytest.raises(CheckpointError, match="generator.kwargs.width is -4") as err:
        load_generator(path)
    assert str(path) in str(err.value)
    assert main(["sample", "cgan", "--weights", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


@pytest.mark.parametrize(
    "config, where",
    [
        ({**CONFIG, "width": -4}, "config.width is -4"),
        ({**CONFIG, "betas": [0.5, float("nan")]}, r"config.betas\[1\] is nan"),
        ([1, 2], "a JSON object of the model's constructor arguments"),
    ],
)
def test_impossible_config_values_name_the_file_and_the_key(tmp_path, capsys, config, where):
    path = handmade(tmp_path / "odd.safetensors", json.dumps({**GOOD, "config": config}))
    with pytest.raises(CheckpointError, match=where) as err:
        load_generator(path)
    assert str(path) in str(err.value)
    assert main(["sample", "cgan", "--weights", str(path)]) == 2
    assert str(path) in capsys.readouterr().err


def test_a_checkpoint_with_a_negative_step_is_refused(tmp_path):
    meta = {"chapter": "cgan", "kind": "checkpoint", "config": CONFIG, "step": -3}
    path = handmade(tmp_path / "c.safetensors", json.dumps(meta))
    with pytest.raises(CheckpointError, match="step must be a non-negative integer"):
        ckpt.read_meta(path)


def test_every_shipped_header_passes_the_checks():
    for path in sorted(weights.HERE.glob("*.safetensors")):
        meta = ckpt.read_meta(path)
        assert isinstance(meta, ckpt.Metadata) and meta["kind"] and "config" in meta
        assert weights.verify_file(path, meta) == weights.manifest(path.stem)["sha256"]
