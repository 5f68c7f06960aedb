r"""The renderer: paints an image from a semantic map (any map, painted by hand too) and a style.

``render(labels, style)`` reads only the label map (and, optionally, an instance map) and a
:class:`Style`; it never sees the layout that made the map, so a map a person paints is
rendered exactly like a map of the world. The style changes the look, never the layout:

* ``time``: ``"morning"``, ``"noon"``, ``"evening"`` or ``"overcast"`` (sky gradient, light
  colour, brightness, saturation);
* ``season``: ``"spring"``, ``"summer"``, ``"autumn"`` or ``"winter"`` (grass, fields,
  trees, water);
* ``tint``: a small per-channel palette shift (3 floats in about [-0.06, 0.06]);
* ``seed``: the texture noise.

Each pixel's colour is the class colour of the style, modulated by textures that a small
network can learn (a generator must reproduce them, a segmenter can read them):

* value noise (smoothly interpolated random lattices, defined in continuous image
  coordinates so the texture is the same scene at every size), per class amplitude;
* vertical gradients: the sky lightens toward the bottom of the image, water darkens toward
  the viewer and mixes in the sky's horizon colour, mountains darken toward their foot;
* shading by the distance ``d`` to the nearest class (or instance) boundary (a Euclidean
  distance transform): trees and rocks darken toward their outlines,
  ``c (1 - a e^{-d / w})``, clouds go from grey at the rim to white inside;
* stripes along the rows of fields, streaks on water.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import distance_transform_edt

from ganlab.data.landscapes.classes import (
    CLOUD,
    FIELD,
    GRASS,
    MOUNTAIN,
    NUM_CLASSES,
    ROCK,
    SAND,
    SKY,
    SNOW,
    TREE,
    WATER,
)

TIMES = ("morning", "noon", "evening", "overcast")
SEASONS = ("spring", "summer", "autumn", "winter")


@dataclass(frozen=True)
class Style:
    time: str = "noon"
    season: str = "summer"
    tint: tuple[float, float, float] = (0.0, 0.0, 0.0)
    seed: int = 0

    def __post_init__(self):
        if self.time not in TIMES:
            raise ValueError(f"unknown time of day {self.time!r}: expected one of {TIMES}")
        if self.season not in SEASONS:
            raise ValueError(f"unknown season {self.season!r}: expected one of {SEASONS}")
        if len(self.tint) != 3:
            raise ValueError(f"tint must be 3 floats (r, g, b shifts), got {self.tint!r}")

    def codes(self) -> tuple[int, int]:
        """``(time index, season index)``: the style's discrete factors as ints."""
        return TIMES.index(self.time), SEASONS.index(self.season)


def draw_style(rng: np.random.Generator) -> Style:
    """A random style: uniform time and season, a small tint, a texture seed."""
    return Style(
        time=TIMES[int(rng.integers(len(TIMES)))],
        season=SEASONS[int(rng.integers(len(SEASONS)))],
        tint=tuple(float(t) for t in rng.uniform(-0.06, 0.06, 3)),
        seed=int(rng.integers(2**31)),
    )


# Class colours (RGB in [0, 1]) at summer noon; seasons and times modify them below.
_BASE = {
    SKY: (0.30, 0.55, 0.90),  # the zenith; the horizon colour is _SKY_LOW
    CLOUD: (0.98, 0.98, 0.99),
    MOUNTAIN: (0.50, 0.46, 0.47),
    SNOW: (0.95, 0.97, 1.00),
    WATER: (0.10, 0.30, 0.55),
    SAND: (0.90, 0.80, 0.56),
    GRASS: (0.33, 0.62, 0.22),
    FIELD: (0.86, 0.72, 0.28),
    TREE: (0.10, 0.36, 0.13),
    ROCK: (0.52, 0.52, 0.54),
}
_SKY_LOW = (0.72, 0.86, 0.98)
_SEASON = {
    "spring": {GRASS: (0.45, 0.74, 0.30), FIELD: (0.55, 0.72, 0.28), TREE: (0.28, 0.56, 0.20)},
    "summer": {},
    "autumn": {GRASS: (0.55, 0.56, 0.24), FIELD: (0.72, 0.50, 0.22), TREE: (0.72, 0.38, 0.10)},
    "winter": {
        GRASS: (0.58, 0.66, 0.55),
        FIELD: (0.80, 0.78, 0.70),
        TREE: (0.16, 0.28, 0.22),
        WATER: (0.22, 0.34, 0.46),
    },  # fmt: skip
}
# time: (zenith, horizon, light colour multiplier, saturation)
_TIME = {
    "morning": ((0.45, 0.62, 0.88), (0.96, 0.86, 0.72), (1.04, 0.98, 0.90), 1.0),
    "noon": (_BASE[SKY], _SKY_LOW, (1.0, 1.0, 1.0), 1.0),
    "evening": ((0.26, 0.26, 0.55), (0.98, 0.58, 0.34), (1.05, 0.80, 0.66), 0.95),
    "overcast": ((0.60, 0.62, 0.66), (0.80, 0.81, 0.82), (0.92, 0.93, 0.95), 0.5),
}


def class_colors(style: Style) -> np.ndarray:
    """The (10, 3) base colour of every class under ``style`` (before textures)."""
    table = np.array([_BASE[c] for c in range(NUM_CLASSES)], np.float64)
    for c, rgb in _SEASON[style.season].items():
        table[c] = rgb
    return table


def _value_noise(rng: np.random.Generator, size: int, fu: float, fv: float) -> np.ndarray:
    """(S, S) smooth noise in [-1, 1]: a random lattice of fu x fv cells over the unit square,
    interpolated with smoothstep weights at the pixel centres."""
    nu, nv = int(np.ceil(fu)) + 2, int(np.ceil(fv)) + 2
    lattice = rng.uniform(-1, 1, (nv, nu))
    c = (np.arange(size) + 0.5) / size
    x, y = c * fu, c * fv
    ix, iy = x.astype(int), y.astype(int)
    tx, ty = x - ix, y - iy
    tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
    top = lattice[iy][:, ix] * (1 - tx) + lattice[iy][:, ix + 1] * tx
    bottom = lattice[iy + 1][:, ix] * (1 - tx) + lattice[iy + 1][:, ix + 1] * tx
    return top * (1 - ty)[:, None] + bottom * ty[:, None]


def boundary_distance(labels: np.ndarray, instances: np.ndarray | None = None) -> np.ndarray:
    """(S, S) Euclidean distance (in image fractions, pixels / S) from each pixel to the nearest
    pixel whose 4-neighbourhood holds another class (or another instance)."""
    edge = np.zeros(labels.shape, bool)
    for key in (labels,) if instances is None else (labels, instances):
        dv = key[1:, :] != key[:-1, :]
        du = key[:, 1:] != key[:, :-1]
        edge[1:, :] |= dv
        edge[:-1, :] |= dv
        edge[:, 1:] |= du
        edge[:, :-1] |= du
    if not edge.any():
        return np.full(labels.shape, 1.0)
    return distance_transform_edt(~edge) / labels.shape[0]


def check_labels(labels) -> np.ndarray:
    """A square (S, S) integer map in 0..9 with 16 <= S <= 256; returns it as an int array."""
    labels = np.asarray(labels)
    if labels.ndim != 2 or labels.shape[0] != labels.shape[1]:
        raise ValueError(f"labels must be a square (S, S) map of class ids, got {labels.shape}")
    if not 16 <= labels.shape[0] <= 256:
        raise ValueError(f"labels must be between 16 and 256 px, got {labels.shape[0]}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must hold integer class ids, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= NUM_CLASSES:
        raise ValueError(
            f"labels must lie in 0..{NUM_CLASSES - 1}, got {labels.min()}..{labels.max()}"
        )
    return labels.astype(np.int64)


def render(labels, style: Style = Style(), instances=None) -> np.ndarray:
    """Paint ``labels`` (S, S) class ids (16 <= S <= 256) in ``style`` -> (S, S, 3) uint8.

    ``instances`` (S, S) ints, optional: instance ids; their boundaries shade like class
    boundaries (two touching trees stay two trees). Nothing else is read.
    """
    labels = check_labels(labels)
    if instances is not None:
        instances = np.asarray(instances)
        if instances.shape != labels.shape:
            raise ValueError(f"instances must match labels {labels.shape}, got {instances.shape}")
    s = labels.shape[0]
    rng = np.random.default_rng([7, style.seed])
    zenith, horizon, light, saturation = _TIME[style.time]
    zenith, horizon = np.array(zenith), np.array(horizon)
    img = class_colors(style)[labels]  # (S, S, 3)
    row = ((np.arange(s) + 0.5) / s)[:, None]  # v of every row, (S, 1)

    coarse = _value_noise(rng, s, 6, 6)
    fine = _value_noise(rng, s, 24, 24)
    streak = _value_noise(rng, s, 4, 48)  # stretched along u: water ripples, field rows
    d = boundary_distance(labels, instances)

    def where(c):
        return labels == c

    # sky: zenith at the top, the horizon colour lower down
    m = where(SKY)
    t = np.clip(row * 1.6, 0, 1)[..., None] * np.ones((1, s, 1))
    img[m] = (zenith * (1 - t) + horizon * t)[m]
    # clouds: grey at the rim, white inside; their undersides take the horizon colour
    m = where(CLOUD)
    inside = 1 - np.exp(-d / 0.02)
    cloud = (
        img * (0.78 + 0.22 * inside)[..., None] + 0.12 * (horizon - 0.9) * (1 - inside)[..., None]
    )
    img[m] = cloud[m]
    # mountains: rock grey, mottled, darker toward their foot; snow with blue-shaded edges
    for c, amp in ((MOUNTAIN, 0.16), (SNOW, 0.05)):
        m = where(c)
        shade = 1 + amp * (0.6 * coarse + 0.4 * fine) - (0.25 if c == MOUNTAIN else 0) * row
        img[m] = (img * shade[..., None])[m]
    m = where(SNOW)
    img[m] = (img - np.array([0.10, 0.06, 0.0]) * np.exp(-d / 0.02)[..., None])[m]
    # water: reflects the horizon colour far away, deep colour near; ripple streaks
    m = where(WATER)
    reflect = np.clip(1.2 - 1.4 * row, 0, 1)[..., None] * 0.55
    water = img * (1 - reflect) + horizon * reflect + 0.06 * streak[..., None]
    img[m] = water[m]
    # sand, grass, fields: grainy textures; fields in stripes along the rows
    for c, amp in ((SAND, 0.06), (GRASS, 0.10), (FIELD, 0.08), (ROCK, 0.10)):
        m = where(c)
        img[m] = (img * (1 + amp * (0.5 * coarse + 0.5 * fine))[..., None])[m]
    m = where(FIELD)
    stripes = 1 + 0.12 * np.sin(2 * np.pi * (row * 24 + 2 * coarse))
    img[m] = (img * stripes[..., None])[m]
    # trees and rocks: dark outlines fading inward, leafy noise on trees
    for c, a, w in ((TREE, 0.45, 0.015), (ROCK, 0.4, 0.012)):
        m = where(c)
        shade = 1 - a * np.exp(-d / w) + (0.15 * fine if c == TREE else 0)
        img[m] = (img * shade[..., None])[m]

    # the light: its colour, saturation (overcast greys things), the palette tint
    img = img * np.array(light)
    if saturation != 1.0:
        grey = img.mean(axis=2, keepdims=True)
        img = grey + saturation * (img - grey)
    img = img + np.array(style.tint)
    return np.clip(img * 255 + 0.5, 0, 255).astype(np.uint8)
