r"""FFHQ and CelebA-HQ as folders of face images (the data of PGGAN and StyleGAN).

Flickr-Faces-HQ (Karras et al. 2019): 70,000 aligned 1024 px faces, distributed as PNGs in
folders of 1,000 (``images1024x1024/00000/00000.png`` ...). CelebA-HQ (Karras et al. 2018):
30,000 faces of CelebA at 1024 px, most often found as a flat folder of JPGs or PNGs
(``CelebA-HQ-img/0.jpg`` in CelebAMask-HQ, ``celeba_hq/train/female/...`` in StarGAN v2's
copy). Both papers train on every image (no test split); the metrics compare against
the training images. So the loader is simply: every image under a folder.

>>> from ganlab.data.ffhq import FaceFolder
>>> data = FaceFolder("~/data/ffhq/images1024x1024", size=64)   # nothing is ever downloaded
>>> item = data[0]     # dict(image=(3, 64, 64) float32 in [-1, 1], name="00000/00000")

On-disk layout (see ``LAYOUT``)::

    <root>/                     any depth of sub-folders, searched recursively
      00000/00000.png
      00000/00001.png
      ...
      LICENSE.txt               non-image files are skipped (listed in ``.skipped``)

Images are the files ending in ``.png``, ``.jpg`` or ``.jpeg`` (any case), in the order of
their path relative to ``root``; hidden files (``.DS_Store``, ``._00000.png``) are ignored.

Deviations from the official code:

=============  ===============================================  ===========================
what           official code                                    course default
=============  ===============================================  ===========================
storage        StyleGAN / PGGAN: TFRecords of every power-of-2  the image files, read with
               resolution, made by ``dataset_tool.py``          PIL at ``__getitem__``
resize         PGGAN / StyleGAN: 2 x 2 box averages per level   PIL Lanczos to ``size``
               (``create_from_images``: images must be square   (non-square images are
               powers of 2)                                     centre-cropped to a square
                                                                first)
augmentation   mirror augment (``--mirror-augment``)            none: flip in the training
                                                                loop
=============  ===============================================  ===========================

A file that is not a readable image raises ``DataNotFoundError`` naming it when it is
loaded (opening every image up front would take minutes on 70,000 files; ``verify()`` does
it on request).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torch.utils.data import Dataset

from ganlab.data.cub import PathLike
from ganlab.errors import DataNotFoundError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")

LAYOUT = """\
<root>/                 FFHQ: images1024x1024/; CelebA-HQ: the folder of its images
  00000/00000.png       .png / .jpg / .jpeg, in sub-folders of any depth (or none)
  00000/00001.png
  ..."""


def layout_error(problem: str, looked_at: Path, layout: str) -> DataNotFoundError:
    """A DataNotFoundError that shows the path looked at and the expected tree."""
    return DataNotFoundError(
        f"{problem}\n  looked at: {looked_at}\n  expected layout:\n"
        + "\n".join("    " + line for line in layout.splitlines())
        + "\nNothing is downloaded: put the images there, or pass root= the folder that holds "
        "them."
    )


def list_images(folder: Path) -> tuple[list[Path], list[Path]]:
    """Image files under ``folder`` (recursive, sorted by relative path), and skipped files.

    Skipped: regular files whose suffix is not an image suffix. Hidden files and folders
    (a name starting with ``.``) are ignored altogether.
    """
    images, skipped = [], []
    for path in sorted(folder.rglob("*"), key=lambda p: p.relative_to(folder).as_posix()):
        rel = path.relative_to(folder)
        if any(part.startswith(".") for part in rel.parts) or not path.is_file():
            continue
        (images if path.suffix.lower() in IMAGE_SUFFIXES else skipped).append(path)
    return images, skipped


def load_square_image(path: Path, size: int) -> torch.Tensor:
    """RGB image -> centre-cropped to a square if needed -> Lanczos to ``size``.

    Returns float32 (3, size, size) in [-1, 1]. An unreadable file raises
    ``DataNotFoundError`` naming it.
    """
    try:
        with Image.open(path) as img:
            img = img.convert("RGB")  # decodes the whole file: truncation shows here
    except FileNotFoundError:
        raise DataNotFoundError(f"image {path} not found (was it moved after listing?)") from None
    except (OSError, UnidentifiedImageError, SyntaxError) as exc:
        raise DataNotFoundError(f"image {path} is not a readable image: {exc}") from None
    w, h = img.size
    if w != h:
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        img = img.crop((left, top, left + side, top + side))
    if img.size != (size, size):
        img = img.resize((size, size), Image.Resampling.LANCZOS)
    x = torch.from_numpy(np.array(img, dtype=np.uint8))  # (size, size, 3)
    return x.permute(2, 0, 1).float().div_(127.5).sub_(1.0)


def check_size(size) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive int (pixels), got {size!r}")
    return size


class FaceFolder(Dataset):
    """Every image under ``root`` (FFHQ, CelebA-HQ, or any folder of faces); ``data[i]`` a dict.

    ``image`` float32 (3, size, size) in [-1, 1]; ``name`` the path relative to ``root``
    without its suffix (``"00000/00000"``).

    Args:
        root: the folder (FFHQ's ``images1024x1024/``, a CelebA-HQ image folder).
        size: output side in pixels.
        max_images: keep only the first ``max_images`` in path order (``None``: all).

    ``skipped`` lists the non-image files found (FFHQ ships a ``LICENSE.txt`` among them).
    """

    def __init__(self, root: PathLike, size: int = 64, max_images: int | None = None):
        self.size = check_size(size)
        self.root = Path(root).expanduser()
        if not self.root.is_dir():
            raise layout_error("face image folder not found", self.root, LAYOUT)
        images, self.skipped = list_images(self.root)
        if not images:
            found = f" (only non-image files: {', '.join(p.name for p in self.skipped[:5])})"
            raise layout_error(
                f"no .png / .jpg / .jpeg images under the folder{found if self.skipped else ''}",
                self.root,
                LAYOUT,
            )
        if max_images is not None:
            if isinstance(max_images, bool) or not isinstance(max_images, int) or max_images < 1:
                raise ValueError(f"max_images must be a positive int or None, got {max_images!r}")
            images = images[:max_images]
        self.paths = images

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        path = self.paths[i]
        return {
            "image": load_square_image(path, self.size),  # (3, size, size)
            "name": path.relative_to(self.root).with_suffix("").as_posix(),
        }

    def verify(self) -> list[tuple[Path, str]]:
        """Decode every image; return ``[(path, error message), ...]`` for the unreadable ones."""
        bad = []
        for path in self.paths:
            try:
                load_square_image(path, 1)
            except DataNotFoundError as exc:
                bad.append((path, str(exc)))
        return bad

    def __repr__(self) -> str:
        note = f", skipped {len(self.skipped)} non-image files" if self.skipped else ""
        return f"FaceFolder({str(self.root)!r}, size={self.size}): {len(self)} images{note}"
