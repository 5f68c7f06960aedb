r"""Oxford-102 flowers with ten captions per image, as the text-to-image papers load them.

Oxford 102 Category Flower Dataset (Nilsback & Zisserman 2008): 8,189 photos of 102 flower
species. Reed et al. (2016) collected ten captions per photo; GAN-INT-CLS and StackGAN
report results on it.

>>> from ganlab.data.oxford102 import Oxford102Flowers
>>> data = Oxford102Flowers("~/data/flowers", split="train", size=64)
>>> item = data[0]    # dict(image=(3, 64, 64) in [-1, 1], captions=[10 str], label=0..101, name)

On-disk layout (see ``LAYOUT``)::

    <root>/
      jpg/image_00001.jpg ... image_08189.jpg
      imagelabels.mat          key "labels": shape (1, N), classes 1..102
      setid.mat                keys "trnid", "valid", "tstid": 1-based image ids
      text_c10/class_00001/image_00001.txt   10 captions, one a line (Reed's layout)
      trainvalclasses.txt, testclasses.txt   optional: the zero-shot class split,
                                             one class_00001 a line (Reed's layout)

The ``.mat`` files are read with ``scipy.io.loadmat`` (MATLAB's format, no pickle).

Splits. ``split_by="official"``: ``setid.mat``'s ``trnid`` / ``valid`` / ``tstid`` as
``"train"`` / ``"val"`` / ``"test"`` -- note that the official training and validation sets
are small (10 images per class: 1,020 each) and the test set is the big one (6,149).
``split_by="classes"``: the zero-shot split by species the text-to-image papers use (82
train+val / 20 test classes), from ``classes_file`` (your text file of TRAIN class names,
test = the others) or else Reed's ``trainvalclasses.txt`` / ``testclasses.txt``; its
``"train"`` is Reed's trainval. Labels stay the class number minus one (0..101).

Deviations from the official code:

====================  ==============================================  =========================
what                  official code                                   course default
====================  ==============================================  =========================
split lists           StackGAN: ``train/filenames.pickle``            never unpickled:
                      (the 82 / 20 class split)                       ``setid.mat``, or the
                                                                      class split from text
resize                StackGAN-Pytorch: resize to ``size * 76 / 64``  resize to ``size``
                      -> random crop ``size`` -> random flip          (bilinear), deterministic
crop                  none (no bounding boxes for flowers)            none
captions              one random caption (embedding) per draw         all, in file order
====================  ==============================================  =========================
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from torch.utils.data import Dataset

from ganlab.data.cub import (
    CAPTIONS_PER_IMAGE,
    ZERO_SHOT_FILES,
    PathLike,
    check_common_args,
    layout_error,
    load_image,
    read_captions,
    read_class_list,
)
from ganlab.errors import DataNotFoundError

NUM_CLASSES = 102
SETID_KEYS = {"train": "trnid", "val": "valid", "test": "tstid"}
SPLITS = {"official": ("train", "val", "test", "all"), "classes": ("train", "test", "all")}

LAYOUT = """\
<root>/
  jpg/image_00001.jpg ...
  imagelabels.mat          key "labels", shape (1, N), classes 1..102
  setid.mat                keys "trnid", "valid", "tstid", 1-based image ids
  text_c10/class_00001/image_00001.txt   10 captions, one per line
  trainvalclasses.txt, testclasses.txt   (optional, for split_by="classes")"""


def image_name(image_id: int) -> str:
    return f"image_{image_id:05d}"  # 1-based, as the files are named


def class_name(number: int) -> str:
    return f"class_{number:05d}"  # 1-based, as Reed's caption folders are named


def find_oxford102(root: PathLike) -> Path:
    """The folder holding ``jpg/`` and ``imagelabels.mat``; ``root`` may also be ``jpg/``."""
    root = Path(root).expanduser()
    for candidate in (root, root.parent):
        if (candidate / "jpg").is_dir() and (candidate / "imagelabels.mat").is_file():
            return candidate
    raise layout_error("Oxford-102 not found (no jpg/ beside imagelabels.mat)", root, LAYOUT)


def read_mat_ids(path: Path, key: str, low: int, high: int) -> np.ndarray:
    """A 1-D int64 array from a ``.mat`` file's ``key`` (shape (1, N), (N, 1) or (N,)),
    every value in ``low..high``."""
    if not path.is_file():
        raise layout_error(f"{path.name} is missing", path, LAYOUT)
    try:
        mat = scipy.io.loadmat(path)
    except (ValueError, NotImplementedError, OSError) as exc:
        raise DataNotFoundError(f"{path} is not a readable MATLAB v5 file: {exc}") from None
    if key not in mat:
        keys = sorted(k for k in mat if not k.startswith("__"))
        raise DataNotFoundError(f"{path}: no key {key!r} (found {keys})")
    values = np.asarray(mat[key])
    if values.ndim > 2 or (values.ndim == 2 and min(values.shape) != 1):
        raise DataNotFoundError(f"{path}: {key!r} must have shape (1, N), got {values.shape}")
    values = values.ravel()
    if values.size == 0 or not np.all(values == np.round(values)):
        raise DataNotFoundError(f"{path}: {key!r} must hold integers, got {values[:5]}...")
    values = values.astype(np.int64)
    bad = values[(values < low) | (values > high)]
    if bad.size:
        raise DataNotFoundError(
            f"{path}: {key!r} must lie in {low}..{high}, got {bad[:5].tolist()}"
        )
    return values


class Oxford102Flowers(Dataset):
    """Oxford-102 flowers with their ten captions; ``data[i]`` is a dict.

    ``image`` float32 (3, size, size) in [-1, 1]; ``captions`` list of str (file order);
    ``label`` int, the species 0..101; ``name`` ``"image_00001"``.

    Args:
        root: the folder holding ``jpg/``, ``imagelabels.mat``, ``setid.mat``, ``text_c10/``.
        split: ``"train"``, ``"val"``, ``"test"``, ``"all"`` (``"val"`` only with
            ``split_by="official"``).
        size: output side in pixels.
        split_by: ``"official"`` (``setid.mat``) or ``"classes"`` (zero-shot).
        captions_dir: the caption folder; default ``root/text_c10``.
        classes_file: for ``split_by="classes"``: a text file of TRAIN class names
            (``class_00001`` or ``1``), one a line; default Reed's ``trainvalclasses.txt`` /
            ``testclasses.txt`` in ``root``.
        captions_per_image: captions kept per image (fewer is an error); ``None`` keeps all.

    Images are in increasing id order within a split; files are read in ``__getitem__``.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        size: int = 64,
        split_by: str = "official",
        captions_dir: PathLike | None = None,
        classes_file: PathLike | None = None,
        captions_per_image: int | None = CAPTIONS_PER_IMAGE,
    ):
        check_common_args(split, SPLITS.get(split_by, ()), size, split_by)
        self.split, self.size, self.split_by = split, size, split_by
        self.captions_per_image = captions_per_image
        self.root = find_oxford102(root)
        self.captions_dir = Path(captions_dir).expanduser() if captions_dir else None
        if self.captions_dir is None:
            self.captions_dir = self.root / "text_c10"
        if not self.captions_dir.is_dir():
            raise layout_error("no caption folder text_c10/", self.captions_dir, LAYOUT)

        # labels[id - 1] is the class (1..102) of image id
        self.labels = read_mat_ids(self.root / "imagelabels.mat", "labels", 1, NUM_CLASSES)
        n = len(self.labels)
        if split == "all":
            ids = np.arange(1, n + 1)
        elif split_by == "official":
            ids = read_mat_ids(self.root / "setid.mat", SETID_KEYS[split], 1, n)
        else:
            chosen = self._class_split(classes_file)
            ids = np.flatnonzero(np.isin(self.labels, sorted(chosen))) + 1
        self.ids = sorted(set(ids.tolist()))  # 1-based image ids, increasing
        if not self.ids:
            raise DataNotFoundError(f"{self.root}: no images in split {split!r} ({split_by})")
        first = self._caption_path(self.ids[0])
        if not first.is_file():
            raise layout_error(f"caption file {first.name} not found", first, LAYOUT)

    def _class_split(self, classes_file: PathLike | None) -> set[int]:
        by_name = {class_name(c): c for c in range(1, NUM_CLASSES + 1)}
        if classes_file is not None:
            train = read_class_list(Path(classes_file).expanduser(), by_name)
            return train if self.split == "train" else set(by_name.values()) - train
        if all((self.root / f).is_file() for f in ZERO_SHOT_FILES):
            name = ZERO_SHOT_FILES[0] if self.split == "train" else ZERO_SHOT_FILES[1]
            return read_class_list(self.root / name, by_name)
        raise layout_error(
            'split_by="classes" needs classes_file= (a text file of train class names) or '
            "Reed's trainvalclasses.txt and testclasses.txt",
            self.root,
            LAYOUT,
        )

    def _caption_path(self, image_id: int) -> Path:
        label = int(self.labels[image_id - 1])
        return self.captions_dir / class_name(label) / (image_name(image_id) + ".txt")

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        image_id = self.ids[i]
        return {
            "image": load_image(self.root / "jpg" / (image_name(image_id) + ".jpg"), self.size),
            "captions": read_captions(self._caption_path(image_id), self.captions_per_image),
            "label": int(self.labels[image_id - 1]) - 1,
            "name": image_name(image_id),
        }

    def __repr__(self) -> str:
        return (
            f"Oxford102Flowers({str(self.root)!r}, split={self.split!r}, "
            f"split_by={self.split_by!r}, size={self.size}): {len(self)} images"
        )
