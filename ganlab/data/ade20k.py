r"""ADE20K (the SceneParsing release, ``ADEChallengeData2016``) as SPADE loads it: image + map.

ADE20K (Zhou et al. 2017): 20,210 training and 2,000 validation scene photos, each with a
dense annotation of 150 classes (wall, building, sky, floor, tree, ...). SPADE trains and
evaluates on it (mIoU 38.5, accuracy 79.9, FID 33.9). On-disk layout (``LAYOUT``)::

    <root>/ADEChallengeData2016/        (or root= that folder itself)
      images/training/ADE_train_00000001.jpg ...
      images/validation/ADE_val_00000001.jpg ...
      annotations/training/ADE_train_00000001.png ...      8-bit class ids, 0 = "other"
      annotations/validation/ADE_val_00000001.png ...

>>> from ganlab.data.ade20k import ADE20K
>>> data = ADE20K("~/data/ade20k", split="validation", size=256)   # nothing is downloaded
>>> item = data[0]   # image (3, 256, 256) in [-1, 1]; labels (256, 256) int64; name

Labels. Annotation value ``k`` in 1..150 is class ``k``; 0 marks unlabelled pixels. SPADE
(``data/ade20k_dataset.py``, ``postprocess``) shifts them: ``label - 1``, and the unlabelled
0 becomes 150, a "don't care" class (``--label_nc 150 --contain_dontcare_label``: 151 input
channels). ``spade_labels=True`` (default) returns exactly that; ``False`` the raw values.

Deviations from the official code:

=========  ===========================================  ====================================
what       SPADE                                        course default
=========  ===========================================  ====================================
resize     ``resize_and_crop``: image and map to        to ``size`` x ``size`` (bicubic
           ``load_size`` x ``load_size`` (286), random  image, nearest map), no crop, no
           crop ``crop_size`` (256), random flip        flip: augment in the training loop
=========  ===========================================  ====================================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ganlab.data.cub import PathLike, layout_error
from ganlab.errors import DataNotFoundError

NUM_CLASSES = 150
DONTCARE = 150  # SPADE's index for unlabelled pixels (annotation value 0)
SPLITS = ("training", "validation")
FOLDER = "ADEChallengeData2016"
LAYOUT = """\
<root>/ADEChallengeData2016/   (or root= that folder)
  images/training/*.jpg          ADE_train_00000001.jpg ...
  images/validation/*.jpg        ADE_val_00000001.jpg ...
  annotations/training/*.png     same names, .png: class ids 1..150, 0 = unlabelled
  annotations/validation/*.png"""


def open_image(path: Path, mode: str) -> Image.Image:
    """PIL image of ``path`` converted to ``mode``; an unreadable file names itself."""
    try:
        with Image.open(path) as img:
            return img.convert(mode)
    except FileNotFoundError:
        raise DataNotFoundError(f"{path} not found (was it moved after listing?)") from None
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise DataNotFoundError(f"{path} is not a readable image: {exc}") from None


def image_tensor(img: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """RGB PIL image -> bicubic to ``size`` (H, W) -> float32 (3, H, W) in [-1, 1]."""
    if img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    return torch.from_numpy(np.array(img, np.uint8)).permute(2, 0, 1).float().div(127.5).sub(1)


def label_tensor(img: Image.Image, size: tuple[int, int]) -> torch.Tensor:
    """Label-map PIL image -> nearest to ``size`` (H, W) -> int64 (H, W): class ids must never
    be interpolated (a bilinear mix of ids 3 and 7 is not class 5)."""
    if img.size != (size[1], size[0]):
        img = img.resize((size[1], size[0]), Image.Resampling.NEAREST)
    return torch.from_numpy(np.array(img).astype(np.int64))


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int (pixels), got {size!r}")
    return size


class ADE20K(Dataset):
    """One split of ADE20K; ``data[i]`` is a dict ``image``, ``labels``, ``name``.

    Args:
        root: the folder holding ``ADEChallengeData2016/`` (or that folder itself).
        split: ``"training"`` or ``"validation"``.
        size: output side in pixels (square, as SPADE's ``resize_and_crop``).
        spade_labels: SPADE's shift (0..149, unlabelled -> 150); else raw 0..150.
    """

    def __init__(self, root: PathLike, split: str = "training", size: int = 256,
                 spade_labels: bool = True):  # fmt: skip
        if split not in SPLITS:
            raise ValueError(f"unknown ADE20K split {split!r}: expected one of {SPLITS}")
        self.size, self.split, self.spade_labels = check_size(size), split, bool(spade_labels)
        root = Path(root).expanduser()
        base = root / FOLDER if (root / FOLDER).is_dir() else root
        images, annotations = base / "images" / split, base / "annotations" / split
        for folder in (images, annotations):
            if not folder.is_dir():
                raise layout_error(f"ADE20K folder {folder.name!r} not found", folder, LAYOUT)
        self.images = sorted(p for p in images.iterdir() if p.suffix.lower() == ".jpg")
        if not self.images:
            raise layout_error("no .jpg images in ADE20K's images folder", images, LAYOUT)
        self.annotations = [annotations / f"{p.stem}.png" for p in self.images]
        missing = [p.name for p in self.annotations if not p.is_file()]
        if missing:
            raise layout_error(
                f"{len(missing)} images have no annotation (first: {missing[0]})",
                annotations,
                LAYOUT,
            )
        self.root = base

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        i = range(len(self))[i]  # negative indices; IndexError past the end
        s = (self.size, self.size)
        labels = label_tensor(open_image(self.annotations[i], "L"), s)
        if self.spade_labels:
            labels = labels - 1
            labels[labels == -1] = DONTCARE
        return {
            "image": image_tensor(open_image(self.images[i], "RGB"), s),
            "labels": labels,
            "name": self.images[i].stem,
        }

    def __repr__(self) -> str:
        return f"ADE20K({self.root}, split={self.split!r}, size={self.size}, n={len(self)})"
