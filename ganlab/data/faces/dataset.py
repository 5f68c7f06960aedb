"""The faces world as data: ``FacesWorld`` draws face *i* of a split; ``load_faces`` caches.

Face *i* of a split is a pure function of ``(seed, split, domain, i)``: its domain and kind,
every factor and its fine detail come from its own random stream, so any face can be drawn
alone, in any order, at any resolution, and always looks the same.

Splits:

* ``"train"``: the faces the chapters train on (domains drawn uniformly);
* ``"test"``: other faces, never trained on (held-out metrics, the judge's evaluation);
* ``"reference"``: the reference images of StarGAN v2's reference-guided synthesis
  (``load_faces(n, "reference", domain="dog")``: a style to copy, drawn from a stream of its
  own so it never repeats a training face).

``domain=`` restricts any split to one domain (``cat``, ``dog``, ``wild``); faces of one domain
come from that domain's own stream (StarGAN v2 reads its training data per domain this way).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganlab.data.faces.factors import (
    CATEGORIES,
    DOMAINS,
    RANGES,
    WORLD_SEED,
    Face,
    encode,
    sample_face,
)
from ganlab.data.faces.render import check_size, render_face

SPLITS = {"train": 0, "test": 1, "reference": 2}
CACHE_VERSION = 2  # bump when the factors or the renderer change


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown faces split {split!r}: expected one of {list(SPLITS)}")
    return split


def _check_domain(domain: str | None) -> str | None:
    if domain is not None and domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}: expected one of {list(DOMAINS)} or None")
    return domain


class FacesWorld:
    """Draws faces of one split (and optionally one domain): ``world.face(i)``,
    ``world.image(i, size)``, ``world.image_and_mask(i, size)``."""

    def __init__(self, split: str = "train", seed: int = 0, domain: str | None = None):
        self.split = _check_split(split)
        self.domain = _check_domain(domain)
        self.seed = int(seed)
        self._stream = 0 if domain is None else 1 + DOMAINS.index(domain)

    def face(self, i: int) -> Face:
        if int(i) < 0:
            raise ValueError(f"face index must be >= 0, got {i}")
        rng = np.random.default_rng(
            [WORLD_SEED, self.seed, SPLITS[self.split], self._stream, int(i)]
        )
        return sample_face(rng, self.domain)

    def image(self, i: int, size: int = 64) -> np.ndarray:
        """Face ``i`` as a (size, size, 3) uint8 array."""
        return render_face(self.face(i), size)

    def image_and_mask(self, i: int, size: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Face ``i`` and its (size, size) part labels (indices into ``PARTS``)."""
        return render_face(self.face(i), size, masks=True)


@dataclass
class FacesData(torch.utils.data.Dataset):
    """``n`` faces of a split at one size, held in memory.

    ``images`` (N, 3, H, W) uint8; ``masks`` (N, H, W) uint8 part labels (``PARTS``);
    ``codes`` (N, len(CATEGORIES)) int64 categorical factors in ``CATEGORIES`` order;
    ``values`` (N, len(RANGES)) float32 continuous factors in ``RANGES`` order;
    ``domains`` (N,) int64 (index into ``DOMAINS``).
    """

    split: str
    size: int
    seed: int
    domain: str | None
    images: torch.Tensor
    masks: torch.Tensor
    codes: torch.Tensor
    values: torch.Tensor

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {
            "image": to_float(self.images[i]),
            "domain": self.domains[i],
            "codes": self.codes[i],
            "values": self.values[i],
        }

    @property
    def domains(self) -> torch.Tensor:
        return self.codes[:, list(CATEGORIES).index("domain")]

    def factor(self, name: str) -> torch.Tensor:
        """One factor for every face: codes (int64) or values (float32)."""
        if name in CATEGORIES:
            return self.codes[:, list(CATEGORIES).index(name)]
        if name in RANGES:
            return self.values[:, list(RANGES).index(name)]
        raise ValueError(f"unknown factor {name!r}: expected one of {[*CATEGORIES, *RANGES]}")

    def float_images(self, index=slice(None)) -> torch.Tensor:
        """Images as float32 in [-1, 1]."""
        return to_float(self.images[index])


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def cache_root() -> Path:
    return Path(os.environ.get("GANLAB_CACHE", Path.home() / ".cache" / "ganlab")) / "faces"


def _cache_path(split: str, n: int, size: int, seed: int, domain: str | None) -> Path:
    return cache_root() / f"v{CACHE_VERSION}_{split}_{domain or 'all'}_n{n}_s{size}_seed{seed}.npz"


def _generate(world: FacesWorld, n: int, size: int, progress: bool) -> dict[str, np.ndarray]:
    images = np.empty((n, size, size, 3), np.uint8)
    masks = np.empty((n, size, size), np.uint8)
    codes = np.empty((n, len(CATEGORIES)), np.int64)
    values = np.empty((n, len(RANGES)), np.float32)
    desc = f"drawing {n} faces ({world.split}, {world.domain or 'all domains'}, {size} px)"
    for i in tqdm(range(n), desc=desc, disable=not progress):
        face = world.face(i)
        images[i], masks[i] = render_face(face, size, masks=True)
        codes[i], values[i] = encode(face)
    return {"images": images, "masks": masks, "codes": codes, "values": values}


def load_faces(
    n: int,
    split: str = "train",
    size: int = 64,
    seed: int = 0,
    domain: str | None = None,
    cache: bool = True,
    progress: bool = True,
) -> FacesData:
    """The first ``n`` faces of ``split`` (of one ``domain``, or all) at ``size`` px.

    Drawing a 64 px face and its masks takes about 3.4 ms of CPU on one core (2.2 ms for the
    image alone), so 20,000 faces take about a minute the first time.

    Cached on disk as .npz (``$GANLAB_CACHE``, default ``~/.cache/ganlab/faces``), written to
    a temporary file and renamed, so that a crash or a second process never leaves half a
    file; a damaged cache file is redrawn, never trusted.
    """
    _check_split(split)
    _check_domain(domain)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    size = check_size(size)
    path = _cache_path(split, n, size, seed, domain)
    arrays = None
    if cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {key: f[key] for key in ("images", "masks", "codes", "values")}
        except (OSError, ValueError, KeyError):
            arrays = None
    if arrays is None:
        arrays = _generate(FacesWorld(split, seed, domain), n, size, progress)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, path)  # atomic: a reader sees the old file or the whole new one
    return FacesData(
        split=split,
        size=size,
        seed=seed,
        domain=domain,
        images=torch.from_numpy(np.ascontiguousarray(arrays["images"].transpose(0, 3, 1, 2))),
        masks=torch.from_numpy(arrays["masks"]),
        codes=torch.from_numpy(arrays["codes"]),
        values=torch.from_numpy(arrays["values"]),
    )


def render(face: Face, size: int = 64, masks: bool = False):
    """Draw a given :class:`Face` (e.g. ``world.face(3).replace(yaw=0.4)``)."""
    return render_face(face, size, masks=masks)


def training_images(n: int, size: int, data_root: str | None = None) -> torch.Tensor:
    """Unconditional training faces as uint8 (N, 3, size, size): the first ``n`` of the
    world's ``train`` split, or of a real face folder (FFHQ / CelebA-HQ) at ``data_root``."""
    if not data_root:
        return load_faces(n, "train", size=size).images
    from ganlab.data.ffhq import FaceFolder

    folder = FaceFolder(data_root, size=size)
    images = torch.stack([folder[i]["image"] for i in range(min(n, len(folder)))])  # [-1, 1]
    return images.add(1).mul(127.5).round().clamp(0, 255).to(torch.uint8)
