r"""Layouts: the hidden parameters of a landscape, and the semantic + instance maps they give.

A :class:`Layout` is drawn from a random stream (:func:`draw_layout`) and rasterised at any
size (:func:`rasterize`). All geometry lives in continuous image coordinates
:math:`(u, v) \in [0, 1]^2` (``u`` to the right, ``v`` down), so a layout drawn at 16 px and at
256 px is the same scene, sampled more or less finely. Pixel (row i, column j) of an S px map
is the point ``u = (j + 0.5) / S, v = (i + 0.5) / S``.

The scene, back to front:

* the **horizon** at height ``v = h``; above it **sky**;
* zero to two **mountain** ridges standing on the horizon, each a sum of sines
  ``top(u) = h - H (0.25 + 0.75 p(u))``, ``p`` in [0, 1]; peaks above the ridge's snow line
  carry **snow** caps;
* **clouds** (instances), unions of ellipses, painted only over sky (behind the mountains);
* below the horizon **grass**, with rectangular-ish **field** patches;
* **water**: a sea (from the horizon down to a wavy shore line, often with a **sand**
  beach) or a lake (an ellipse, sometimes with a sand rim), or none;
* **trees** (instances: conifers or round broadleaves, with trunks) and **rocks** (instances:
  half-buried ellipses) stand on grass, fields or sand, sized by perspective (nearer, lower
  in the image, is larger), drawn far to near so that near ones hide far ones.

The renderer (:mod:`ganlab.data.landscapes.render`) never sees any of this: it paints from
the rasterised map alone, as a generator has to.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ganlab.data.landscapes.classes import (
    CLOUD,
    FIELD,
    GRASS,
    MOUNTAIN,
    ROCK,
    SAND,
    SKY,
    SNOW,
    TREE,
    WATER,
)


@dataclass(frozen=True)
class Ridge:
    height: float  # H: the tallest peak's height above the horizon (image fraction)
    freqs: tuple[float, ...]  # p(u) = normalised sum_k a_k sin(2 pi f_k u + phi_k)
    amps: tuple[float, ...]
    phases: tuple[float, ...]
    snow_line: float | None  # snow above h - snow_line * H (None: no snow)


@dataclass(frozen=True)
class Thing:
    """One countable object: a tree, a rock or a cloud, at (u, v) of its base (or centre)."""

    kind: str  # "conifer", "broadleaf", "rock", "cloud"
    u: float
    v: float
    size: float
    parts: tuple[tuple[float, float, float], ...] = ()  # cloud puffs: (du, dv, radius)


@dataclass(frozen=True)
class Layout:
    horizon: float
    ridges: tuple[Ridge, ...]
    water: str  # "sea", "lake" or "none"
    shore: tuple[float, ...]  # sea: (depth, wobble, freq, phase, beach width)
    lake: tuple[float, ...]  # lake: (cu, cv, ru, rv, sand rim)
    fields: tuple[tuple[float, float, float, float, float], ...]  # (v0, v1, u0, u1, slant)
    things: tuple[Thing, ...]  # clouds first, then trees and rocks far to near


def _ridge_top(r: Ridge, u: np.ndarray, h: float) -> np.ndarray:
    p = sum(a * np.sin(2 * np.pi * f * u + ph) for f, a, ph in zip(r.freqs, r.amps, r.phases))
    p = 0.5 + 0.5 * p / sum(r.amps)  # in [0, 1]
    return h - r.height * (0.25 + 0.75 * p)


def stuff_labels(layout: Layout, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The stuff class (no things) at points ``(u, v)`` (broadcast arrays) -> int64 labels."""
    u, v = np.broadcast_arrays(np.asarray(u, float), np.asarray(v, float))
    h = layout.horizon
    lab = np.full(u.shape, SKY, np.int64)
    for r in layout.ridges:  # back ridge first; the front one overwrites it
        top = _ridge_top(r, u, h)
        mountain = (v >= top) & (v < h)
        lab[mountain] = MOUNTAIN
        if r.snow_line is not None:
            line = h - r.snow_line * r.height + 0.012 * np.sin(37 * u + 3 * r.phases[0])
            lab[mountain & (v < line)] = SNOW
    ground = v >= h
    lab[ground] = GRASS
    for v0, v1, u0, u1, slant in layout.fields:
        dv = slant * (u - u0)
        lab[ground & (v >= v0 + dv) & (v < v1 + dv) & (u >= u0) & (u < u1)] = FIELD
    if layout.water == "sea":
        depth, wobble, freq, phase, beach = layout.shore
        shore = h + depth + wobble * np.sin(2 * np.pi * freq * u + phase)
        lab[ground & (v >= shore) & (v < shore + beach)] = SAND
        lab[ground & (v < shore)] = WATER
    elif layout.water == "lake":
        cu, cv, ru, rv, rim = layout.lake
        e = ((u - cu) / ru) ** 2 + ((v - cv) / rv) ** 2
        if rim > 0:
            lab[ground & (e < (1 + rim) ** 2)] = SAND
        lab[ground & (e < 1)] = WATER
    return lab


def _thing_mask(t: Thing, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    s = t.size
    u, v = np.broadcast_arrays(u, v)
    if t.kind == "conifer":  # a triangle on a trunk; the crown spans 85% of the height
        crown_base = t.v - 0.15 * s
        t_rel = (v - (t.v - s)) / (0.85 * s)  # 0 at the apex, 1 at the crown's base
        crown = (t_rel >= 0) & (t_rel <= 1) & (np.abs(u - t.u) <= 0.22 * s * t_rel)
        trunk = (v > crown_base) & (v <= t.v) & (np.abs(u - t.u) <= 0.035 * s)
        return crown | trunk
    if t.kind == "broadleaf":  # a round crown on a trunk
        crown = ((u - t.u) / (0.32 * s)) ** 2 + ((v - (t.v - 0.62 * s)) / (0.36 * s)) ** 2 < 1
        trunk = (v > t.v - 0.35 * s) & (v <= t.v) & (np.abs(u - t.u) <= 0.045 * s)
        return crown | trunk
    if t.kind == "rock":  # an ellipse half sunk into the ground
        e = ((u - t.u) / (1.3 * s)) ** 2 + ((v - t.v) / (0.8 * s)) ** 2
        return (e < 1) & (v <= t.v + 0.25 * s)
    if t.kind == "cloud":  # a union of puffs
        mask = np.zeros(u.shape, bool)
        for du, dv, r in t.parts:
            mask |= ((u - t.u - du) / r) ** 2 + ((v - t.v - dv) / (0.5 * r)) ** 2 < 1
        return mask
    raise ValueError(f"unknown thing kind {t.kind!r}")


THING_CLASS = {"conifer": TREE, "broadleaf": TREE, "rock": ROCK, "cloud": CLOUD}


def rasterize(layout: Layout, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The layout's maps at ``size`` px: ``labels`` (S, S) uint8 class ids and ``instances``
    (S, S) int16, 0 for stuff and k >= 1 for the k-th thing of ``layout.things`` (ids of
    things hidden entirely at this size are simply absent)."""
    c = (np.arange(size) + 0.5) / size
    u, v = c[None, :], c[:, None]
    labels = stuff_labels(layout, u, v)
    instances = np.zeros((size, size), np.int16)
    sky = labels == SKY
    for k, t in enumerate(layout.things, start=1):
        # only test the pixels of the thing's bounding box (a few % of the image)
        r = t.size * (1.6 if t.kind != "cloud" else 3.0)
        j0, j1 = np.searchsorted(c, [t.u - r, t.u + r])
        i0, i1 = np.searchsorted(c, [t.v - r, t.v + r])
        if j0 >= j1 or i0 >= i1:
            continue
        m = _thing_mask(t, u[:, j0:j1], v[i0:i1, :])
        if t.kind == "cloud":
            m &= sky[i0:i1, j0:j1]  # clouds pass behind the mountains
        labels[i0:i1, j0:j1][m] = THING_CLASS[t.kind]
        instances[i0:i1, j0:j1][m] = k
    return labels.astype(np.uint8), instances


def draw_layout(rng: np.random.Generator) -> Layout:
    """A random landscape (see the module docstring for what is drawn)."""
    h = float(rng.uniform(0.36, 0.6))
    ridges = []
    for _ in range(int(rng.choice([0, 1, 1, 2, 2]))):
        height = float(rng.uniform(0.1, min(0.4, h - 0.04)))
        k = 4
        freqs = tuple(float(f) for f in rng.uniform(0.7, 1.4, k) * np.array([1, 2, 4, 8]))
        amps = tuple(float(a) for a in np.array([1, 0.5, 0.25, 0.12]) * rng.uniform(0.6, 1.2, k))
        phases = tuple(float(p) for p in rng.uniform(0, 2 * np.pi, k))
        snow = float(rng.uniform(0.5, 0.72)) if rng.random() < 0.6 and height > 0.14 else None
        ridges.append(Ridge(height, freqs, amps, phases, snow))
    ridges.sort(key=lambda r: -r.height)  # the taller (farther) ridge behind
    water = str(rng.choice(["sea", "lake", "none"], p=[0.35, 0.35, 0.3]))
    shore = lake = ()
    if water == "sea":
        beach = float(rng.uniform(0.03, 0.1)) if rng.random() < 0.8 else 0.0
        shore = (float(rng.uniform(0.06, 0.28)), float(rng.uniform(0, 0.05)),
                 float(rng.uniform(0.5, 2.5)), float(rng.uniform(0, 2 * np.pi)), beach)  # fmt: skip
    elif water == "lake":
        rv = float(rng.uniform(0.05, 0.14))
        lake = (float(rng.uniform(0.2, 0.8)), float(h + rv + rng.uniform(0.02, 0.2)),
                float(rng.uniform(0.15, 0.4)), rv,
                float(rng.uniform(0.1, 0.3)) if rng.random() < 0.5 else 0.0)  # fmt: skip
    fields = []
    for _ in range(int(rng.choice([0, 0, 1, 2]))):
        v0 = float(rng.uniform(h + 0.02, 0.9))
        u0 = float(rng.uniform(-0.2, 0.7))
        v1, u1 = v0 + float(rng.uniform(0.06, 0.2)), u0 + float(rng.uniform(0.25, 0.7))
        fields.append((v0, v1, u0, u1, float(rng.uniform(-0.15, 0.15))))
    partial = Layout(h, tuple(ridges), water, shore, lake, tuple(fields), ())

    clouds = []
    for _ in range(int(rng.choice([0, 1, 2, 3, 4]))):
        cu, cv = float(rng.uniform(-0.1, 1.1)), float(rng.uniform(0.05, h - 0.08))
        r = float(rng.uniform(0.04, 0.09))
        puffs = tuple(
            (
                float(rng.uniform(-2, 2) * r),
                float(rng.uniform(-0.3, 0.2) * r),
                float(r * rng.uniform(0.7, 1.4)),
            )  # fmt: skip
            for _ in range(int(rng.integers(2, 5)))
        )
        clouds.append(Thing("cloud", cu, cv, r, puffs))

    standing = []
    n_trees = int(rng.choice([0, 1, 3, 6, 10, 16]))
    n_rocks = int(rng.choice([0, 0, 1, 2, 4]))
    for kind, count in (("tree", n_trees), ("rock", n_rocks)):
        placed = tries = 0
        while placed < count and tries < 8 * count:
            tries += 1
            tu, tv = float(rng.uniform(0, 1)), float(rng.uniform(h + 0.015, 1.05))
            base = int(stuff_labels(partial, np.array([tu]), np.array([min(tv, 0.999)]))[0])
            depth = (tv - h) / (1 - h)  # 0 at the horizon, 1 at the bottom edge
            if kind == "tree":
                if base not in (GRASS, FIELD):
                    continue
                tree_kind = "conifer" if rng.random() < 0.5 else "broadleaf"
                size = (0.05 + 0.28 * depth) * float(rng.uniform(0.75, 1.25))
                standing.append(Thing(tree_kind, tu, tv, size))
            else:
                if base not in (GRASS, FIELD, SAND):
                    continue
                size = (0.012 + 0.05 * depth) * float(rng.uniform(0.7, 1.4))
                standing.append(Thing("rock", tu, tv, size))
            placed += 1
    standing.sort(key=lambda t: t.v)  # far (high in the image) first
    return Layout(h, tuple(ridges), water, shore, lake, tuple(fields), tuple(clouds + standing))


def painted_map(size: int = 64) -> np.ndarray:
    """A map as a person paints one: flat shapes with a brush, no layout behind it.

    Sky with a cloud, one triangular snow-capped mountain, a rectangular lake with a sand
    edge, grass, a field, two trees and a rock; (size, size) uint8 class ids.
    """
    c = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(c, c)
    lab = np.full((size, size), SKY, np.uint8)
    lab[((u - 0.25) / 0.12) ** 2 + ((v - 0.15) / 0.05) ** 2 < 1] = CLOUD
    mountain = (v > 0.2 + 1.2 * np.abs(u - 0.6)) & (v < 0.5)
    lab[mountain] = MOUNTAIN
    lab[mountain & (v < 0.29)] = SNOW
    lab[v >= 0.5] = GRASS
    lab[(v >= 0.56) & (v < 0.72) & (u >= 0.1) & (u < 0.6)] = SAND
    lab[(v >= 0.58) & (v < 0.7) & (u >= 0.13) & (u < 0.57)] = WATER
    lab[(v >= 0.8) & (v < 0.93) & (u >= 0.55) & (u < 0.95)] = FIELD
    for tu, tv, s in ((0.75, 0.7, 0.22), (0.88, 0.66, 0.16)):
        lab[(v < tv) & (v > tv - s) & (np.abs(u - tu) < 0.3 * (v - tv + s))] = TREE
    lab[((u - 0.3) / 0.05) ** 2 + ((v - 0.86) / 0.035) ** 2 < 1] = ROCK
    return lab
