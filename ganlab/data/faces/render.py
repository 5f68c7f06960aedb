r"""Drawing an animal face from its factors: anti-aliased, any size from 8 to 256 px.

The head lives in its own frame: unit = head radius, x right, y up, z towards the viewer.
Features are flat shapes placed in 3-D (eyes at depth 0.85, the nose in front of the face
by the muzzle's length, ears at the sides) and turned by the head pose

.. math:: p' = R_z(\text{roll})\, R_x(\text{pitch})\, R_y(\text{yaw})\, p,

then projected orthographically (drop z) and placed at ``(cx, cy)`` with ``scale`` image
widths per unit. So yaw slides the nose further than the eyes and the eyes further than the
ears, pitch does the same vertically, and the outline of the head (an ellipse whose width,
height and chin taper come from ``face_shape``) only turns with roll, like a silhouette.

Painting order, back to front::

    background gradient -> lion's mane -> upright ears -> head -> markings (clipped to the
    head) -> fur strokes -> floppy ears -> muzzle and nose -> mouth -> eyes -> whiskers

Shapes are polygons drawn with Pillow on a canvas ``supersample(size)`` times larger than the
output (at least 256 px) and box-filtered down: that is the anti-aliasing. When asked, the
same polygons are painted with part labels (``PARTS``) into a label canvas that is reduced by
majority vote, so the part masks agree with the pixels.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from PIL import Image, ImageChops, ImageDraw

from ganlab.data.faces.factors import Face, luminance

PARTS = ("background", "face", "ears", "eyes", "muzzle", "mouth", "markings")
LABEL = {name: i for i, name in enumerate(PARTS)}
MIN_SIZE, MAX_SIZE = 8, 256

# (width, height, chin taper) of the head outline, in head radii
FACE_SHAPES = {
    "round": (1.0, 1.0, 0.0),
    "wide": (1.13, 0.92, 0.04),
    "long": (0.9, 1.08, 0.08),
    "triangular": (1.0, 1.0, 0.3),
}
NOSE_PINK, NOSE_DARK = (222, 132, 142), (34, 28, 28)
MOUTH_DARK, TONGUE = (92, 30, 40), (232, 110, 128)
EAR_INNER = (226, 160, 160)
EYE_X, EYE_Y = 0.4, 0.2  # the eyes' centres in the head frame (head radii)


def supersample(size: int) -> int:
    """Canvas scale factor for an output of ``size`` px: a canvas of at least 256 px."""
    return max(2, -(-256 // size))


def check_size(size) -> int:
    if not isinstance(size, (int, np.integer)) or not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an int between {MIN_SIZE} and {MAX_SIZE} px, got {size!r}")
    return int(size)


@functools.lru_cache(maxsize=64)
def _arc(n: int) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(0, 2 * math.pi, n, endpoint=False)
    return np.cos(t), np.sin(t)


def _ellipse(cx, cy, rx, ry, n=28, tilt=0.0) -> np.ndarray:
    """(n, 2) points of an ellipse in the head frame, turned by ``tilt`` radians."""
    c, s = _arc(n)
    x, y = rx * c, ry * s
    if tilt:
        ct, st = math.cos(tilt), math.sin(tilt)
        x, y = x * ct - y * st, x * st + y * ct
    return np.stack([cx + x, cy + y], 1)


def _mix(a, b, t: float) -> tuple[int, int, int]:
    return tuple(int(round(x * (1 - t) + y * t)) for x, y in zip(a, b, strict=True))


def _shade(rgb, factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c * factor))) for c in rgb)


class _Pose:
    """Maps head-frame points (2-D at a depth z, or 3-D) to canvas pixels under the pose."""

    def __init__(self, face: Face, canvas: int):
        yaw, pitch, roll = face["yaw"], face["pitch"], face["roll"]
        cy_, sy = math.cos(yaw), math.sin(yaw)
        cp, sp = math.cos(pitch), math.sin(pitch)
        cr, sr = math.cos(roll), math.sin(roll)
        r_yaw = np.array([[cy_, 0, sy], [0, 1, 0], [-sy, 0, cy_]])
        r_pitch = np.array([[1, 0, 0], [0, cp, sp], [0, -sp, cp]])
        r_roll = np.array([[cr, -sr, 0], [sr, cr, 0], [0, 0, 1]])
        self.rot = r_roll @ r_pitch @ r_yaw  # (3, 3): p' = R p
        self.roll2 = np.array([[cr, -sr], [sr, cr]])
        self.unit = face["scale"] * canvas
        self.origin = np.array([face["cx"] * canvas, face["cy"] * canvas])

    def _pixels(self, xy: np.ndarray) -> list[tuple[float, float]]:
        x = self.origin[0] + xy[:, 0] * self.unit
        y = self.origin[1] - xy[:, 1] * self.unit  # image y grows downwards
        return list(zip(x.tolist(), y.tolist(), strict=True))

    def at(self, pts, z: float) -> list[tuple[float, float]]:
        """Points of a flat shape at depth ``z``, turned by the full pose."""
        pts = np.asarray(pts, np.float64).reshape(-1, 2)
        p3 = np.concatenate([pts, np.full((len(pts), 1), z)], 1) @ self.rot.T
        return self._pixels(p3[:, :2])

    def flat(self, pts) -> list[tuple[float, float]]:
        """Points of the silhouette: turned by roll only."""
        return self._pixels(np.asarray(pts, np.float64).reshape(-1, 2) @ self.roll2.T)

    def px(self, length: float) -> int:
        return max(1, int(round(length * self.unit)))


class _Painter:
    """Draws each shape in colour and, when asked, its part label into a label canvas."""

    def __init__(self, image: Image.Image, labels: Image.Image | None):
        self.image, self.labels = image, labels
        self.draw = ImageDraw.Draw(image, "RGBA")
        self.ldraw = ImageDraw.Draw(labels) if labels is not None else None

    def polygon(self, pts, rgb, part: str | None):
        self.draw.polygon(pts, fill=tuple(rgb))
        if self.ldraw is not None and part is not None:
            self.ldraw.polygon(pts, fill=LABEL[part])

    def line(self, pts, rgb, width: int, part: str | None = None):
        self.draw.line(pts, fill=tuple(rgb), width=width, joint="curve")
        if self.ldraw is not None and part is not None:
            self.ldraw.line(pts, fill=LABEL[part], width=width, joint="curve")

    def paste_masked(self, rgb, mask: Image.Image, part: str):
        self.image.paste(tuple(rgb), mask=mask)
        if self.labels is not None:
            self.labels.paste(LABEL[part], mask=mask.point(lambda v: 255 if v >= 128 else 0))


def _head_outline(face: Face) -> np.ndarray:
    w, h, taper = FACE_SHAPES[face["face_shape"]]
    c, s = _arc(48)
    return np.stack([w * c * (1 + taper * s), h * s], 1)


def _gradient(top, bottom, canvas: int) -> np.ndarray:
    rows = np.linspace(0.0, 1.0, canvas)[:, None]
    grad = np.asarray(top, np.float64)[None] * (1 - rows) + np.asarray(bottom)[None] * rows
    return np.repeat(grad.astype(np.uint8)[:, None, :], canvas, axis=1)


def _mane(paint: _Painter, pose: _Pose, face: Face, color):
    n = 36
    c, s = _arc(n)
    r = np.where(np.arange(n) % 2 == 0, 1.62, 1.42)
    pts = np.stack([r * c * 1.05, r * s * 0.98 - 0.08], 1)
    paint.polygon(pose.at(pts, -0.2), color, "face")
    paint.polygon(pose.at(_ellipse(0, -0.08, 1.3, 1.26, n=36), -0.2), _shade(color, 0.85), "face")


def _ears(paint: _Painter, pose: _Pose, face: Face, base, inner, floppy: bool):
    shape, k = face["ear_shape"], face["ear_size"]
    for side in (-1.0, 1.0):
        if shape == "pointed" and not floppy:
            tip = (side * (0.68 + 0.06 * k), 0.9 + 0.62 * k)
            outer = [(side * 0.18, 0.82), tip, (side * 0.98, 0.38)]
            inner_pts = [
                (side * 0.34, 0.8),
                (side * (0.68 + 0.05 * k), 0.82 + 0.48 * k),
                (side * 0.8, 0.52),
            ]
            paint.polygon(pose.at(outer, 0.25), base, "ears")
            paint.polygon(pose.at(inner_pts, 0.26), inner, "ears")
        elif shape == "rounded" and not floppy:
            r = 0.3 * k
            centre = (side * 0.66, 0.72 + 0.25 * k)
            paint.polygon(pose.at(_ellipse(*centre, r, r * 0.95), 0.2), base, "ears")
            paint.polygon(
                pose.at(_ellipse(centre[0], centre[1] - 0.04, r * 0.6, r * 0.55), 0.21),
                inner,
                "ears",
            )
        elif shape == "floppy" and floppy:
            length = 0.62 + 0.38 * k
            pts = _ellipse(side * 0.92, 0.38 - length * 0.5, 0.3, length * 0.62, tilt=side * 0.18)
            paint.polygon(pose.at(pts, 0.3), _shade(base, 0.78), "ears")


def _markings(face: Face, pose: _Pose, canvas: int, head_mask: Image.Image) -> Image.Image | None:
    """The marking layout as an 'L' mask clipped to the head (None for ``none``)."""
    kind = face["marking"]
    if kind == "none":
        return None
    layer = Image.new("L", (canvas, canvas), 0)
    d = ImageDraw.Draw(layer)
    z = 0.7
    if kind == "stripes":
        for x in (-0.24, 0.0, 0.24):
            d.polygon(pose.at([(x - 0.07, 1.1), (x + 0.07, 1.1), (x * 0.8, 0.5)], z), fill=255)
        for side in (-1.0, 1.0):
            for y in (0.08, -0.16, -0.4):
                d.polygon(
                    pose.at(
                        [(side * 1.2, y + 0.08), (side * 1.2, y - 0.08), (side * 0.55, y - 0.02)], z
                    ),
                    fill=255,
                )
    elif kind == "spots":
        # 3 to 6 spots, never over the eyes or the muzzle (at 32 px a dark spot beside an eye
        # reads as a third eye): candidates there are skipped
        rng = np.random.default_rng(face.detail)
        want, placed = int(rng.integers(3, 7)), 0
        for _ in range(40):
            a, r = rng.uniform(0, 2 * math.pi), math.sqrt(rng.uniform(0.05, 0.8))
            x, y, rad = r * math.cos(a), r * math.sin(a), rng.uniform(0.12, 0.2)
            if min(math.hypot(x - s * EYE_X, y - EYE_Y) for s in (-1, 1)) < 0.3 + rad:
                continue
            if abs(x) < 0.35 and y < 0.05:
                continue
            d.polygon(pose.at(_ellipse(x, y, rad, rad * 0.85, 16), z), fill=255)
            placed += 1
            if placed == want:
                break
    elif kind == "mask":
        band = [
            (-1.2, 0.5),
            (-0.3, 0.55),
            (0.0, 0.38),
            (0.3, 0.55),
            (1.2, 0.5),
            (1.2, -0.05),
            (0.35, -0.02),
            (0.0, -0.12),
            (-0.35, -0.02),
            (-1.2, -0.05),
        ]
        d.polygon(pose.at(band, z), fill=255)
    elif kind == "blaze":
        d.polygon(pose.at([(-0.15, 1.1), (0.15, 1.1), (0.09, -0.1), (-0.09, -0.1)], z), fill=255)
    return ImageChops.multiply(layer, head_mask)


def _strokes(paint: _Painter, pose: _Pose, face: Face, base):
    count = {"none": 0, "light": 12, "heavy": 28}[face["texture"]]
    if not count:
        return
    rng = np.random.default_rng(face.detail + 1)
    color = _shade(base, 0.78) if luminance(base) > 90 else (92, 88, 92)
    w = max(1, pose.px(0.045))
    a = rng.uniform(0, 2 * math.pi, count)
    r = np.sqrt(rng.uniform(0.1, 0.85, count))
    x, y = r * np.cos(a), r * np.sin(a)
    ang = a + rng.normal(0, 0.35, count)  # fur grows outwards from the face's centre
    length = rng.uniform(0.12, 0.2, count)
    for i in range(count):
        ends = [
            (x[i], y[i]),
            (x[i] + length[i] * math.cos(ang[i]), y[i] + length[i] * math.sin(ang[i])),
        ]
        paint.line(pose.at(ends, 0.72), (*color, 110), w)


def _muzzle(paint: _Painter, pose: _Pose, face: Face, base) -> tuple[float, float, float]:
    """Snout and whisker pads, nose; returns the nose's (x, y, z) in the head frame."""
    m = face["muzzle"]
    color = _mix(base, (246, 242, 236), 0.8 if face.kind == "fox" else 0.5)
    z = 0.85 + 0.4 * m
    if m > 0.3:  # a snout: an ellipse in front of the face
        snout = _ellipse(0, -0.3 - 0.14 * m, 0.28 + 0.14 * m, 0.24 + 0.18 * m)
        paint.polygon(pose.at(snout, z - 0.05), color, "muzzle")
    for side in (-1.0, 1.0):
        paint.polygon(
            pose.at(_ellipse(side * 0.19, -0.4 - 0.08 * m, 0.22, 0.18), z), color, "muzzle"
        )
    nose = (0.0, -0.13 - 0.15 * m, z + 0.08)
    r = (0.13 + 0.09 * m) * face["nose_size"]
    light = face.kind == "cat" and luminance(base) > 120
    tri = [(-r, nose[1] + 0.55 * r), (r, nose[1] + 0.55 * r), (0, nose[1] - 0.65 * r)]
    if face.kind == "cat":
        paint.polygon(pose.at(tri, nose[2]), NOSE_PINK if light else NOSE_DARK, "muzzle")
    else:
        paint.polygon(
            pose.at(_ellipse(0, nose[1], r * 1.15, r * 0.72, 20), nose[2]), NOSE_DARK, "muzzle"
        )
    return (nose[0], nose[1] - 0.65 * r, nose[2])


def _mouth(paint: _Painter, pose: _Pose, face: Face, nose):
    x0, y0, z = nose
    m = face["muzzle"]
    kind = face["mouth"]
    w = max(1, pose.px(0.045))
    drop = 0.12 + 0.05 * m
    if kind == "closed":
        pts = [
            (-0.24, y0 - drop - 0.02),
            (-0.12, y0 - drop - 0.08),
            (0, y0 - drop + 0.02),
            (0.12, y0 - drop - 0.08),
            (0.24, y0 - drop - 0.02),
        ]
        paint.line(pose.at([(0, y0), (0, y0 - drop + 0.02)], z), MOUTH_DARK, w, "mouth")
        paint.line(pose.at(pts, z), MOUTH_DARK, w, "mouth")
        return
    cy = y0 - drop - 0.12
    paint.polygon(pose.at(_ellipse(0, cy, 0.24, 0.16, 24), z), MOUTH_DARK, "mouth")
    if kind == "tongue":
        paint.polygon(pose.at(_ellipse(0, cy - 0.1, 0.15, 0.16, 20), z + 0.01), TONGUE, "mouth")


def _eyes(paint: _Painter, pose: _Pose, face: Face, iris):
    size, opening = face["eye_size"], face["eye_open"]
    slit = face.kind in ("cat", "fox")
    rx = 0.2 * size
    ry = rx * (0.3 + 0.62 * opening)
    for side in (-1.0, 1.0):
        cx, cy, tilt = side * EYE_X, EYE_Y, side * (0.2 if slit else 0.05)
        paint.polygon(
            pose.at(_ellipse(cx, cy, rx * 1.2, ry * 1.25 + 0.03, tilt=tilt), 0.86),
            (28, 24, 24),
            "eyes",
        )
        paint.polygon(pose.at(_ellipse(cx, cy, rx, ry, tilt=tilt), 0.87), iris, "eyes")
        pr = rx * (0.22 if slit else 0.45)
        paint.polygon(
            pose.at(_ellipse(cx, cy, pr, min(ry, rx * 0.75) * 0.92, 20), 0.88), (16, 14, 16), "eyes"
        )
        hr = rx * 0.16
        paint.polygon(
            pose.at(_ellipse(cx + 0.35 * rx, cy + 0.35 * ry, hr, hr, 12), 0.89),
            (250, 250, 250),
            "eyes",
        )


def _whiskers(paint: _Painter, pose: _Pose, face: Face, base):
    if face["whiskers"] != "yes":
        return
    m = face["muzzle"]
    color = (40, 36, 36, 110) if luminance(base) > 170 else (244, 244, 240, 120)
    w = max(1, pose.px(0.025))
    y0, z = -0.42 - 0.08 * m, 0.9 + 0.4 * m
    for side in (-1.0, 1.0):
        for j, dy in enumerate((0.16, 0.0, -0.16)):
            pts = [(side * 0.3, y0 + 0.03 * (1 - j)), (side * 1.25, y0 + dy + 0.12)]
            paint.line(pose.at(pts, z), color, w)


def render_face(face: Face, size: int = 64, masks: bool = False):
    """One face as a (size, size, 3) uint8 RGB array; with ``masks``, also its (size, size)
    uint8 part labels (indices into ``PARTS``, the majority part under each pixel)."""
    size = check_size(size)
    k = supersample(size)
    C = size * k
    rgb = face.rgb
    image = Image.fromarray(_gradient(rgb["bg_top"], rgb["bg_bottom"], C))
    labels = Image.new("L", (C, C), LABEL["background"]) if masks else None
    paint = _Painter(image, labels)
    pose = _Pose(face, C)
    base, second = rgb["base"], rgb["secondary"]

    if face.kind == "lion":
        _mane(paint, pose, face, second)
    inner = EAR_INNER if luminance(base) > 80 else _mix(base, EAR_INNER, 0.5)
    _ears(paint, pose, face, base, inner, floppy=False)

    outline = _head_outline(face)
    head_pts = pose.flat(outline)
    paint.polygon(head_pts, base, "face")
    if face["marking"] != "none":
        head_mask = Image.new("L", (C, C), 0)
        ImageDraw.Draw(head_mask).polygon(head_pts, fill=255)
        paint.paste_masked(second, _markings(face, pose, C, head_mask), "markings")
    _strokes(paint, pose, face, base)
    _ears(paint, pose, face, base, inner, floppy=True)
    nose = _muzzle(paint, pose, face, base)
    _mouth(paint, pose, face, nose)
    _eyes(paint, pose, face, rgb["eye_color"])
    _whiskers(paint, pose, face, base)

    out = np.asarray(image.reduce(k), dtype=np.uint8)
    if not masks:
        return out
    lab = np.asarray(labels, dtype=np.uint8).reshape(size, k, size, k).transpose(0, 2, 1, 3)
    lab = lab.reshape(size, size, k * k)
    counts = np.stack([(lab == p).sum(-1) for p in range(len(PARTS))], -1)
    return out, counts.argmax(-1).astype(np.uint8)
