r"""Cityscapes (``leftImg8bit`` + ``gtFine``) as SPADE loads it: street image + label map.

Cityscapes (Cordts et al. 2016): 2,975 training and 500 validation street scenes from 50
cities at 2048 x 1024, with fine annotations. SPADE trains on it at 512 x 256 (mIoU 62.3,
accuracy 81.9, FID 71.8). On-disk layout (``LAYOUT``)::

    <root>/
      leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
      gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png      class ids 0..33
      gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png   optional

>>> from ganlab.data.cityscapes import Cityscapes
>>> data = Cityscapes("~/data/cityscapes", split="val", size=256)   # nothing is downloaded
>>> item = data[0]   # image (3, 256, 512); labels (256, 512) int64; instances; name

Labels are the ``labelIds`` (0..33; SPADE uses ``--label_nc 35``, no shift). Instance maps
(``instanceIds``: ids >= 1000 are ``class * 1000 + k`` for countable classes) are returned
when present (``instances``: int64, else ``None``); SPADE turns them into an edge map.
Images keep SPADE's aspect ratio 2 (``--aspect_ratio 2.0``): ``size`` is the height and the
width is ``2 * size``.

Deviations from the official code:

=========  ===========================================  ====================================
what       SPADE                                        course default
=========  ===========================================  ====================================
resize     ``fixed``: to ``load_size`` wide, aspect 2   the same resize (bicubic image,
           (512 x 256), random flip                     nearest maps), no flip
=========  ===========================================  ====================================
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from ganlab.data.ade20k import check_size, image_tensor, label_tensor, open_image
from ganlab.data.cub import PathLike, layout_error

NUM_CLASSES = 35  # SPADE's label_nc for Cityscapes (labelIds 0..33, plus one)
SPLITS = ("train", "val", "test")
ASPECT_RATIO = 2.0
IMAGE_SUFFIX = "_leftImg8bit.png"
LABEL_SUFFIX = "_gtFine_labelIds.png"
INSTANCE_SUFFIX = "_gtFine_instanceIds.png"
LAYOUT = """\
<root>/
  leftImg8bit/<split>/<city>/<city>_<seq>_<frame>_leftImg8bit.png
  gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_labelIds.png
  gtFine/<split>/<city>/<city>_<seq>_<frame>_gtFine_instanceIds.png   (optional)
  (split: train, val or test)"""


class Cityscapes(Dataset):
    """One split of Cityscapes; ``data[i]`` is a dict ``image``, ``labels``, ``instances``,
    ``name`` (``<city>_<seq>_<frame>``)."""

    def __init__(self, root: PathLike, split: str = "train", size: int = 256):
        if split not in SPLITS:
            raise ValueError(f"unknown Cityscapes split {split!r}: expected one of {SPLITS}")
        self.split, self.size = split, check_size(size)
        self.root = root = Path(root).expanduser()
        images, labels = root / "leftImg8bit" / split, root / "gtFine" / split
        for folder in (images, labels):
            if not folder.is_dir():
                raise layout_error(f"Cityscapes folder {folder} not found", folder, LAYOUT)
        self.images = sorted(images.glob(f"*/*{IMAGE_SUFFIX}"))
        if not self.images:
            raise layout_error(f"no *{IMAGE_SUFFIX} files in <city> folders", images, LAYOUT)
        self.names = [p.name[: -len(IMAGE_SUFFIX)] for p in self.images]
        self.labels = [labels / p.parent.name / f"{n}{LABEL_SUFFIX}"
                       for p, n in zip(self.images, self.names, strict=True)]  # fmt: skip
        missing = [p.name for p in self.labels if not p.is_file()]
        if missing:
            raise layout_error(
                f"{len(missing)} images have no labelIds map (first: {missing[0]})", labels, LAYOUT
            )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> dict:
        i = range(len(self))[i]
        hw = (self.size, int(round(self.size * ASPECT_RATIO)))
        inst = self.labels[i].with_name(self.names[i] + INSTANCE_SUFFIX)
        return {
            "image": image_tensor(open_image(self.images[i], "RGB"), hw),
            "labels": label_tensor(open_image(self.labels[i], "L"), hw),
            "instances": label_tensor(open_image(inst, "I"), hw) if inst.is_file() else None,
            "name": self.names[i],
        }

    def __repr__(self) -> str:
        return f"Cityscapes({self.root}, split={self.split!r}, size={self.size}, n={len(self)})"
