"""Tiny fake CUB-200-2011 and Oxford-102 datasets, file for file in the real on-disk layouts.

For tests and for the docs: a loader can be tried without the real data (a few hundred MB
that cannot be downloaded here).

>>> from ganlab.data.text_fixtures import make_cub_fixture
>>> from ganlab.data.cub import CUBBirds
>>> root = make_cub_fixture("/tmp/fake_birds")        # 4 species x 3 photos
>>> CUBBirds(root, "train")[0]["captions"][0]
'this bird is red with a short beak, caption 0 of 001.Black_footed_Albatross/...'

Photos are small JPEGs of varied sizes (about 40 x 30 pixels): noisy grey background, the
bounding box filled with the class's colour. Caption ``k`` of an image ends with
``"caption k of <name>"`` so that tests can check the order the loader reads them in.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image

from ganlab.data.cub import CAPTIONS_PER_IMAGE, ZERO_SHOT_FILES
from ganlab.data.oxford102 import class_name, image_name

# the first real CUB class folders; more classes get made-up names in the same style
CUB_CLASSES = (
    "001.Black_footed_Albatross",
    "002.Laysan_Albatross",
    "003.Sooty_Albatross",
    "004.Groove_billed_Ani",
    "005.Crested_Auklet",
    "006.Least_Auklet",
)
COLOURS = {
    "red": (220, 30, 30),
    "blue": (30, 60, 220),
    "yellow": (230, 210, 40),
    "green": (40, 170, 60),
    "white": (240, 240, 240),
    "brown": (120, 70, 30),
}


def _cub_class(c: int) -> str:
    """Folder name of class c (1-based)."""
    return CUB_CLASSES[c - 1] if c <= len(CUB_CLASSES) else f"{c:03d}.Fixture_Bird_{c}"


def _colour(c: int) -> tuple[str, tuple[int, int, int]]:
    name = list(COLOURS)[(c - 1) % len(COLOURS)]
    return name, COLOURS[name]


def _photo(rng: np.random.Generator, w: int, h: int, box, rgb) -> Image.Image:
    """A (h, w) noisy grey photo with ``box = (x, y, bw, bh)`` filled with ``rgb``."""
    pixels = rng.integers(90, 150, (h, w, 3)).astype(np.uint8)  # (h, w, 3)
    x, y, bw, bh = box
    pixels[y : y + bh, x : x + bw] = rgb
    return Image.fromarray(pixels)


def _captions(path: Path, stem: str, colour: str, flower: bool = False) -> None:
    thing = "flower has petals that are" if flower else "bird is"
    lines = [
        f"this {thing} {colour} with a short {'stem' if flower else 'beak'}, caption {k} of {stem}"
        for k in range(CAPTIONS_PER_IMAGE)
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _zero_shot(n_classes: int, train_fraction: float) -> int:
    """How many classes go to train(+val): the papers' fraction, leaving at least one test."""
    return min(n_classes - 1, max(1, round(train_fraction * n_classes)))


def make_cub_fixture(
    root: str | os.PathLike,
    n_classes: int = 4,
    per_class: int = 3,
    seed: int = 0,
    captions_dir: str = "text_c10",
    zero_shot_files: bool = True,
) -> Path:
    """Write a fake CUB-200-2011 under ``root``; returns ``root`` (which holds CUB_200_2011/).

    Image ids run class by class (as in CUB); within a class, even positions are train and
    odd ones test (``train_test_split.txt``). With ``zero_shot_files``, Reed's
    ``trainvalclasses.txt`` / ``testclasses.txt`` / ``allclasses.txt`` give 3/4 of the classes
    to train (150/200 in CUB). ``captions_dir``: ``"text_c10"`` (Reed) or ``"text"`` (AttnGAN).
    """
    if n_classes < 2 or per_class < 1:
        raise ValueError(f"need n_classes >= 2 and per_class >= 1, got {n_classes}, {per_class}")
    root = Path(root)
    cub = root / "CUB_200_2011"
    rng = np.random.default_rng(seed)
    images, labels, split, boxes = [], [], [], []
    image_id = 0
    for c in range(1, n_classes + 1):
        class_dir = _cub_class(c)
        colour, rgb = _colour(c)
        (cub / "images" / class_dir).mkdir(parents=True, exist_ok=True)
        for j in range(per_class):
            image_id += 1
            stem = f"{class_dir.split('.', 1)[1]}_{j + 1:04d}_{image_id}"
            w, h = int(rng.integers(36, 49)), int(rng.integers(26, 37))  # varied sizes
            bw, bh = int(rng.integers(8, w // 2)), int(rng.integers(8, h // 2))
            x, y = int(rng.integers(0, w - bw)), int(rng.integers(0, h - bh))
            _photo(rng, w, h, (x, y, bw, bh), rgb).save(
                cub / "images" / class_dir / f"{stem}.jpg", quality=95
            )
            images.append(f"{image_id} {class_dir}/{stem}.jpg")
            labels.append(f"{image_id} {c}")
            split.append(f"{image_id} {1 if j % 2 == 0 else 0}")
            boxes.append(f"{image_id} {x:.1f} {y:.1f} {bw:.1f} {bh:.1f}")  # floats, as CUB
            _captions(
                root / captions_dir / class_dir / f"{stem}.txt", f"{class_dir}/{stem}", colour
            )
    for name, lines in (
        ("images.txt", images),
        ("image_class_labels.txt", labels),
        ("classes.txt", [f"{c} {_cub_class(c)}" for c in range(1, n_classes + 1)]),
        ("train_test_split.txt", split),
        ("bounding_boxes.txt", boxes),
    ):
        (cub / name).write_text("\n".join(lines) + "\n", encoding="utf-8")
    if zero_shot_files:
        names = [_cub_class(c) for c in range(1, n_classes + 1)]
        n_train = _zero_shot(n_classes, 150 / 200)
        for name, part in zip(ZERO_SHOT_FILES, (names[:n_train], names[n_train:])):
            (root / name).write_text("\n".join(part) + "\n", encoding="utf-8")
        (root / "allclasses.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return root


def make_oxford102_fixture(
    root: str | os.PathLike,
    n_classes: int = 3,
    per_class: int = 4,
    seed: int = 0,
    zero_shot_files: bool = True,
) -> Path:
    """Write a fake Oxford-102 under ``root`` (classes 1..n_classes); returns ``root``.

    Labels are shuffled over the image ids (as in the real ``imagelabels.mat``). Per class,
    the first image is in ``trnid``, the second in ``valid``, the rest in ``tstid`` (stored
    in shuffled order). With ``zero_shot_files``, Reed's class lists give about 82/102 of
    the classes to train(+val).
    """
    if n_classes < 2 or per_class < 3:
        raise ValueError(f"need n_classes >= 2 and per_class >= 3, got {n_classes}, {per_class}")
    root = Path(root)
    (root / "jpg").mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.repeat(np.arange(1, n_classes + 1), per_class))  # (N,) 1-based
    sets = {"trnid": [], "valid": [], "tstid": []}
    for image_id, c in enumerate(labels.tolist(), start=1):
        colour, rgb = _colour(c)
        w, h = int(rng.integers(36, 49)), int(rng.integers(26, 37))
        box = (w // 4, h // 4, w // 2, h // 2)
        _photo(rng, w, h, box, rgb).save(root / "jpg" / f"{image_name(image_id)}.jpg", quality=95)
        stem = image_name(image_id)
        _captions(root / "text_c10" / class_name(c) / f"{stem}.txt", stem, colour, flower=True)
        seen = int(np.sum(labels[: image_id - 1] == c))  # earlier images of this class
        sets["trnid" if seen == 0 else "valid" if seen == 1 else "tstid"].append(image_id)
    scipy.io.savemat(root / "imagelabels.mat", {"labels": labels[None, :].astype(np.float64)})
    scipy.io.savemat(
        root / "setid.mat",
        {k: rng.permutation(v)[None, :].astype(np.float64) for k, v in sets.items()},
    )
    if zero_shot_files:
        names = [class_name(c) for c in range(1, n_classes + 1)]
        n_train = _zero_shot(n_classes, 82 / 102)
        for name, part in zip(ZERO_SHOT_FILES, (names[:n_train], names[n_train:])):
            (root / name).write_text("\n".join(part) + "\n", encoding="utf-8")
    return root
