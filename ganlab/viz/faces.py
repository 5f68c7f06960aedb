"""Figures of the faces world: grids of faces, part masks, and factor sweeps.

A **factor sweep** draws one face several times, changing a single factor and holding every
other one (and the fine random detail) fixed. Side by side, the coarse factors move the whole
head, the middle ones the features, the fine ones only colours and texture: the split that
StyleGAN's style mixing is about (chapter 6).

>>> from ganlab.viz.faces import sweep_figure
>>> fig = sweep_figure(["yaw", "marking", "eye_color"], size=64)
"""

from __future__ import annotations

import numpy as np
import torch

from ganlab.data.faces import CATEGORIES, LEVELS, PARTS, RANGES, Face, FacesWorld, render_face

# colours of the part labels in mask figures (background, face, ears, eyes, muzzle, mouth,
# markings)
PART_COLORS = np.array(
    [[235, 235, 235], [230, 170, 90], [150, 90, 200], [40, 150, 230], [240, 230, 120],
     [220, 40, 60], [60, 60, 60]], np.uint8,
)  # fmt: skip
DEFAULT_SWEEP = ("yaw", "pitch", "roll", "scale", "ear_size", "eye_open", "muzzle", "mouth",
                 "marking", "base", "eye_color", "background")  # fmt: skip


def sweep_values(factor: str, steps: int = 5) -> list:
    """Values to sweep: ``steps`` evenly spaced over a continuous factor's range, or every
    value of a categorical one."""
    if factor in RANGES:
        lo, hi = RANGES[factor]
        return [float(v) for v in np.linspace(lo, hi, steps)]
    if factor in CATEGORIES:
        return list(CATEGORIES[factor])
    raise ValueError(f"unknown factor {factor!r}: expected one of {[*RANGES, *CATEGORIES]}")


def factor_sweep(face: Face, factor: str, values=None, size: int = 64) -> torch.Tensor:
    """(len(values), 3, size, size) uint8: ``face`` with ``factor`` set to each value."""
    values = sweep_values(factor) if values is None else list(values)
    images = [render_face(face.replace(**{factor: v}), size) for v in values]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _level(factor: str) -> str:
    return next((lvl for lvl, names in LEVELS.items() if factor in names), "")


def sweep_figure(factors=DEFAULT_SWEEP, face: Face | None = None, size: int = 64, steps: int = 5):
    """A matplotlib figure: one row per factor (labelled with its StyleGAN level), each row
    the same face with only that factor changed. ``face`` defaults to test face 0 (a cat)."""
    import matplotlib.pyplot as plt

    face = FacesWorld("test", domain="cat").face(0) if face is None else face
    rows = [(f, sweep_values(f, steps)) for f in factors]
    ncol = max(len(v) for _, v in rows)
    fig, axes = plt.subplots(
        len(rows), ncol, figsize=(1.25 * ncol + 1.2, 1.35 * len(rows)), squeeze=False
    )
    for r, (factor, values) in enumerate(rows):
        images = factor_sweep(face, factor, values, size)
        for c in range(ncol):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c >= len(values):
                continue
            ax.imshow(images[c].permute(1, 2, 0).numpy(), interpolation="lanczos")
            v = values[c]
            ax.set_title(f"{v:.2f}" if isinstance(v, float) else str(v), fontsize=7, pad=2)
        axes[r, 0].set_ylabel(f"{factor}\n({_level(factor)})", fontsize=8)
    fig.suptitle("factor sweeps: one factor changes, every other factor is held", fontsize=10)
    fig.tight_layout()
    return fig


def colour_masks(masks) -> np.ndarray:
    """(..., H, W) part labels -> (..., H, W, 3) uint8 colours (``PART_COLORS``)."""
    return PART_COLORS[np.asarray(masks)]


def faces_grid(images, masks=None, labels=None, ncol: int = 8, title: str | None = None):
    """A figure of faces ((N, 3, H, W) uint8), optionally each with its part masks under it
    and a label above it."""
    import matplotlib.pyplot as plt

    images = torch.as_tensor(images)
    n = len(images)
    nrow = (n + ncol - 1) // ncol
    per = 2 if masks is not None else 1
    fig, axes = plt.subplots(
        nrow * per, ncol, figsize=(1.5 * ncol, 1.6 * nrow * per), squeeze=False
    )
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, ncol)
        ax = axes[r * per, c]
        ax.imshow(images[i].permute(1, 2, 0).numpy(), interpolation="lanczos")
        if labels is not None:
            ax.set_title(str(labels[i]), fontsize=7, pad=2)
        if masks is not None:
            axes[r * per + 1, c].imshow(colour_masks(masks[i]), interpolation="nearest")
    if masks is not None:
        handles = [plt.Rectangle((0, 0), 1, 1, color=c / 255) for c in PART_COLORS]
        fig.legend(handles, PARTS, loc="lower center", ncol=len(PARTS), fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.04 if masks is not None else 0, 1, 1))
    return fig
