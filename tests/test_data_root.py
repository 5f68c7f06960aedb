"""``ganlab train CHAPTER --data-root DIR`` trains on the real dataset in DIR for every
chapter that reads real data (the text-to-image chapters read CUB-200-2011 or Oxford-102;
tried on the tiny fixtures of ``ganlab.data.text_fixtures``)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
import torch

from ganlab.chapters import get_chapter
from ganlab.cli import main
from ganlab.data.captioned import load_captioned
from ganlab.data.cub import CUBBirds
from ganlab.data.text_fixtures import make_cub_fixture, make_oxford102_fixture
from ganlab.train import checkpoint as ckpt

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def cub(tmp_path_factory):
    return make_cub_fixture(tmp_path_factory.mktemp("cub"))


@pytest.fixture(scope="module")
def flowers(tmp_path_factory):
    return make_oxford102_fixture(tmp_path_factory.mktemp("flowers"))


def write_mnist(root, n_train: int = 6, n_test: int = 4):
    """A tiny MNIST in torchvision's layout (``root/MNIST/raw/*-ubyte``)."""
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        for kind, array in (
            ("images-idx3", rng.integers(0, 256, (n, 28, 28))),
            ("labels-idx1", np.arange(n) % 10),
        ):
            header = struct.pack(">I", 0x0800 | array.ndim)
            header += struct.pack(">" + "I" * array.ndim, *array.shape)
            (raw / f"{prefix}-{kind}-ubyte").write_bytes(header + array.astype(np.uint8).tobytes())
    return root


def test_cgan_trains_on_full_mnist_from_data_root(tmp_path):
    root = write_mnist(tmp_path / "mnist")
    argv = ["train", "cgan", "--profile", "smoke", "--steps", "1", "--out", str(tmp_path / "r")]
    assert main([*argv, "--data-root", str(root)]) == 0
    recipe, _ = get_chapter("cgan").recipe("smoke", data_root=str(root))
    x, y = recipe.data(CPU)
    assert x.shape == (6, 1, 28, 28) and y.tolist() == [0, 1, 2, 3, 4, 5]  # not the 4,000


def test_real_data_load_as_the_recipes_use_them(cub, flowers):
    data = load_captioned(100, "train", 16, cub)
    real = CUBBirds(cub, "train", 16, split_by="classes")  # Reed's zero-shot class split
    assert len(data) == len(real) == 9 and data.images.dtype == torch.uint8
    assert data.images.shape == (9, 3, 16, 16)
    assert torch.allclose(data.images[0].float() / 127.5 - 1, real[0]["image"], atol=1e-6)
    assert (
        data.captions[0] == real[0]["captions"]
        and data.species.tolist() == [0] * 3 + [1] * 3 + [2] * 3
    )
    test = load_captioned(100, "zeroshot", 16, cub)  # species never seen in training
    assert set(test.species.tolist()).isdisjoint(data.species.tolist())
    assert len(load_captioned(100, "train", 16, flowers)) > 0


@pytest.mark.parametrize("name", ["gan-int-cls", "stackgan", "attngan"])
def test_train_reads_data_root(name, cub, tmp_path):
    out = tmp_path / "run"
    argv = ["train", name, "--profile", "smoke", "--steps", "1", "--out", str(out)]
    assert main([*argv, "--data-root", str(cub)]) == 0
    generators = sorted(out.rglob("generator.safetensors"))
    assert generators and all(ckpt.read_meta(g)["manifest"]["steps"] == 1 for g in generators)
    # the recipe the command built reads the 9 real training photos, not the birds world
    recipe, _ = get_chapter(name).recipe("smoke", data_root=str(cub))
    images = recipe.data(CPU)["images"]
    for x in images if isinstance(images, list) else [images]:
        assert x.shape[0] == 9  # the smoke profile asks for 64 or 128 birds


def test_data_root_reads_oxford_flowers_too(flowers, tmp_path):
    argv = ["train", "gan-int-cls", "--profile", "smoke", "--steps", "1", "--out", str(tmp_path)]
    assert main([*argv, "--data-root", str(flowers)]) == 0
    recipe, _ = get_chapter("gan-int-cls").recipe("smoke", data_root=str(flowers))
    assert recipe.data(CPU)["images"].shape[0] == len(load_captioned(100, "train", 16, flowers))


def test_a_data_root_without_a_dataset_is_a_clear_error(tmp_path, capsys):
    argv = ["train", "stackgan", "--profile", "smoke", "--steps", "1", "--out", str(tmp_path / "r")]
    assert main([*argv, "--data-root", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "found neither CUB-200-2011" in err and "Oxford-102" in err
