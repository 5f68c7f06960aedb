"""The birds world's part attributes, its 200 species and the zero-shot split.

CUB-200-2011 describes each bird by 312 binary part attributes (crown colour, wing pattern,
bill shape...) and groups birds into 200 species; the text-to-image papers train on 150
species and hold out 50 to test zero-shot generation. The birds world mirrors that:

* 14 attribute **groups**, each with a few values (``ATTRIBUTES``). Ten are fixed by the
  species (``SPECIES_GROUPS``: plumage colours, wing pattern, beak, eye); four vary from bird
  to bird (``INDIVIDUAL_GROUPS``: size, pose, orientation, background).
* 200 **species**, each one combination of the species groups, drawn once from
  ``WORLD_SEED`` (the world's fixed taxonomy; every machine gets the same table).
* a **zero-shot split**: 150 training species and 50 held-out species whose attribute
  combinations never appear in training (each single value does).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

WORLD_SEED = 2016

# Colours as sRGB; the renderer jitters them a little per bird.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (196, 32, 38),
    "orange": (236, 124, 28),
    "yellow": (242, 206, 46),
    "green": (58, 146, 62),
    "blue": (42, 92, 198),
    "purple": (118, 58, 160),
    "brown": (122, 78, 42),
    "black": (28, 28, 30),
    "white": (238, 238, 232),
    "grey": (132, 132, 136),
}
COLORS = tuple(PALETTE)

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "crown_color": COLORS,
    "wing_color": COLORS,
    "breast_color": COLORS,
    "belly_color": COLORS,
    "tail_color": COLORS,
    "wing_pattern": ("plain", "striped", "spotted"),
    "beak_shape": ("pointed", "cone", "hooked", "curved"),
    "beak_length": ("short", "long"),
    "beak_color": ("black", "orange", "yellow", "grey"),
    "eye_color": ("black", "red", "yellow", "white"),
    "size": ("small", "medium", "large"),
    "pose": ("perched", "flying", "standing"),
    "orientation": ("left", "right"),
    "background": ("sky", "forest", "water", "field"),
}
GROUPS = tuple(ATTRIBUTES)
SPECIES_GROUPS = GROUPS[:10]
INDIVIDUAL_GROUPS = GROUPS[10:]

NUM_SPECIES = 200
NUM_TRAIN_SPECIES = 150

_BIRD_NOUNS = (
    "warbler",
    "finch",
    "sparrow",
    "tanager",
    "vireo",
    "flycatcher",
    "wren",
    "grosbeak",
    "bunting",
    "oriole",
    "kingbird",
    "shrike",
    "thrush",
    "jay",
    "swallow",
    "tern",
)


def encode(attributes: dict[str, str]) -> np.ndarray:
    """Attribute dict -> int64 codes (one per group, in ``GROUPS`` order)."""
    missing = [g for g in GROUPS if g not in attributes]
    if missing:
        raise ValueError(f"attributes lack the groups {missing}; expected all of {list(GROUPS)}")
    codes = []
    for group in GROUPS:
        value = attributes[group]
        if value not in ATTRIBUTES[group]:
            raise ValueError(
                f"{group}={value!r} is not a value of the birds world; "
                f"expected one of {ATTRIBUTES[group]}"
            )
        codes.append(ATTRIBUTES[group].index(value))
    return np.asarray(codes, dtype=np.int64)


def decode(codes) -> dict[str, str]:
    """int codes (one per group) -> attribute dict."""
    codes = [int(c) for c in codes]
    if len(codes) != len(GROUPS):
        raise ValueError(f"expected {len(GROUPS)} attribute codes, got {len(codes)}")
    return {g: ATTRIBUTES[g][c] for g, c in zip(GROUPS, codes, strict=True)}


@lru_cache(maxsize=1)
def species_table() -> np.ndarray:
    """(200, 10) int64 codes of the species groups, one row per species, all distinct."""
    rng = np.random.default_rng(WORLD_SEED)
    rows: list[tuple[int, ...]] = []
    seen: set[tuple[int, ...]] = set()
    while len(rows) < NUM_SPECIES:
        row = tuple(int(rng.integers(len(ATTRIBUTES[g]))) for g in SPECIES_GROUPS)
        colours = set(row[:5])
        if len(colours) < 2 or row in seen:  # a bird of one colour everywhere is dull
            continue
        seen.add(row)
        rows.append(row)
    return np.asarray(rows, dtype=np.int64)


@lru_cache(maxsize=1)
def species_split() -> dict[str, np.ndarray]:
    """Species ids of the 150 training species and the 50 held-out (zero-shot) species."""
    order = np.random.default_rng([WORLD_SEED, 1]).permutation(NUM_SPECIES)
    return {
        "train": np.sort(order[:NUM_TRAIN_SPECIES]),
        "zeroshot": np.sort(order[NUM_TRAIN_SPECIES:]),
    }


def species_attributes(species: int) -> dict[str, str]:
    """The species-level attributes of one species (crown colour ... eye colour)."""
    if not 0 <= int(species) < NUM_SPECIES:
        raise ValueError(f"species must be in [0, {NUM_SPECIES}), got {species}")
    row = species_table()[int(species)]
    return {g: ATTRIBUTES[g][int(c)] for g, c in zip(SPECIES_GROUPS, row, strict=True)}


def species_name(species: int) -> str:
    """A readable name such as ``"red-crowned warbler"`` (names may repeat across species)."""
    attrs = species_attributes(species)
    noun = _BIRD_NOUNS[int(species) % len(_BIRD_NOUNS)]
    return f"{attrs['crown_color']}-crowned {attrs['breast_color']}-breasted {noun}"
