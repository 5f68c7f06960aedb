r"""AFHQ (Animal Faces-HQ) in StarGAN v2's layout: one folder per split and domain.

AFHQ (Choi et al. 2020): 15,000 animal faces at 512 px in three domains, cat, dog and wild
(about 5,000 each; "wild" mixes several species: fox, lion, tiger, wolf, ...), with 500
validation images per domain. StarGAN v2 (clovaai/stargan-v2) reads it as::

    <root>/                       e.g. data/afhq/
      train/
        cat/flickr_cat_000002.jpg ...
        dog/...
        wild/...
      val/
        cat/ dog/ wild/

>>> from ganlab.data.afhq import AFHQ
>>> data = AFHQ("~/data/afhq", split="train", size=64)   # nothing is ever downloaded
>>> item = data[0]   # dict(image=(3, 64, 64) in [-1, 1], label=0, domain="cat", name=...)

Labels are the domain's index in ``domains`` (default ``("cat", "dog", "wild")``: the sorted
folder names, as StarGAN v2's ``ImageFolder`` numbers them). StarGAN v2's CelebA-HQ copy
has the same layout with the domains ``female`` and ``male``: ``AFHQ(root,
domains=("female", "male"))`` reads it. Images inside a domain folder are found
recursively, as :func:`ganlab.data.ffhq.list_images` (non-image files are skipped and
listed in ``.skipped``).

Deviations from the official code:

==============  ==========================================  ================================
what            official code                               course default
==============  ==========================================  ================================
resize          training: ``RandomResizedCrop(size,         PIL Lanczos to ``size``,
                scale=[0.8, 1.0], ratio=[0.9, 1.1])`` with  deterministic (augment in the
                probability 0.5, ``Resize``, random flip;   training loop); non-square
                evaluation: ``Resize([size, size])``        images centre-cropped first
domains         every sub-folder of ``train/``              the ``domains`` given; another
                                                            sub-folder is an error
sampling        ``make_balanced_sampler``: each domain      the files in (domain, path)
                drawn equally often                         order: balance in the loop
==============  ==========================================  ================================
"""

from __future__ import annotations

from pathlib import Path

from torch.utils.data import Dataset

from ganlab.data.cub import PathLike
from ganlab.data.ffhq import check_size, layout_error, list_images, load_square_image
from ganlab.errors import DataNotFoundError

DOMAINS = ("cat", "dog", "wild")
SPLITS = ("train", "val")


def layout(domains=DOMAINS) -> str:
    """The expected tree for these domains."""
    lines = ["<root>/"]
    for split in SPLITS:
        lines.append(f"  {split}/")
        width = max(len(d) for d in domains) + 1
        lines += [f"    {d + '/':<{width}}  *.png / *.jpg / *.jpeg" for d in domains]
    return "\n".join(lines)


class AFHQ(Dataset):
    """One split of AFHQ (or of any ``split/domain/`` image tree); ``data[i]`` is a dict.

    ``image`` float32 (3, size, size) in [-1, 1]; ``label`` int, the index of ``domain``
    in ``domains``; ``domain`` str; ``name`` ``"<domain>/<file name without suffix>"``.

    Args:
        root: the folder holding ``train/`` and ``val/`` (StarGAN v2's ``data/afhq``).
        split: ``"train"`` or ``"val"``.
        size: output side in pixels.
        domains: the domain folder names, in label order.

    Every domain folder must exist and hold at least one image; a sub-folder of the split
    that is not a domain is an error too (it would silently drop data).
    """

    def __init__(
        self,
        root: PathLike,
        split: str = "train",
        size: int = 64,
        domains: tuple[str, ...] = DOMAINS,
    ):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        self.size, self.split = check_size(size), split
        self.domains = tuple(domains)
        if len(self.domains) < 1 or len(set(self.domains)) != len(self.domains):
            raise ValueError(f"domains must be distinct folder names, got {domains!r}")
        self.root = Path(root).expanduser()
        tree = layout(self.domains)
        if not self.root.is_dir():
            raise layout_error("AFHQ folder not found", self.root, tree)
        folder = self.root / split
        if not folder.is_dir():
            hint = ""
            if self.root.name in SPLITS or any((self.root / d).is_dir() for d in self.domains):
                hint = f" (root looks like a split folder: pass its parent, {self.root.parent})"
            raise layout_error(f"no {split}/ folder in root{hint}", self.root, tree)
        present = sorted(p.name for p in folder.iterdir() if p.is_dir() and p.name[0] != ".")
        missing = [d for d in self.domains if d not in present]
        extra = [d for d in present if d not in self.domains]
        if missing or extra:
            problem = f"{split}/ must hold exactly the domain folders {', '.join(self.domains)}"
            problem += (
                f"; missing: {', '.join(missing) or '-'}; unexpected: {', '.join(extra) or '-'}"
            )
            problem += f" (found: {', '.join(present) or 'no folders'})"
            raise layout_error(problem, folder, tree)

        self.items: list[tuple[Path, int]] = []
        self.skipped: list[Path] = []
        for label, domain in enumerate(self.domains):
            images, skipped = list_images(folder / domain)
            if not images:
                raise layout_error(
                    f"domain folder {split}/{domain}/ holds no .png / .jpg / .jpeg images",
                    folder / domain,
                    tree,
                )
            self.items += [(p, label) for p in images]
            self.skipped += skipped

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> dict:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for {len(self)} images")
        path, label = self.items[i]
        domain = self.domains[label]
        rel = path.relative_to(self.root / self.split / domain).with_suffix("").as_posix()
        return {
            "image": load_square_image(path, self.size),  # (3, size, size)
            "label": label,
            "domain": domain,
            "name": f"{domain}/{rel}",
        }

    def labels(self) -> list[int]:
        """The label of every item, without loading images (for a balanced sampler)."""
        return [label for _, label in self.items]

    def verify(self) -> list[tuple[Path, str]]:
        """Decode every image; return ``[(path, error message), ...]`` for the unreadable ones."""
        bad = []
        for path, _ in self.items:
            try:
                load_square_image(path, 1)
            except DataNotFoundError as exc:
                bad.append((path, str(exc)))
        return bad

    def __repr__(self) -> str:
        counts = {d: 0 for d in self.domains}
        for _, label in self.items:
            counts[self.domains[label]] += 1
        per = ", ".join(f"{d}={n}" for d, n in counts.items())
        note = f", skipped {len(self.skipped)} non-image files" if self.skipped else ""
        return f"AFHQ({str(self.root)!r}, split={self.split!r}, size={self.size}): {per}{note}"
