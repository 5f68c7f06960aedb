"""The landscapes world as data: ``LandscapesWorld`` draws scene *i*; ``load_landscapes`` caches.

Scene *i* of a split is a pure function of ``(seed, split, i)``: its layout and its style come
from their own random streams (``[WORLD_SEED, seed, split, i, stream]``), so any scene can be
drawn alone, in any order, at any size from 16 to 256 px, and always looks the same. The
splits ``"train"`` and ``"test"`` are disjoint streams of the same distribution (the test
scenes are held-out images, as ADE20K's validation set).

>>> from ganlab.data.landscapes import load_landscapes
>>> data = load_landscapes(1000, "train", size=64)
>>> data.images.shape, data.labels.shape, data.instances.shape
(torch.Size([1000, 3, 64, 64]), torch.Size([1000, 64, 64]), torch.Size([1000, 64, 64]))
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganlab.data.landscapes.classes import NUM_CLASSES
from ganlab.data.landscapes.layout import Layout, draw_layout, rasterize
from ganlab.data.landscapes.render import Style, draw_style, render

WORLD_SEED = 20190319  # SPADE's arXiv date; any constant would do
SPLITS = {"train": 0, "test": 1}
CACHE_VERSION = 1  # bump when the layout generator or the renderer change


@dataclass(frozen=True)
class Scene:
    """Everything the world knows about one landscape: its map, instances, style, image."""

    split: str
    index: int
    layout: Layout
    style: Style
    labels: np.ndarray  # (S, S) uint8 class ids
    instances: np.ndarray  # (S, S) int16, 0 = stuff
    image: np.ndarray  # (S, S, 3) uint8


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 16 <= size <= 256:
        raise ValueError(f"size must be an int between 16 and 256 px, got {size!r}")
    return size


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown landscapes split {split!r}: expected one of {list(SPLITS)}")
    return split


class LandscapesWorld:
    """Draws landscapes of one split: ``world.layout(i)``, ``world.style(i)``,
    ``world.scene(i, size)``."""

    def __init__(self, split: str = "train", seed: int = 0):
        self.split = _check_split(split)
        self.seed = int(seed)

    def _rng(self, i: int, stream: int) -> np.random.Generator:
        if int(i) < 0:
            raise ValueError(f"scene index must be >= 0, got {i}")
        return np.random.default_rng([WORLD_SEED, self.seed, SPLITS[self.split], int(i), stream])

    def layout(self, i: int) -> Layout:
        return draw_layout(self._rng(i, 0))

    def style(self, i: int) -> Style:
        return draw_style(self._rng(i, 1))

    def scene(self, i: int, size: int = 64, style: Style | None = None) -> Scene:
        """Scene ``i`` at ``size`` px (in its own style, or in ``style``)."""
        check_size(size)
        layout = self.layout(i)
        style = self.style(i) if style is None else style
        labels, instances = rasterize(layout, size)
        image = render(labels, style, instances)
        return Scene(self.split, int(i), layout, style, labels, instances, image)


@dataclass
class LandscapesData(torch.utils.data.Dataset):
    """``n`` scenes of a split at one size, held in memory.

    ``images`` (N, 3, S, S) uint8; ``labels`` (N, S, S) uint8 class ids (``CLASSES`` order);
    ``instances`` (N, S, S) int16 instance ids (0 = stuff); ``styles`` (N, 2) int64 codes
    (time in ``TIMES``, season in ``SEASONS``).
    """

    split: str
    size: int
    seed: int
    images: torch.Tensor
    labels: torch.Tensor
    instances: torch.Tensor
    styles: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {
            "image": to_float(self.images[i]),
            "labels": self.labels[i].long(),
            "instances": self.instances[i].long(),
            "style": self.styles[i],
        }

    def float_images(self, index=slice(None)) -> torch.Tensor:
        """Images as float32 in [-1, 1]."""
        return to_float(self.images[index])

    def one_hot(self, index=slice(None)) -> torch.Tensor:
        """Maps as float32 one-hot (N, 10, S, S), the input SPADE and pix2pix take."""
        return one_hot(self.labels[index])


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def one_hot(labels: torch.Tensor, num_classes: int = NUM_CLASSES) -> torch.Tensor:
    """(N, S, S) class ids -> (N, C, S, S) float32 one-hot."""
    labels = torch.as_tensor(labels).long()
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"labels must lie in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}"
        )
    return torch.nn.functional.one_hot(labels, num_classes).movedim(-1, 1).float()


def _cache_path(split: str, n: int, size: int, seed: int) -> Path:
    root = Path(os.environ.get("GANLAB_CACHE", Path.home() / ".cache" / "ganlab")) / "landscapes"
    return root / f"v{CACHE_VERSION}_{split}_n{n}_s{size}_seed{seed}.npz"


def _generate(world: LandscapesWorld, n: int, size: int, progress: bool) -> dict[str, np.ndarray]:
    out = {
        "images": np.empty((n, size, size, 3), np.uint8),
        "labels": np.empty((n, size, size), np.uint8),
        "instances": np.empty((n, size, size), np.int16),
        "styles": np.empty((n, 2), np.int64),
    }
    desc = f"drawing {n} landscapes ({world.split}, {size} px)"
    for i in tqdm(range(n), desc=desc, disable=not progress):
        scene = world.scene(i, size)
        out["images"][i] = scene.image
        out["labels"][i] = scene.labels
        out["instances"][i] = scene.instances
        out["styles"][i] = scene.style.codes()
    return out


def load_landscapes(
    n: int,
    split: str = "train",
    size: int = 64,
    seed: int = 0,
    cache: bool = True,
    progress: bool = True,
) -> LandscapesData:
    """The first ``n`` scenes of ``split`` at ``size`` px (cached on disk as .npz when asked).

    The cache (``$GANLAB_CACHE``, default ``~/.cache/ganlab/landscapes``) is written to a
    temporary file and renamed into place, so a crash never leaves half a file; a damaged
    file is redrawn, never trusted.
    """
    _check_split(split)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    check_size(size)
    path = _cache_path(split, n, size, seed)
    arrays = None
    if cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {key: f[key] for key in f.files}
            if set(arrays) != {"images", "labels", "instances", "styles"}:
                arrays = None
        except (OSError, ValueError, EOFError):
            arrays = None  # a damaged cache file is redrawn, never trusted
    if arrays is None:
        arrays = _generate(LandscapesWorld(split, seed), n, size, progress)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
            try:
                np.savez(tmp, **arrays)
                os.replace(tmp, path)  # atomic: readers see the old file or the whole new one
            finally:
                tmp.unlink(missing_ok=True)  # a failed write leaves nothing behind
    return LandscapesData(
        split=split,
        size=size,
        seed=seed,
        images=torch.from_numpy(np.ascontiguousarray(arrays["images"].transpose(0, 3, 1, 2))),
        labels=torch.from_numpy(arrays["labels"]),
        instances=torch.from_numpy(arrays["instances"]),
        styles=torch.from_numpy(arrays["styles"]),
    )
