"""The factors of an animal face: what varies, its range, and its StyleGAN level.

Every face of the faces world is a :class:`Face`: a domain (``cat``, ``dog``, ``wild``), a kind
(the wild domain holds foxes, tigers, lions and wolves, so that a domain is not one template)
and the values of the factors below, all exact. The factors are arranged by the scale at
which they change the picture, which is what StyleGAN's coarse / middle / fine split of the
synthesis network's layers is about (Karras et al. 2019, section 3.1: styles at 4-8 px control
pose and face shape; at 16-32 px facial features; at 64-1024 px colours and micro-structure):

* **coarse**: head pose (``yaw``, ``pitch``, ``roll`` in radians), position (``cx``, ``cy``,
  image widths) and ``scale`` (head radius in image widths), ``face_shape``, ``ear_shape`` and
  ``ear_size``;
* **middle**: ``eye_size``, ``eye_open`` (openness), ``muzzle`` (length, 0 flat .. 1 long),
  ``nose_size``, ``mouth`` (closed / open / tongue), ``marking`` (none / stripes / spots / mask
  / blaze);
* **fine**: fur colours ``base`` and ``secondary`` (the markings' and mane's colour),
  ``eye_color``, ``texture`` (fur strokes: none / light / heavy), ``whiskers``,
  ``background``.

The faces are roughly aligned, as FFHQ, CelebA-HQ and AFHQ are (their faces are cropped and
aligned on the eyes): yaw within +-17 degrees, pitch +-11, roll +-9, the head's centre within
3 % of the image's, and the features are drawn large enough to read at 32 px (an eye is 4 to 7
px wide with its rim, fur strokes and whiskers wide and faint rather than sub-pixel
lines). A wider world (yaw +-32 degrees, roll +-20, eyes 20 % smaller, sharp strokes) left a
20-minute DCGAN drawing textured blobs without eyes (``ganlab.experiments.learnability``).

Categorical factors are names (``CATEGORIES`` lists each one's values in code order);
continuous factors are floats with the ranges in ``RANGES``. Colours are named, and every
face also stores the exact RGB it was painted with (the name's colour plus a small jitter),
in ``Face.rgb``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

WORLD_SEED = 15_0515  # mixed into every random stream of the faces world

DOMAINS = ("cat", "dog", "wild")
KINDS = ("cat", "dog", "fox", "tiger", "lion", "wolf")
KIND_DOMAIN = {
    "cat": "cat",
    "dog": "dog",
    "fox": "wild",
    "tiger": "wild",
    "lion": "wild",
    "wolf": "wild",
}
WILD_KINDS = tuple(k for k in KINDS if KIND_DOMAIN[k] == "wild")

FUR = {  # named fur colours (RGB)
    "black": (40, 37, 40),
    "white": (238, 234, 226),
    "grey": (128, 131, 138),
    "orange": (224, 134, 50),
    "cream": (238, 208, 160),
    "brown": (118, 76, 44),
    "tan": (198, 152, 98),
    "golden": (216, 172, 78),
    "red": (198, 82, 34),
}
EYE_COLORS = {
    "green": (92, 178, 70),
    "amber": (226, 158, 36),
    "blue": (76, 150, 230),
    "brown": (112, 66, 30),
    "yellow": (236, 216, 60),
}
BACKGROUNDS = {  # (top, bottom) of a soft vertical gradient
    "sky": ((150, 190, 232), (196, 220, 240)),
    "grass": ((96, 150, 82), (138, 178, 104)),
    "sand": ((222, 206, 170), (200, 180, 140)),
    "slate": ((70, 78, 92), (104, 112, 126)),
    "rose": ((226, 176, 184), (240, 206, 210)),
    "teal": ((60, 140, 140), (102, 172, 166)),
}

CATEGORIES: dict[str, tuple[str, ...]] = {
    "domain": DOMAINS,
    "kind": KINDS,
    "face_shape": ("round", "wide", "long", "triangular"),
    "ear_shape": ("pointed", "rounded", "floppy"),
    "mouth": ("closed", "open", "tongue"),
    "marking": ("none", "stripes", "spots", "mask", "blaze"),
    "base": tuple(FUR),
    "secondary": tuple(FUR),
    "eye_color": tuple(EYE_COLORS),
    "texture": ("none", "light", "heavy"),
    "whiskers": ("no", "yes"),
    "background": tuple(BACKGROUNDS),
}
RANGES: dict[str, tuple[float, float]] = {  # continuous factors: (low, high)
    "yaw": (-0.3, 0.3),  # radians, positive = the face turns to the image's right
    "pitch": (-0.2, 0.2),  # radians, positive = the face looks up
    "roll": (-0.15, 0.15),  # radians, positive = counter-clockwise in the image
    "cx": (0.47, 0.53),  # head centre, image widths from the left
    "cy": (0.54, 0.58),  # head centre, image heights from the top
    "scale": (0.30, 0.36),  # head radius, image widths
    "ear_size": (0.7, 1.3),
    "eye_size": (0.85, 1.3),
    "eye_open": (0.5, 1.0),  # 1 = wide open
    "muzzle": (0.0, 1.0),  # 0 flat (cats) .. 1 long (wolves)
    "nose_size": (0.7, 1.3),
}
LEVELS = {
    "coarse": ("yaw", "pitch", "roll", "cx", "cy", "scale", "face_shape", "ear_shape", "ear_size"),
    "middle": ("eye_size", "eye_open", "muzzle", "nose_size", "mouth", "marking"),
    "fine": ("base", "secondary", "eye_color", "texture", "whiskers", "background"),
}
FACTORS = tuple(f for level in LEVELS.values() for f in level)
CONTINUOUS = tuple(RANGES)

# Each kind's template: which values its factors may take (uniform among those listed) and
# the range of its muzzle length. Values not listed never occur for that kind.
TEMPLATES: dict[str, dict] = {
    "cat": {
        "face_shape": ("round", "wide", "triangular"),
        "ear_shape": ("pointed",),
        "marking": ("none", "stripes", "spots", "mask", "blaze"),
        "base": ("black", "white", "grey", "orange", "cream", "brown"),
        "eye_color": ("green", "amber", "blue", "yellow"),
        "whiskers": ("yes",),
        "muzzle": (0.0, 0.25),
    },
    "dog": {
        "face_shape": ("round", "long", "wide"),
        "ear_shape": ("floppy", "floppy", "pointed"),
        "marking": ("none", "spots", "mask", "blaze"),
        "base": ("black", "white", "brown", "tan", "golden", "grey", "cream"),
        "eye_color": ("brown", "amber", "blue"),
        "whiskers": ("no",),
        "muzzle": (0.45, 0.9),
    },
    "fox": {
        "face_shape": ("triangular",),
        "ear_shape": ("pointed",),
        "marking": ("none", "blaze"),
        "base": ("red", "orange"),
        "eye_color": ("amber", "yellow"),
        "whiskers": ("yes",),
        "muzzle": (0.5, 0.8),
    },
    "tiger": {
        "face_shape": ("wide", "round"),
        "ear_shape": ("rounded",),
        "marking": ("stripes",),
        "base": ("orange",),
        "eye_color": ("amber", "yellow", "green"),
        "whiskers": ("yes",),
        "muzzle": (0.25, 0.5),
    },
    "lion": {
        "face_shape": ("long", "round"),
        "ear_shape": ("rounded",),
        "marking": ("none", "blaze"),
        "base": ("golden", "tan"),
        "eye_color": ("amber", "brown"),
        "whiskers": ("yes",),
        "muzzle": (0.3, 0.55),
    },
    "wolf": {
        "face_shape": ("long", "triangular"),
        "ear_shape": ("pointed",),
        "marking": ("mask", "blaze", "none"),
        "base": ("grey", "brown", "white", "black"),
        "eye_color": ("amber", "yellow", "blue"),
        "whiskers": ("no", "yes"),
        "muzzle": (0.7, 1.0),
    },
}
# the secondary colour (markings, lion's mane) each kind may take, given its base
_DARK = ("black", "brown")
_LIGHT = ("white", "cream")


def luminance(rgb) -> float:
    r, g, b = rgb[:3]
    return 0.299 * r + 0.587 * g + 0.114 * b


def secondary_choices(kind: str, base: str) -> tuple[str, ...]:
    """Marking colours that contrast with ``base`` (tigers: black; lions' manes: brown...)."""
    if kind == "tiger":
        return ("black",)
    if kind == "lion":
        return ("brown", "red")
    if kind == "fox":
        return ("white",)
    light = luminance(FUR[base]) > 140
    pool = _DARK + ("grey",) if light else _LIGHT + ("golden",)
    return tuple(c for c in pool if abs(luminance(FUR[c]) - luminance(FUR[base])) > 60)


@dataclass(frozen=True)
class Face:
    """Everything the world knows about one face: its factors and the RGB it was painted with.

    ``factors`` maps every name in ``FACTORS`` (plus ``domain`` and ``kind``) to a str or a
    float; ``rgb`` maps ``base``, ``secondary``, ``eye_color``, ``bg_top``, ``bg_bottom`` to
    the exact colours drawn; ``detail`` seeds the fine random detail (spot and stroke
    positions), so that the same face always draws the same spots.
    """

    factors: dict
    rgb: dict = field(default_factory=dict)
    detail: int = 0

    def __getitem__(self, name: str):
        return self.factors[name]

    @property
    def domain(self) -> str:
        return self.factors["domain"]

    @property
    def kind(self) -> str:
        return self.factors["kind"]

    def replace(self, **changes) -> Face:
        """The same face with some factors changed (colour names re-derive their RGB).

        A changed colour name takes that name's colour with this face's jitter; a changed
        ``domain`` or ``kind`` is taken as given (use it for sweeps, not to make a real face
        of another kind: templates are not re-applied).
        """
        for name, value in changes.items():
            check_value(name, value)
        factors = {**self.factors, **changes}
        rgb = dict(self.rgb)
        jit = self.rgb.get("_jitter", (0, 0, 0))
        for name in ("base", "secondary", "eye_color"):
            if name in changes:
                table = EYE_COLORS if name == "eye_color" else FUR
                rgb[name] = jittered(table[changes[name]], jit)
        if "background" in changes:
            top, bottom = BACKGROUNDS[changes["background"]]
            rgb["bg_top"], rgb["bg_bottom"] = tuple(top), tuple(bottom)
        return Face(factors, rgb, self.detail)


def check_value(name: str, value) -> None:
    """A clear error for an unknown factor or a value out of its range."""
    if name in CATEGORIES:
        if value not in CATEGORIES[name]:
            raise ValueError(
                f"factor {name!r} takes one of {list(CATEGORIES[name])}, got {value!r}"
            )
    elif name in RANGES:
        if not isinstance(value, (int, float)):
            raise ValueError(f"factor {name!r} is a number in {RANGES[name]}, got {value!r}")
    else:
        raise ValueError(f"unknown factor {name!r}: expected one of {[*CATEGORIES, *RANGES]}")


def jittered(rgb, jitter) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c + j))) for c, j in zip(rgb, jitter, strict=True))


def sample_face(rng: np.random.Generator, domain: str | None = None) -> Face:
    """Draw one face: a domain (uniform, unless given), a kind, then every factor."""
    if domain is None:
        domain = DOMAINS[int(rng.integers(len(DOMAINS)))]
    if domain not in DOMAINS:
        raise ValueError(f"unknown domain {domain!r}: expected one of {list(DOMAINS)}")
    kind = domain if domain != "wild" else WILD_KINDS[int(rng.integers(len(WILD_KINDS)))]
    t = TEMPLATES[kind]

    def pick(options):
        return options[int(rng.integers(len(options)))]

    f: dict = {"domain": domain, "kind": kind}
    for name, (lo, hi) in RANGES.items():
        f[name] = float(rng.uniform(lo, hi))
    f["muzzle"] = float(rng.uniform(*t["muzzle"]))
    for name in ("face_shape", "ear_shape", "marking", "base", "eye_color", "whiskers"):
        f[name] = pick(t[name])
    f["secondary"] = pick(secondary_choices(kind, f["base"]))
    f["mouth"] = pick(CATEGORIES["mouth"])
    f["texture"] = pick(CATEGORIES["texture"])
    f["background"] = pick(CATEGORIES["background"])
    jit = tuple(int(v) for v in rng.normal(0, 6, 3).round())
    top, bottom = BACKGROUNDS[f["background"]]
    rgb = {
        "_jitter": jit,
        "base": jittered(FUR[f["base"]], jit),
        "secondary": jittered(FUR[f["secondary"]], jit),
        "eye_color": jittered(EYE_COLORS[f["eye_color"]], jit),
        "bg_top": tuple(top),
        "bg_bottom": tuple(bottom),
    }
    return Face(f, rgb, int(rng.integers(2**31)))


def encode(face: Face) -> tuple[np.ndarray, np.ndarray]:
    """(codes (len(CATEGORIES),) int64 in ``CATEGORIES`` order, values (len(RANGES),) float32)."""
    codes = np.array([CATEGORIES[c].index(face[c]) for c in CATEGORIES], np.int64)
    values = np.array([face[c] for c in RANGES], np.float32)
    return codes, values


def normalise(values: np.ndarray | list, names=CONTINUOUS) -> np.ndarray:
    """Continuous factors mapped from their range to [-1, 1] (last axis in ``names`` order)."""
    lo = np.array([RANGES[n][0] for n in names], np.float32)
    hi = np.array([RANGES[n][1] for n in names], np.float32)
    return (np.asarray(values, np.float32) - lo) / (hi - lo) * 2 - 1


def denormalise(values, names=CONTINUOUS) -> np.ndarray:
    lo = np.array([RANGES[n][0] for n in names], np.float32)
    hi = np.array([RANGES[n][1] for n in names], np.float32)
    return (np.asarray(values, np.float32) + 1) / 2 * (hi - lo) + lo
