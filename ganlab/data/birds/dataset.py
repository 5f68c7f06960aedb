"""The birds world as data: ``BirdsWorld`` draws bird *i* of a split; ``load_birds`` caches.

Bird *i* of a split is a pure function of ``(seed, split, i)``: its species, its individual
attributes (size, pose, orientation, background), its placement and colour jitter, and its
captions all come from its own random stream, so any bird can be drawn alone, in any order,
at any resolution, on any machine, and always looks the same.

Splits (as the text-to-image papers split CUB by species):

* ``"train"``: birds of the 150 training species;
* ``"test"``: other birds of the same 150 species (held-out images);
* ``"zeroshot"``: birds of the 50 held-out species, whose attribute combinations never
  appear in ``"train"``;
* ``"mixed"``: birds of no species, all 14 attributes drawn independently. The bird judge
  trains on these: with only 150 species' combinations, a classifier learns to guess the
  crown from the wings (it scored 24% on zero-shot crowns that way); on mixed birds it has
  to look at each part.

Framings (``framing=``, :data:`ganlab.data.birds.render.FRAMINGS`): ``"full"`` (the default,
the whole scene: what every chapter, the shipped weights and the bird judge use), ``"cub"``
(the square the papers' CUB pipeline crops around the bird's bounding box, side 1.5 x the
box's longer side) and ``"tight"`` (side 1.1 x the box's longer side: the bird fills the
frame). The box is the world's ground truth (:func:`~ganlab.data.birds.render.bird_box`),
and the crop is drawn at full sharpness, not cut out of a small image. The bird judge was
trained on full frames only: on cropped birds its features are out of their training
distribution (bigger birds, less scenery), so a Frechet distance on cropped birds compares
only with a reference ladder measured on the same framing
(:func:`ganlab.evaluation.birds.reference_ladder`), never with full-frame numbers.

Scenes (``scene=``, :data:`ganlab.data.birds.render.SCENES`): ``"full"`` (the default: the
background's details and the perch or ground) or ``"plain"`` (the background's colour
gradient alone), the simpler world the birds study (``ganlab.experiments.birds_study``)
measures; the same rule holds: plain birds compare only with a plain ladder.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ganlab.data.birds.attributes import (
    ATTRIBUTES,
    GROUPS,
    INDIVIDUAL_GROUPS,
    SPECIES_GROUPS,
    WORLD_SEED,
    encode,
    species_attributes,
    species_split,
)
from ganlab.data.birds.captions import make_captions
from ganlab.data.birds.render import (
    Placement,
    check_framing,
    check_scene,
    draw_placement,
    framing_crop,
    render_bird,
)

SPLITS = {"train": 0, "test": 1, "zeroshot": 2, "mixed": 3}
CAPTIONS_PER_IMAGE = 10  # as CUB (Reed et al. collected ten per image)
CACHE_VERSION = 1  # bump when the renderer or the captions change


@dataclass(frozen=True)
class Bird:
    """Everything the world knows about one bird."""

    split: str
    index: int
    species: int  # -1 for the mixed split
    attributes: dict[str, str]
    captions: tuple[str, ...]
    mentions: tuple[dict[str, str], ...]  # per caption: the attributes it names
    placement: Placement


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(f"unknown birds split {split!r}: expected one of {list(SPLITS)}")
    return split


class BirdsWorld:
    """Draws birds of one split; ``world.bird(i)``, ``world.image(i, size)``."""

    def __init__(
        self, split: str = "train", seed: int = 0, captions_per_image: int = CAPTIONS_PER_IMAGE
    ):
        self.split = _check_split(split)
        self.seed = int(seed)
        self.captions_per_image = int(captions_per_image)
        if self.captions_per_image < 1:
            raise ValueError(f"captions_per_image must be >= 1, got {captions_per_image}")
        pool = species_split()["zeroshot" if split == "zeroshot" else "train"]
        self.species = pool

    def _rng(self, i: int, stream: int) -> np.random.Generator:
        return np.random.default_rng([WORLD_SEED, self.seed, SPLITS[self.split], int(i), stream])

    def bird(self, i: int) -> Bird:
        species, attrs, placement = self._drawn(i)
        captions, mentions = make_captions(attrs, self._rng(i, 1), self.captions_per_image)
        return Bird(self.split, int(i), species, attrs, tuple(captions), tuple(mentions), placement)

    def _drawn(self, i: int) -> tuple[int, dict[str, str], Placement]:
        """Bird ``i``'s species, attributes and placement: all its picture needs."""
        if int(i) < 0:
            raise ValueError(f"bird index must be >= 0, got {i}")
        rng = self._rng(i, 0)
        if self.split == "mixed":
            species, attrs = -1, {}
            for group in SPECIES_GROUPS:
                attrs[group] = ATTRIBUTES[group][int(rng.integers(len(ATTRIBUTES[group])))]
        else:
            species = int(self.species[rng.integers(len(self.species))])
            attrs = species_attributes(species)
        for group in INDIVIDUAL_GROUPS:
            values = ATTRIBUTES[group]
            attrs[group] = values[int(rng.integers(len(values)))]
        return species, attrs, draw_placement(rng)

    def image(
        self, i: int, size: int = 64, framing: str = "full", scene: str = "full"
    ) -> np.ndarray:
        """Bird ``i`` as a (size, size, 3) uint8 array, in ``framing`` and ``scene``."""
        _, attrs, placement = self._drawn(i)  # no captions: the picture does not need them
        crop = framing_crop(attrs, placement, framing)
        return render_bird(attrs, placement, size, crop, scene)


def render(attributes: dict[str, str], size: int = 64, seed: int = 0) -> np.ndarray:
    """Draw a bird with the given attributes (all 14 groups), placed by ``seed``."""
    encode(attributes)  # validates every group and value
    return render_bird(
        attributes, draw_placement(np.random.default_rng([WORLD_SEED, 99, seed])), size
    )


@dataclass
class BirdsData(torch.utils.data.Dataset):
    """``n`` birds of a split at one size, held in memory.

    ``images`` (N, 3, H, W) uint8; ``attributes`` (N, 14) int64 codes in ``GROUPS`` order;
    ``species`` (N,); ``captions`` N lists of strings; ``mentions`` (N, K, 14) int64 codes of
    the values each caption names, -1 where it names nothing of that group.
    """

    split: str
    size: int
    seed: int
    images: torch.Tensor
    attributes: torch.Tensor
    species: torch.Tensor
    captions: list[list[str]]
    mentions: torch.Tensor
    framing: str = "full"
    scene: str = "full"

    def __len__(self) -> int:
        return self.images.shape[0]

    def __getitem__(self, i: int) -> dict:
        return {
            "image": to_float(self.images[i]),
            "attributes": self.attributes[i],
            "species": self.species[i],
            "captions": self.captions[i],
        }

    def float_images(self, index=slice(None)) -> torch.Tensor:
        """Images as float32 in [-1, 1]."""
        return to_float(self.images[index])


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 images -> float32 in [-1, 1]."""
    return images.float().div(127.5).sub(1.0)


def _cache_path(
    split: str, n: int, size: int, seed: int, k: int, framing: str = "full", scene: str = "full"
) -> Path:
    """The full framing and scene keep the original file names; others add ``_f<framing>``
    and ``_s<scene>``."""
    root = Path(os.environ.get("GANLAB_CACHE", Path.home() / ".cache" / "ganlab")) / "birds"
    tag = ("" if framing == "full" else f"_f{framing}") + ("" if scene == "full" else f"_s{scene}")
    return root / f"v{CACHE_VERSION}_{split}_n{n}_s{size}_seed{seed}_k{k}{tag}.npz"


def _generate(
    world: BirdsWorld, n: int, size: int, progress: bool, framing: str = "full", scene="full"
) -> dict[str, np.ndarray]:
    k = world.captions_per_image
    images = np.empty((n, size, size, 3), np.uint8)
    attributes = np.empty((n, len(GROUPS)), np.int64)
    species = np.empty(n, np.int64)
    mentions = np.full((n, k, len(GROUPS)), -1, np.int64)
    captions = []
    for i in tqdm(
        range(n),
        desc=f"drawing {n} birds ({world.split}, {size} px, {framing}, {scene} scene)",
        disable=not progress,
    ):
        bird = world.bird(i)
        crop = framing_crop(bird.attributes, bird.placement, framing)
        images[i] = render_bird(bird.attributes, bird.placement, size, crop, scene)
        attributes[i] = encode(bird.attributes)
        species[i] = bird.species
        captions.append(bird.captions)
        for j, named in enumerate(bird.mentions):
            for group, value in named.items():
                mentions[i, j, GROUPS.index(group)] = ATTRIBUTES[group].index(value)
    return {
        "images": images,
        "attributes": attributes,
        "species": species,
        "mentions": mentions,
        "captions": np.asarray(captions, dtype=str),
    }


def load_birds(
    n: int,
    split: str = "train",
    size: int = 64,
    seed: int = 0,
    captions_per_image: int = CAPTIONS_PER_IMAGE,
    cache: bool = True,
    progress: bool = True,
    framing: str = "full",
    scene: str = "full",
) -> BirdsData:
    """The first ``n`` birds of ``split`` at ``size`` px (cached on disk as .npz when asked).

    ``framing``: ``"full"`` (default), ``"cub"`` or ``"tight"`` (see the module docstring); a
    cropped framing costs about 2.5x the drawing (finding the box, a larger canvas).
    ``scene``: ``"full"`` (default) or ``"plain"`` (the background's gradient alone).

    Drawing is about 2 ms per 64 px bird on one core, so 10,000 birds take about 20 s the
    first time and well under a second from the cache (``$GANLAB_CACHE``, default
    ``~/.cache/ganlab/birds``).
    """
    _check_split(split)
    check_framing(framing)
    check_scene(scene)
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if not isinstance(size, int) or not 16 <= size <= 256:
        raise ValueError(f"size must be an int between 16 and 256 px, got {size!r}")
    world = BirdsWorld(split, seed, captions_per_image)
    path = _cache_path(split, n, size, seed, captions_per_image, framing, scene)
    arrays = None
    if cache and path.exists():
        try:
            with np.load(path, allow_pickle=False) as f:
                arrays = {key: f[key] for key in f.files}
        except (OSError, ValueError):
            arrays = None  # a damaged cache file is redrawn, never trusted
    if arrays is None:
        arrays = _generate(world, n, size, progress, framing, scene)
        if cache:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, path)  # atomic: a crash never leaves half a cache file
    return BirdsData(
        split=split,
        size=size,
        seed=seed,
        images=torch.from_numpy(np.ascontiguousarray(arrays["images"].transpose(0, 3, 1, 2))),
        attributes=torch.from_numpy(arrays["attributes"]),
        species=torch.from_numpy(arrays["species"]),
        captions=[list(map(str, row)) for row in arrays["captions"]],
        mentions=torch.from_numpy(arrays["mentions"]),
        framing=framing,
        scene=scene,
    )
