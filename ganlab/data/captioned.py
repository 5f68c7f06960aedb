"""Captioned images in memory, from the birds world or from a real dataset on disk.

The text-to-image chapters (2 to 4) train on ``images`` (N, 3, S, S) uint8, ``species``
(N,) and ``captions`` (N lists of K strings). :func:`load_captioned` gives them from the
birds world (the default) or, with ``root`` (``ganlab train CHAPTER --data-root DIR``), from
the papers' own data: CUB-200-2011 (:class:`ganlab.data.cub.CUBBirds`) or Oxford-102
(:class:`ganlab.data.oxford102.Oxford102Flowers`), whichever layout ``root`` holds.

The real datasets are split by species as the papers do (Reed's ``trainvalclasses.txt`` /
``testclasses.txt`` when present), else by the datasets' official image split; ``split``
``"zeroshot"`` (the world's name for species never seen) is the real data's ``"test"``.
Nothing is downloaded.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ganlab.errors import DataNotFoundError


@dataclass
class CaptionedImages:
    """``images`` (N, 3, S, S) uint8, ``species`` (N,) int64, ``captions`` N lists of K str."""

    images: torch.Tensor
    species: torch.Tensor
    captions: list[list[str]]
    source: str

    def __len__(self) -> int:
        return self.images.shape[0]


def open_real(root: str | os.PathLike, split: str, size: int):
    """The CUB-200-2011 or Oxford-102 dataset under ``root`` (a clear error if neither)."""
    from ganlab.data.cub import ZERO_SHOT_FILES, CUBBirds, find_cub
    from ganlab.data.oxford102 import Oxford102Flowers, find_oxford102

    real_split = {"train": "train", "test": "test", "zeroshot": "test"}.get(split)
    if real_split is None:
        raise ValueError(f"split must be train, test or zeroshot, got {split!r}")
    root = Path(root).expanduser()
    try:
        cub = find_cub(root)
    except DataNotFoundError:
        cub = None
    if cub is not None:
        zero_shot = any(all((b / f).is_file() for f in ZERO_SHOT_FILES) for b in (cub.parent, cub))
        split_by = "classes" if zero_shot else "official"
        return CUBBirds(root, real_split, size, split_by=split_by)
    try:
        flowers = find_oxford102(root)
    except DataNotFoundError:
        raise DataNotFoundError(
            f"--data-root {root}: found neither CUB-200-2011 (CUB_200_2011/images.txt) nor "
            "Oxford-102 (jpg/ beside imagelabels.mat); see ganlab.data.cub.LAYOUT and "
            "ganlab.data.oxford102.LAYOUT"
        ) from None
    zero_shot = all((flowers / f).is_file() for f in ZERO_SHOT_FILES)
    return Oxford102Flowers(
        flowers, real_split, size, split_by="classes" if zero_shot else "official"
    )


def load_captioned(
    n: int,
    split: str = "train",
    size: int = 64,
    root: str | os.PathLike | None = None,
    framing: str = "full",
    scene: str = "full",
):
    """The first ``n`` captioned images of ``split`` at ``size`` px: the birds world's
    (:func:`ganlab.data.birds.load_birds`, in ``framing`` and ``scene``) or, with ``root``,
    the real dataset's (:class:`CaptionedImages`; all of the split if it holds fewer than
    ``n``; framing and scene are the world's, refused with a real dataset)."""
    if root is None:
        from ganlab.data.birds import load_birds

        return load_birds(n, split, size, framing=framing, scene=scene)
    if (framing, scene) != ("full", "full"):
        raise ValueError(
            f"framing={framing!r} and scene={scene!r} are the birds world's options; a real "
            f"dataset (--data-root {root}) is read as it is"
        )
    data = open_real(root, split, size)
    items = [data[i] for i in range(min(n, len(data)))]
    images = torch.stack([item["image"] for item in items])  # float in [-1, 1]
    return CaptionedImages(
        images=images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8),
        species=torch.tensor([item["label"] for item in items], dtype=torch.int64),
        captions=[list(item["captions"]) for item in items],
        source=repr(data),
    )
