r"""CUB-200-2011 birds with ten captions per image, as the text-to-image papers load them.

Caltech-UCSD Birds (Wah et al. 2011): 11,788 photos of 200 species, one bounding box per
photo. Reed et al. (2016) collected ten one-sentence descriptions per photo; GAN-INT-CLS,
StackGAN and AttnGAN all train on these (image, captions) pairs.

>>> from ganlab.data.cub import CUBBirds
>>> data = CUBBirds("~/data/birds", split="train", size=64)   # nothing is ever downloaded
>>> item = data[0]
>>> item["image"].shape, item["captions"][0], item["label"], item["name"]
(torch.Size([3, 64, 64]), 'this bird has ...', 0, '001.Black_footed_Albatross/...')

On-disk layout (the one reedscot/icml2016, hanzhanggit/StackGAN-Pytorch and taoxugit/AttnGAN
read; see ``LAYOUT``)::

    <root>/
      CUB_200_2011/                        the official tarball, unpacked
        images/<class_dir>/<name>.jpg
        images.txt                         <id> <class_dir>/<name>.jpg
        image_class_labels.txt             <id> <class 1..200>
        classes.txt                        <class 1..200> <class_dir>
        train_test_split.txt               <id> <1 train | 0 test>
        bounding_boxes.txt                 <id> <x> <y> <w> <h>      (floats, pixels)
      text_c10/<class_dir>/<name>.txt      10 captions, one a line (Reed's, StackGAN's)
        or text/<class_dir>/<name>.txt     (AttnGAN's birds/text/, same files)
      trainvalclasses.txt, testclasses.txt optional: the zero-shot class split, one
                                           <class_dir> a line (Reed's layout)

Splits. ``split_by="official"`` uses CUB's own image split (``train_test_split.txt``: 5,994
train / 5,794 test images, every species in both). ``split_by="classes"`` is the papers'
zero-shot split by SPECIES: 150 train(+val) / 50 test classes, so test birds are of species
never seen in training. It is read from ``classes_file`` (your text file of TRAIN class names;
the test classes are all the others) or else from Reed's ``trainvalclasses.txt`` /
``testclasses.txt``. Labels stay CUB's class index minus one (0..199) in both.

Bounding-box crop (``crop=True``, StackGAN and AttnGAN's ``get_imgs``): with the box
``(x, y, w, h)`` truncated to integers,

.. math::
    r = \lfloor 0.75 \max(w, h) \rfloor, \quad
    c_x = \lfloor (2x + w) / 2 \rfloor, \quad c_y = \lfloor (2y + h) / 2 \rfloor,

and the crop is ``[c_x - r, c_x + r) x [c_y - r, c_y + r)`` clipped to the image: a square
1.5 times the box's longer side, centred on the box (no longer square where it was clipped).

Deviations from the official code:

====================  ==============================================  =========================
what                  official code                                   course default
====================  ==============================================  =========================
split lists           AttnGAN / StackGAN: ``train/filenames.pickle``  never unpickled: CUB's
                      (the 150 / 50 class split)                      ``train_test_split.txt``,
                                                                      or the class split from
                                                                      plain text files
resize                StackGAN-Pytorch, AttnGAN: crop -> resize to    crop -> resize to
                      ``size * 76 / 64`` -> random crop ``size`` ->   ``size`` (bilinear),
                      random horizontal flip                          deterministic; augment
                                                                      in the training loop
captions              AttnGAN: one random caption per draw; Reed:     all captions of the
                      mean of 4 random caption embeddings             image, in file order
                                                                      (the chapter samples)
====================  ==============================================  =========================

Nothing here unpickles anything: text files are parsed by hand, images opened with PIL.
The helpers below (``read_lines``, ``read_table``, ``read_captions``, ``read_class_list``,
``load_image``, ``collate``) are shared with ``ganlab.data.oxford102``.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ganlab.errors import DataNotFoundError

CAPTIONS_PER_IMAGE = 10  # Reed et al. collected ten per image
BOX_ENLARGE = 0.75  # r = int(max(w, h) * 0.75): StackGAN's and AttnGAN's get_imgs
CAPTION_DIRS = ("text", "text_c10")  # AttnGAN's name, then Reed's / StackGAN's
ZERO_SHOT_FILES = ("trainvalclasses.txt", "testclasses.txt")  # Reed's class split
SPLITS = ("train", "test", "all")
SPLIT_BY = ("official", "classes")

LAYOUT = """\
<root>/
  CUB_200_2011/
    images/<class_dir>/<name>.jpg
    images.txt                 <id> <class_dir>/<name>.jpg
    image_class_labels.txt     <id> <class 1..200>
    classes.txt                <class 1..200> <class_dir>
    train_test_split.txt       <id> <1 train | 0 test>
    bounding_boxes.txt         <id> <x> <y> <w> <h>
  text_c10/<class_dir>/<name>.txt   (or text/...): 10 captions, one per line
  trainvalclasses.txt, testclasses.txt   (optional, for split_by="classes")"""

PathLike = str | os.PathLike


# ---------------------------------------------------------------- shared helpers


def layout_error(problem: str, looked_at: Path, layout: str) -> DataNotFoundError:
    """A DataNotFoundError that shows the path looked at and the expected tree."""
    return DataNotFoundError(
        f"{problem}\n  looked at: {looked_at}\n  expected layout:\n"
        + "\n".join("    " + line for line in layout.splitlines())
        + "\nNothing is downloaded: put the files there, or pass root= / captions_dir=."
    )


def read_lines(path: Path) -> list[str]:
    """The lines of a UTF-8 text file (a byte-order mark is allowed; a line may end in
    ``\r``). A file in another encoding (Latin-1, cp1252...) is refused naming the file, the
    line and the byte."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig").split("\n")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise DataNotFoundError(
            f"{path}, line {line}: not UTF-8 (byte {data[exc.start]:#04x}); expected "
            "UTF-8 (CUB's own lists are plain ASCII). Re-encode the file, e.g. "
            f"iconv -f latin1 -t utf-8 {path.name} > fixed.txt"
        ) from None


def read_table(path: Path, columns: tuple[type, ...], layout: str) -> list[tuple[int, tuple]]:
    """Parse a whitespace-separated text file: one row of ``len(columns)`` fields a line.

    Returns ``[(line_number, fields), ...]`` (1-based line numbers, blank lines skipped),
    each field converted by its type in ``columns``. A wrong column count or a value that
    does not convert raises DataNotFoundError naming the file and the line.
    """
    if not path.is_file():
        raise layout_error(f"{path.name} is missing", path, layout)
    rows = []
    for number, line in enumerate(read_lines(path), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(columns):
            raise DataNotFoundError(
                f"{path}, line {number}: expected {len(columns)} columns, got "
                f"{len(fields)}: {line.strip()!r}"
            )
        try:
            rows.append((number, tuple(kind(v) for kind, v in zip(columns, fields))))
        except ValueError:
            names = " ".join(kind.__name__ for kind in columns)
            raise DataNotFoundError(
                f"{path}, line {number}: expected columns of types ({names}), got {line.strip()!r}"
            ) from None
    if not rows:
        raise DataNotFoundError(f"{path} is empty: expected one row per line")
    return rows


def read_captions(path: Path, n: int | None = CAPTIONS_PER_IMAGE) -> list[str]:
    """The captions of one image: the non-empty lines of ``path``, in order (the first ``n``).

    As AttnGAN's loader: UTF-8, a doubled replacement character (a broken byte pair in a few
    CUB files) becomes a space, blank lines are skipped, at most ``n`` are kept.
    """
    if not path.is_file():
        raise DataNotFoundError(
            f"caption file {path} not found: expected a text file with "
            f"{n or 'some'} captions, one per line"
        )
    text = path.read_text(encoding="utf-8", errors="replace").replace("\ufffd\ufffd", " ")
    captions = [line.strip() for line in text.splitlines() if line.strip()]
    if not captions:
        raise DataNotFoundError(f"caption file {path} is empty: expected captions, one per line")
    if n is not None:
        if len(captions) < n:
            raise DataNotFoundError(
                f"caption file {path} holds {len(captions)} captions, expected {n} "
                "(one per line; pass captions_per_image=None to take what is there)"
            )
        captions = captions[:n]
    return captions


def read_class_list(path: Path, classes: dict[str, int]) -> set[int]:
    """Class numbers (1-based, as on disk) named in a text file, one class a line.

    A line is a class folder name (a key of ``classes``, e.g. ``002.Laysan_Albatross`` or
    ``class_00002``) or a bare class number (``2``).
    """
    if not path.is_file():
        raise DataNotFoundError(f"class list {path} not found: expected one class name a line")
    numbers = set(classes.values())
    chosen = set()
    for number, line in enumerate(read_lines(path), start=1):
        name = line.strip()
        if not name:
            continue
        if name in classes:
            chosen.add(classes[name])
        elif name.isdigit() and int(name) in numbers:
            chosen.add(int(name))
        else:
            example = next(iter(classes), "?")
            raise DataNotFoundError(
                f"{path}, line {number}: unknown class {name!r}: expected a class folder "
                f"name such as {example!r} or a class number 1..{max(numbers)}"
            )
    if not chosen:
        raise DataNotFoundError(f"class list {path} is empty: expected one class name a line")
    return chosen


def check_box(bbox) -> tuple[float, float, float, float]:
    """A bounding box ``(x, y, w, h)`` in pixels: corner ``x, y >= 0``, size ``w, h > 0``."""
    x, y, w, h = bbox
    if x < 0 or y < 0 or w <= 0 or h <= 0:
        raise ValueError(
            f"expected a bounding box (x, y, w, h) in pixels with x, y >= 0 and w, h > 0, "
            f"got {tuple(bbox)}"
        )
    return x, y, w, h


def enlarged_box(bbox, width: int, height: int) -> tuple[int, int, int, int]:
    """StackGAN's / AttnGAN's crop around ``bbox = (x, y, w, h)``: ``(x1, y1, x2, y2)``.

    A square of side ``2 r``, ``r = int(0.75 max(w, h))``, centred on the box, clipped to the
    ``width x height`` image. The box is truncated to integers first, as the official code
    reads it with ``pandas ... .astype(int)``. A negative corner or size is refused.
    """
    x, y, w, h = (int(v) for v in check_box(bbox))
    r = int(max(w, h) * BOX_ENLARGE)
    cx, cy = int((2 * x + w) / 2), int((2 * y + h) / 2)  # the box's centre
    return max(0, cx - r), max(0, cy - r), min(width, cx + r), min(height, cy + r)


def load_image(path: Path, size: int, bbox=None) -> torch.Tensor:
    """Open an image with PIL as RGB, crop around ``bbox`` if given, resize to ``size``.

    Returns float32 (3, size, size) in [-1, 1].
    """
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")
    except FileNotFoundError:
        raise DataNotFoundError(f"image {path} not found") from None
    except (OSError, UnidentifiedImageError) as exc:
        raise DataNotFoundError(f"image {path} is not a readable image: {exc}") from None
    if bbox is not None:
        box = enlarged_box(bbox, *img.size)
        if box[2] <= box[0] or box[3] <= box[1]:
            raise DataNotFoundError(
                f"{path}: bounding box {tuple(bbox)} gives an empty crop {box} in an image of "
                f"{img.size[0]}x{img.size[1]} pixels"
            )
        img = img.crop(box)  # (x1, y1, x2, y2)
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.BILINEAR)
    x = torch.from_numpy(np.array(img, dtype=np.uint8))  # (size, size, 3) uint8
    return x.permute(2, 0, 1).float().div_(127.5).sub_(1.0)  # (3, size, size) in [-1, 1]


def collate(batch: list[dict]) -> dict:
    """DataLoader ``collate_fn`` for these datasets (the default one would transpose captions).

    Returns image (N, 3, size, size), captions list of N lists of str, label (N,) int64,
    name list of N str.
    """
    return {
        "image": torch.stack([b["image"] for b in batch]),  # (N, 3, size, size)
        "captions": [b["captions"] for b in batch],
        "label": torch.tensor([b["label"] for b in batch], dtype=torch.int64),  # (N,)
        "name": [b["name"] for b in batch],
    }


def check_common_args(split: str, splits, size: int, split_by: str) -> None:
    if split_by not in SPLIT_BY:
        raise ValueError(f"split_by must be one of {SPLIT_BY}, got {split_by!r}")
    if split not in splits:
        raise ValueError(
            f"split must be one of {tuple(splits)} with split_by={split_by!r}, got {split!r}"
        )
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int (pixels), got {size!r}")


# ---------------------------------------------------------------- CUB


def find_cub(root: PathLike) -> Path:
    """The ``CUB_200_2011`` folder: ``root`` may hold it, or be it.

    Also accepts the doubled ``root/CUB_200_2011/CUB_200_2011`` that some unpackings make.
    """
    root = Path(root).expanduser()
    for candidate in (root, root / "CUB_200_2011", root / "CUB_200_2011" / "CUB_200_2011"):
        if (candidate / "images.txt").is_file() and (candidate / "images").is_dir():
            return candidate
    raise layout_error(
        "CUB-200-2011 not found (no images.txt beside an images/ folder)", root, LAYOUT
    )


def _find_captions(cub: Path, captions_dir: PathLike | None) -> Path:
    if captions_dir is not None:
        path = Path(captions_dir).expanduser()
        if not path.is_dir():
            raise layout_error("captions_dir is not a folder", path, LAYOUT)
        return path
    for base in (cub.parent, cub):
        for name in CAPTION_DIRS:
            if (base / name).is_dir():
                return base / name
    raise layout_error(
        "no caption folder (text/ or text_c10/) beside CUB_200_2011/", cub.parent, LAYOUT
    )


class CUBBirds(Dataset):
    """CUB-200-2011 images with their ten captions; ``data[i]`` is a dict.

    ``image`` float32 (3, size, size) in [-1, 1]; ``captions`` list of str (file order);
    ``label`` int, the species 0..199; ``name`` ``"<class_dir>/<image name>"`` (AttnGAN's key).

    Args:
        root: the folder holding ``CUB_200_2011/`` (and ``text_c10/``), or ``CUB_200_2011/``.
        split: ``"train"``, ``"test"`` or ``"all"``.
        size: output side in pixels.
        crop: crop around the bounding box enlarged by 0.75 first (StackGAN, AttnGAN).
        split_by: ``"official"`` (``train_test_split.txt``) or ``"classes"`` (zero-shot).
        captions_dir: the caption folder; default ``text/`` or ``text_c10/`` beside
            ``CUB_200_2011/``.
        classes_file: for ``split_by="classes"``: a text file of TRAIN class names, one a
            line (test = the other classes); default Reed's ``trainvalclasses.txt`` /
            ``testclasses.txt`` beside ``CUB_200_2011/``.
        captions_per_image: captions kept per image (an image with fewer is an error);
            ``None`` keeps all.

    Files are only parsed here; images and captions are read in ``__getitem__``.
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        size: int = 64,
        crop: bool = True,
        split_by: str = "official",
        captions_dir: PathLike | None = None,
        classes_file: PathLike | None = None,
        captions_per_image: int | None = CAPTIONS_PER_IMAGE,
    ):
        check_common_args(split, SPLITS, size, split_by)
        self.split, self.size, self.crop, self.split_by = split, size, bool(crop), split_by
        self.captions_per_image = captions_per_image
        self.cub = find_cub(root)
        self.captions_dir = _find_captions(self.cub, captions_dir)

        # id -> "<class_dir>/<name>.jpg", and class number -> class_dir
        paths = {i: p for _, (i, p) in read_table(self.cub / "images.txt", (int, str), LAYOUT)}
        classes = {c: d for _, (c, d) in read_table(self.cub / "classes.txt", (int, str), LAYOUT)}
        labels = self._per_image("image_class_labels.txt", (int, int), paths)
        for i, (number, (c,)) in labels.items():
            class_dir = paths[i].split("/")[0]
            if classes.get(c) != class_dir:
                raise DataNotFoundError(
                    f"{self.cub / 'image_class_labels.txt'}, line {number}: image {i} has class "
                    f"{c} ({classes.get(c, 'not in classes.txt')}) but images.txt puts it in "
                    f"{class_dir}/"
                )
        boxes = {}
        if self.crop:
            boxes = self._per_image("bounding_boxes.txt", (int, float, float, float, float), paths)
            for number, box in boxes.values():
                try:
                    check_box(box)
                except ValueError as exc:
                    path = self.cub / "bounding_boxes.txt"
                    raise DataNotFoundError(f"{path}, line {number}: {exc}") from None

        # which images: by CUB's image split, or by the zero-shot class split
        if split == "all":
            keep = set(paths)
        elif split_by == "official":
            flags = self._per_image("train_test_split.txt", (int, int), paths)
            for number, (flag,) in flags.values():
                if flag not in (0, 1):
                    raise DataNotFoundError(
                        f"{self.cub / 'train_test_split.txt'}, line {number}: expected 1 "
                        f"(train) or 0 (test), got {flag}"
                    )
            want = 1 if split == "train" else 0
            keep = {i for i, (_, (flag,)) in flags.items() if flag == want}
        else:
            chosen = self._class_split(classes, classes_file)
            keep = {i for i, (_, (c,)) in labels.items() if c in chosen}

        # items in images.txt order (image id order): (path, label 0-based, bbox or None)
        self.items = [
            (paths[i], labels[i][1][0] - 1, boxes[i][1] if self.crop else None)
            for i in sorted(paths)
            if i in keep
        ]
        if not self.items:
            raise DataNotFoundError(f"{self.cub}: no images in split {split!r} ({split_by})")
        # fail now, not mid-epoch, if the caption folder has another layout
        first = self._caption_path(0)
        if not first.is_file():
            raise layout_error(f"caption file {first.name} not found", first, LAYOUT)

    def _per_image(self, filename: str, columns, paths: dict) -> dict:
        """Rows of a per-image file keyed by image id; the ids must match images.txt's."""
        path = self.cub / filename
        rows = {}
        for number, (i, *rest) in read_table(path, columns, LAYOUT):
            if i not in paths:
                raise DataNotFoundError(f"{path}, line {number}: image id {i} is not in images.txt")
            if i in rows:
                raise DataNotFoundError(f"{path}, line {number}: image id {i} appears twice")
            rows[i] = (number, tuple(rest))
        missing = sorted(set(paths) - set(rows))
        if missing:
            raise DataNotFoundError(
                f"{path}: no line for image ids {missing[:5]}{'...' if len(missing) > 5 else ''}"
                f" of images.txt ({len(missing)} missing)"
            )
        return rows

    def _class_split(self, classes: dict[int, str], classes_file: PathLike | None) -> set[int]:
        by_name = {d: c for c, d in classes.items()}
        if classes_file is not None:
            train = read_class_list(Path(classes_file).expanduser(), by_name)
            return train if self.split == "train" else set(classes) - train
        for base in (self.cub.parent, self.cub):
            if all((base / f).is_file() for f in ZERO_SHOT_FILES):
                name = ZERO_SHOT_FILES[0] if self.split == "train" else ZERO_SHOT_FILES[1]
                return read_class_list(base / name, by_name)
        raise layout_error(
            'split_by="classes" needs classes_file= (a text file of train class names) or '
            "Reed's trainvalclasses.txt and testclasses.txt",
            self.cub.parent,
            LAYOUT,
        )

    def _caption_path(self, i: int) -> Path:
        return self.captions_dir / (self.items[i][0].rsplit(".", 1)[0] + ".txt")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        i = i % len(self)
        path, label, bbox = self.items[i]
        return {
            "image": load_image(self.cub / "images" / path, self.size, bbox),  # (3, size, size)
            "captions": read_captions(self._caption_path(i), self.captions_per_image),
            "label": label,
            "name": path.rsplit(".", 1)[0],
        }

    def __repr__(self) -> str:
        return (
            f"CUBBirds({str(self.cub)!r}, split={self.split!r}, split_by={self.split_by!r}, "
            f"size={self.size}, crop={self.crop}): {len(self)} images"
        )
