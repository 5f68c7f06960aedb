"""Drawing a bird from its attributes: anti-aliased, any size from 16 to 256 px.

A bird is built in its own frame (body length 1, facing +x, y up) from a few shapes, then
scaled, tilted, mirrored (orientation) and placed on a background::

    tail fan  ->  legs  ->  body (back = wing colour, belly and breast chords)
              ->  feather scallops  ->  wing (pattern: plain / striped / spotted)
              ->  head (crown cap)  ->  eye  ->  beak (pointed / cone / hooked / curved)

Shapes are polygons, drawn with Pillow on a canvas ``SUPERSAMPLE`` times larger than the
output and box-filtered down: that is the anti-aliasing. Fine detail (feather scallops,
primary feathers, eye highlight) is about one output pixel wide at 256 px, so a 256 px
model has detail to add that a 64 px image only hints at.

The renderer also knows exactly where the bird is: :func:`bird_coverage` (per-pixel share
of bird, perch and ground excluded) and :func:`bird_box` (its bounding box, as CUB's
annotations give). :func:`crop_square` is the papers' CUB crop around that box, and
``render_bird(..., crop=...)`` draws just that square at full sharpness; :data:`FRAMINGS`
names the crops the world offers (``ganlab.data.birds.load_birds(framing=...)``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

from ganlab.data.birds.attributes import PALETTE

SIZES = (16, 32, 64, 128, 256)
BEAK_LENGTH = {"short": 0.17, "long": 0.33}
BODY_SCALE = {"small": 0.27, "medium": 0.33, "large": 0.40}  # image widths per body length

BACKGROUND_COLORS = {  # (top, bottom) of the sky or the scene
    "sky": ((104, 156, 222), (196, 222, 244)),
    "forest": ((30, 74, 38), (74, 118, 58)),
    "water": ((170, 204, 232), (214, 230, 242)),
    "field": ((160, 200, 236), (214, 230, 240)),
}


def supersample(size: int) -> int:
    """Canvas scale factor for an output of ``size`` px (about 256-512 px of canvas)."""
    return 4 if size <= 64 else (3 if size <= 128 else 2)


@dataclass(frozen=True)
class Placement:
    """Where and how a bird sits in the image (drawn from the bird's random stream)."""

    cx: float  # centre, in image widths
    cy: float
    tilt: float  # radians, positive = head up
    jitter: tuple[tuple[int, int, int], ...]  # per-part colour offsets (7 parts)
    scene: int  # seed of the background's details


def draw_placement(rng: np.random.Generator) -> Placement:
    """Random placement and colour jitter of one bird."""
    return Placement(
        cx=float(0.5 + rng.uniform(-0.06, 0.06)),
        cy=float(0.48 + rng.uniform(-0.05, 0.05)),
        tilt=float(rng.uniform(-0.14, 0.14)),
        jitter=tuple(tuple(int(v) for v in rng.normal(0, 7, 3).round()) for _ in range(7)),
        scene=int(rng.integers(2**31)),
    )


def _color(name: str, jitter=(0, 0, 0)) -> tuple[int, int, int]:
    base = PALETTE[name] if isinstance(name, str) else name
    return tuple(int(min(255, max(0, c + j))) for c, j in zip(base, jitter, strict=True))


def _shade(color, factor: float, alpha: int | None = None):
    out = tuple(int(min(255, max(0, c * factor))) for c in color[:3])
    return out if alpha is None else (*out, alpha)


def _contrast(color) -> tuple[int, int, int]:
    """Pattern colour: white on dark plumage, near-black on light plumage."""
    luma = 0.299 * color[0] + 0.587 * color[1] + 0.114 * color[2]
    return (245, 245, 240) if luma < 110 else (30, 30, 32)


@functools.lru_cache(maxsize=64)
def _arc(t0: float, t1: float, n: int) -> tuple[np.ndarray, np.ndarray]:
    """cos and sin of n angles from t0 to t1; the renderer asks for a dozen arcs, often."""
    t = np.linspace(t0, t1, n)
    return np.cos(t), np.sin(t)


def _ellipse(cx, cy, rx, ry, t0=0.0, t1=2 * math.pi, n=40) -> np.ndarray:
    cos, sin = _arc(t0, t1, n)
    return np.stack([cx + rx * cos, cy + ry * sin], axis=1)


@functools.lru_cache(maxsize=1)
def _scallops() -> np.ndarray:
    """(K, 6, 2): the feather scallops' arcs, rows of small arcs inside the body ellipse."""
    arcs = []
    for row, y in enumerate(np.arange(-0.2, 0.22, 0.07)):
        for x in np.arange(-0.36 + 0.035 * (row % 2), 0.42, 0.07):
            if (x / 0.46) ** 2 + (y / 0.26) ** 2 < 1:
                arcs.append(_ellipse(x, y, 0.03, 0.022, math.radians(200), math.radians(340), n=6))
    return np.stack(arcs)


class _Frame:
    """Maps bird-frame points (x forward, y up; body length 1) to canvas pixels."""

    def __init__(self, canvas: int, place: Placement, scale: float, facing_left: bool):
        self.canvas = canvas
        self.unit = scale * canvas
        self.mirror = -1.0 if facing_left else 1.0
        c, s = math.cos(place.tilt), math.sin(place.tilt)
        self.rot = np.array([[c, -s], [s, c]])
        self.origin = np.array([place.cx * canvas, place.cy * canvas])

    def __call__(self, pts) -> list[tuple[float, float]]:
        p = np.asarray(pts, dtype=np.float64).reshape(-1, 2) @ self.rot.T
        x = self.origin[0] + self.mirror * p[:, 0] * self.unit
        y = self.origin[1] - p[:, 1] * self.unit  # image y grows downwards
        return list(zip(x.tolist(), y.tolist(), strict=True))

    def many(self, pts: np.ndarray) -> list[list[tuple[float, float]]]:
        """``pts`` (K, n, 2), K polylines of n points each, mapped in one go."""
        flat = self(pts)
        n = pts.shape[1]
        return [flat[k : k + n] for k in range(0, len(flat), n)]

    def px(self, length: float) -> float:
        return max(1.0, length * self.unit)


def _gradient(kind: str, canvas: int) -> np.ndarray:
    """(canvas, canvas, 3) uint8: the background's vertical colour gradient."""
    top, bottom = BACKGROUND_COLORS[kind]
    rows = np.linspace(0.0, 1.0, canvas)[:, None]
    grad = (np.array(top)[None] * (1 - rows) + np.array(bottom)[None] * rows).astype(np.uint8)
    return np.repeat(grad[:, None, :], canvas, axis=1)


def _background(draw: ImageDraw.ImageDraw, kind: str, canvas: int, rng: np.random.Generator):
    """The scene's details (clouds, trees, water, grass) over the gradient."""
    C = canvas
    if kind == "sky":
        for _ in range(rng.integers(1, 4)):
            x, y, r = rng.uniform(0, C), rng.uniform(0.05 * C, 0.6 * C), rng.uniform(0.05, 0.1) * C
            for dx, dy, k in (
                (-1.0, 0.2, 0.8),
                (0.0, 0.0, 1.0),
                (1.0, 0.25, 0.75),
                (0.4, -0.4, 0.7),
            ):
                rr = r * k
                box = (
                    x + dx * r - rr * 1.4,
                    y + dy * r - rr,
                    x + dx * r + rr * 1.4,
                    y + dy * r + rr,
                )
                draw.ellipse(box, fill=(250, 250, 252, 210))
    elif kind == "forest":
        for _ in range(2):
            x, w = rng.uniform(0, C), rng.uniform(0.04, 0.08) * C
            draw.rectangle((x, 0, x + w, C), fill=(72, 52, 34, 255))
        for _ in range(16):
            x, y, r = rng.uniform(0, C), rng.uniform(0, C), rng.uniform(0.06, 0.16) * C
            g = int(rng.integers(70, 150))
            draw.ellipse((x - r, y - r * 0.7, x + r, y + r * 0.7), fill=(30, g, 40, 200))
    elif kind == "water":
        h = rng.uniform(0.3, 0.45) * C
        draw.rectangle((0, h, C, C), fill=(38, 88, 140, 255))
        for _ in range(14):
            y = rng.uniform(h + 0.02 * C, C)
            x, w = rng.uniform(-0.1, 1.0) * C, rng.uniform(0.1, 0.3) * C
            draw.line((x, y, x + w, y), fill=(120, 170, 210, 200), width=max(1, C // 150))
    elif kind == "field":
        h = rng.uniform(0.32, 0.45) * C
        draw.rectangle((0, h, C, C), fill=(128, 158, 62, 255))
        draw.rectangle((0, h, C, h + 0.03 * C), fill=(96, 130, 60, 255))
        for _ in range(40):
            x, y = rng.uniform(0, C), rng.uniform(h, C)
            dx, dy = rng.uniform(-0.01, 0.01) * C, rng.uniform(0.02, 0.05) * C
            draw.line((x, y, x + dx, y - dy), fill=(86, 120, 40, 220), width=max(1, C // 180))


def _wing_point(s, u, root, tip, up, down):
    """Point at (s along the wing from root to tip, u across it from leading to trailing edge)."""
    s = np.asarray(s, dtype=np.float64)
    axis = np.asarray(tip) - np.asarray(root)
    normal = np.array([-axis[1], axis[0]]) / (np.hypot(*axis) + 1e-12)
    base = np.asarray(root)[None] + s[:, None] * axis[None]
    bulge = np.sin(np.pi * np.clip(s, 0, 1)) ** 0.7
    lead = base + normal[None] * (up * bulge)[:, None]
    trail = base - normal[None] * (down * bulge)[:, None]
    return (1 - u) * lead + u * trail


def _wing(draw, frame, attrs, color, flying: bool, far: bool = False):
    if flying:
        root, tip, up, down = (0.05, 0.12), (-0.32, 0.8), 0.1, 0.2
        if far:
            root, tip = (0.15, 0.14), (0.05, 0.78)
    else:
        root, tip, up, down = (0.2, 0.1), (-0.55, -0.04), 0.15, 0.1
    s = np.linspace(0, 1, 24)
    outline = np.concatenate(
        [_wing_point(s, 0.0, root, tip, up, down), _wing_point(s[::-1], 1.0, root, tip, up, down)]
    )
    draw.polygon(frame(outline), fill=_shade(color, 0.7 if far else 1.0, 255))
    if far:
        return
    mark = _contrast(color)
    if attrs["wing_pattern"] == "striped":
        for s0 in (0.22, 0.42, 0.62):
            ss = np.linspace(s0, s0 + 0.09, 4)
            band = np.concatenate(
                [
                    _wing_point(ss, 0.0, root, tip, up, down),
                    _wing_point(ss[::-1], 1.0, root, tip, up, down),
                ]
            )
            draw.polygon(frame(band), fill=(*mark, 255))
    elif attrs["wing_pattern"] == "spotted":
        r = frame.px(0.032)
        for s0 in (0.22, 0.4, 0.58, 0.76):
            for u in (0.32, 0.68):
                ((x, y),) = frame(_wing_point([s0], u, root, tip, up, down))
                draw.ellipse((x - r, y - r, x + r, y + r), fill=(*mark, 255))
    # primary feathers: thin lines near the tip, visible only at large sizes
    width = max(1, int(frame.px(0.008)))
    for u in (0.25, 0.5, 0.75):
        line = _wing_point(np.linspace(0.55, 0.97, 6), u, root, tip, up, down)
        draw.line(frame(line), fill=_shade(color, 0.6, 200), width=width)


def _beak(draw, frame, attrs, color):
    L = BEAK_LENGTH[attrs["beak_length"]]
    x0, y0 = 0.585, 0.245
    shape = attrs["beak_shape"]
    if shape == "pointed":
        pts = [(x0 - 0.01, y0 + 0.045), (x0 + L, y0), (x0 - 0.01, y0 - 0.045)]
    elif shape == "cone":
        pts = [(x0 - 0.02, y0 + 0.075), (x0 + 0.72 * L, y0 - 0.005), (x0 - 0.02, y0 - 0.075)]
    elif shape == "hooked":
        pts = [
            (x0 - 0.01, y0 + 0.055),
            (x0 + 0.75 * L, y0 + 0.045),
            (x0 + L, y0 - 0.03),
            (x0 + 0.93 * L, y0 - 0.045),
            (x0 + 0.78 * L, y0 - 0.01),
            (x0 - 0.01, y0 - 0.05),
        ]
    else:  # curved: long and bent downwards
        s = np.linspace(0, 1, 10)
        centre = np.stack([x0 + L * 1.1 * s, y0 - 0.55 * L * s**2], axis=1)
        half = 0.04 * (1 - s) + 0.006
        pts = np.concatenate(
            [centre + np.stack([0 * s, half], 1), (centre - np.stack([0 * s, half], 1))[::-1]]
        )
    draw.polygon(frame(pts), fill=(*color, 255))
    draw.line(
        frame([(x0, y0), (x0 + 0.55 * L, y0 - (0.01 if shape != "curved" else 0.06 * L))]),
        fill=_shade(color, 0.5, 220),
        width=max(1, int(frame.px(0.008))),
    )


def render_bird(
    attrs: dict[str, str],
    place: Placement,
    size: int,
    crop: tuple[float, float, float] | None = None,
    scene: str = "full",
) -> np.ndarray:
    """One bird as a (size, size, 3) uint8 RGB array, in front of ``scene`` (:data:`SCENES`).

    ``crop = (x0, y0, side)`` in image widths (see :func:`crop_square`) draws only that square
    of the scene, at ``size`` px: the scene is drawn on a canvas ``1 / side`` times larger and
    the square is box-filtered down, so a crop is as sharp as a full frame (no upsampling of a
    small image). ``crop=None`` (the default) is the full frame.
    """
    _check_size(size)
    k = supersample(size)
    if crop is None:
        return np.asarray(_scene(attrs, place, size * k, scene=scene).reduce(k), dtype=np.uint8)
    x0, y0, side = _check_crop(crop)
    canvas = math.ceil(size * k / side)
    box = (x0 * canvas, y0 * canvas, (x0 + side) * canvas, (y0 + side) * canvas)
    image = _scene(attrs, place, canvas, scene=scene)
    image = image.resize((size, size), Image.Resampling.BOX, box=box)
    return np.asarray(image, dtype=np.uint8)


def _check_size(size) -> None:
    if not isinstance(size, int) or not 16 <= size <= 256:
        raise ValueError(f"size must be an int between 16 and 256 px, got {size!r}")


def _check_crop(crop) -> tuple[float, float, float]:
    x0, y0, side = (float(v) for v in crop)
    if not (0 < side <= 1 and 0 <= x0 <= 1 - side + 1e-9 and 0 <= y0 <= 1 - side + 1e-9):
        raise ValueError(f"crop (x0, y0, side) must be a square inside the image, got {crop!r}")
    return x0, y0, side


# What is drawn behind the bird: "full" (the background's gradient, its details - clouds,
# trees, waves, grass - and the perch or ground) or "plain" (the gradient alone, nothing else;
# the birds study's simpler world). The plain forest stays green, but water and field become
# sky-blue (their water and grass are details), so a caption's background is mostly not seen.
SCENES = ("full", "plain")


def check_scene(scene: str) -> str:
    if scene not in SCENES:
        raise ValueError(f"unknown birds scene {scene!r}: expected one of {list(SCENES)}")
    return scene


def _scene(
    attrs: dict[str, str],
    place: Placement,
    canvas: int,
    backdrop: tuple | None = None,
    scene: str = "full",
) -> Image.Image:
    """The frame on a ``canvas`` px square: background, ground, then the bird.

    ``backdrop`` (an RGB colour) replaces the background and the ground by a flat colour, so
    that only the bird is drawn: :func:`bird_coverage` uses it. ``scene="plain"`` keeps the
    background's gradient and leaves out its details and the ground (:data:`SCENES`).
    """
    C = canvas
    if backdrop is None:
        image = Image.fromarray(_gradient(attrs["background"], C))
    else:
        image = Image.new("RGB", (C, C), tuple(backdrop))
    draw = ImageDraw.Draw(image, "RGBA")
    frame = _Frame(C, place, BODY_SCALE[attrs["size"]], attrs["orientation"] == "left")
    if backdrop is None and check_scene(scene) == "full":
        _background(draw, attrs["background"], C, np.random.default_rng(place.scene))
        _ground(draw, frame, attrs["pose"], place)
    _bird(draw, frame, attrs, place)
    return image


FEET_Y = -0.47  # the feet, in the bird's frame


def _ground(draw, frame, pose: str, place: Placement) -> None:
    """The perch or the ground under the feet (not part of the bird)."""
    feet_y = FEET_Y
    if pose == "perched":
        a = place.tilt * 0.5
        ends = [(-1.6, feet_y - 0.06 + a), (1.6, feet_y + 0.02 - a)]
        draw.line(frame(ends), fill=(96, 64, 36, 255), width=int(frame.px(0.07)))
    elif pose == "standing":
        draw.polygon(
            frame(_ellipse(0.02, feet_y - 0.3, 0.75, 0.3, 0, math.pi)), fill=(104, 92, 76, 255)
        )


def _bird(draw, frame, attrs: dict[str, str], place: Placement) -> None:
    """The bird itself, back to front, over whatever is already drawn."""
    feet_y = FEET_Y
    j = place.jitter
    crown, wing, breast = (
        _color(attrs["crown_color"], j[0]),
        _color(attrs["wing_color"], j[1]),
        _color(attrs["breast_color"], j[2]),
    )
    belly, tail = _color(attrs["belly_color"], j[3]), _color(attrs["tail_color"], j[4])
    beak, eye = _color(attrs["beak_color"], j[5]), _color(attrs["eye_color"], j[6])
    pose = attrs["pose"]

    if pose == "flying":
        _wing(draw, frame, attrs, wing, flying=True, far=True)

    # tail fan, behind the body
    fan = [(-0.36, 0.07), (-0.92, 0.0), (-0.96, -0.12), (-0.9, -0.2), (-0.34, -0.07)]
    draw.polygon(frame(fan), fill=(*tail, 255))
    for y_end in (-0.04, -0.1, -0.16):
        draw.line(
            frame([(-0.45, -0.01), (-0.92, y_end)]),
            fill=_shade(tail, 0.6, 200),
            width=max(1, int(frame.px(0.008))),
        )

    if pose != "flying":
        for x in (-0.04, 0.1):
            draw.line(
                frame([(x, -0.25), (x + 0.02, feet_y)]),
                fill=(60, 52, 46, 255),
                width=max(1, int(frame.px(0.025))),
            )

    # body: the back takes the wing colour, then the belly and breast chords
    draw.polygon(frame(_ellipse(0, 0, 0.5, 0.3)), fill=(*wing, 255))
    draw.polygon(
        frame(_ellipse(0, 0, 0.5, 0.3, math.radians(195), math.radians(335))), fill=(*belly, 255)
    )
    draw.polygon(
        frame(_ellipse(0, 0, 0.5, 0.3, math.radians(-62), math.radians(78))), fill=(*breast, 255)
    )
    # feather scallops (fine texture): every small arc mapped to the canvas at once
    w = max(1, int(frame.px(0.007)))
    for arc in frame.many(_scallops()):
        draw.line(arc, fill=(0, 0, 0, 60), width=w)

    _wing(draw, frame, attrs, wing, flying=pose == "flying")

    # head: throat in the breast colour, crown cap on top
    hx, hy, hr = 0.43, 0.27, 0.19
    draw.polygon(frame(_ellipse(hx, hy, hr, hr)), fill=(*breast, 255))
    draw.polygon(
        frame(_ellipse(hx, hy, hr, hr, math.radians(12), math.radians(172))), fill=(*crown, 255)
    )
    _beak(draw, frame, attrs, beak)
    ((ex, ey),) = frame([(0.5, 0.29)])
    r = frame.px(0.048)
    draw.ellipse((ex - r, ey - r, ex + r, ey + r), fill=(20, 20, 20, 255))
    r2 = frame.px(0.036)
    draw.ellipse((ex - r2, ey - r2, ex + r2, ey + r2), fill=(*eye, 255))
    if attrs["eye_color"] != "black":
        r3 = frame.px(0.016)
        draw.ellipse((ex - r3, ey - r3, ex + r3, ey + r3), fill=(10, 10, 10, 255))
    hx2, hy2, r4 = ex + r2 * 0.3, ey - r2 * 0.3, frame.px(0.009)  # highlight
    draw.ellipse((hx2 - r4, hy2 - r4, hx2 + r4, hy2 + r4), fill=(255, 255, 255, 230))


# --- where the bird is: the world's ground truth, and the CUB pipeline's crop around it ---

BOX_ENLARGE = 0.75  # as ganlab.data.cub.BOX_ENLARGE: r = 0.75 max(w, h), a square of side 2 r

# How a bird sits in its frame: framing name -> ``enlarge`` of :func:`crop_square` (None: the
# full frame). The world's birds are already about as wide in the full frame as CUB's birds are
# in their crops (median box width 0.58 of the image, CUB's crop makes it 1 / 1.5 = 0.67), so
# "cub" crops only a little (a third of the birds not at all: their crop would exceed the
# image); "tight" makes the bird's longer side fill 1 / 1.1 of the frame. Measured on 200
# test birds (median share of the frame's pixels that are bird; crop side, image widths):
# full 7.3 %; cub 10.6 %, side 0.87 (0.66 to 1); tight 18.4 %, side 0.64 (0.49 to 0.85).
FRAMINGS = {"full": None, "cub": BOX_ENLARGE, "tight": 0.55}


def _coverage(attrs: dict[str, str], place: Placement, canvas: int) -> np.ndarray:
    """(canvas, canvas) float in [0, 1] on an un-reduced canvas: see :func:`bird_coverage`."""
    black, white = (
        np.asarray(_scene(attrs, place, canvas, backdrop=c), dtype=np.float64)
        for c in ((0, 0, 0), (255, 255, 255))
    )
    return 1.0 - (white - black).mean(axis=2) / 255.0


def bird_coverage(attrs: dict[str, str], place: Placement, size: int = 64) -> np.ndarray:
    """(size, size) float in [0, 1]: how much of each pixel of the full frame is bird.

    The bird alone (no background, no perch or ground) is drawn twice, over black and over
    white; a pixel the bird covers fully is the same in both, a background pixel differs by
    255, so ``1 - difference / 255`` is the bird's exact anti-aliased coverage (the few
    translucent strokes, all drawn over the bird's own body or wing, do not change it).
    """
    _check_size(size)
    k = supersample(size)
    cover = _coverage(attrs, place, size * k)  # (size k, size k)
    return cover.reshape(size, k, size, k).mean(axis=(1, 3))


def bird_box(
    attrs: dict[str, str], place: Placement, resolution: int = 256
) -> tuple[float, float, float, float]:
    """The bird's bounding box ``(x0, y0, x1, y1)`` in image widths (y down), as CUB annotates:
    tight around every pixel the bird touches (coverage > 0 on a ``resolution`` px canvas, so
    to within 1 / ``resolution`` of an image width); the perch and the ground are not bird."""
    ys, xs = np.nonzero(_coverage(attrs, place, resolution) > 0)
    return (
        xs.min() / resolution,
        ys.min() / resolution,
        (xs.max() + 1) / resolution,
        (ys.max() + 1) / resolution,
    )


def crop_square(
    box: tuple[float, float, float, float], enlarge: float = BOX_ENLARGE
) -> tuple[float, float, float]:
    """The CUB pipeline's crop around a bounding box, as ``(x0, y0, side)`` in image widths.

    StackGAN's and AttnGAN's ``get_imgs`` take a square of side ``2 r``, ``r = 0.75 max(w,
    h)``, centred on the box (``ganlab.data.cub.enlarged_box``), and *clip* it to the image, so
    a bird near an edge gives a non-square crop that the resize then squashes. Here the square
    keeps its side (at most the whole image) and is *shifted* inside the image instead: the
    bird stays undistorted and the crop always holds the whole enlarged box's worth of scene.
    """
    x0, y0, x1, y1 = box
    side = min(1.0, 2 * enlarge * max(x1 - x0, y1 - y0))
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    left = min(max(cx - side / 2, 0.0), 1.0 - side)
    top = min(max(cy - side / 2, 0.0), 1.0 - side)
    return left, top, side


def check_framing(framing: str) -> str:
    if framing not in FRAMINGS:
        raise ValueError(f"unknown birds framing {framing!r}: expected one of {list(FRAMINGS)}")
    return framing


def framing_crop(
    attrs: dict[str, str], place: Placement, framing: str
) -> tuple[float, float, float] | None:
    """The crop ``(x0, y0, side)`` of a framing for one bird, or None for the full frame."""
    enlarge = FRAMINGS[check_framing(framing)]
    return None if enlarge is None else crop_square(bird_box(attrs, place), enlarge)
