"""Figures of the landscapes world: map | image pairs with a class legend, one map in many
styles."""

from __future__ import annotations

import numpy as np
import torch

from ganlab.data.landscapes import CLASSES, LEGEND, Style, colorize, render


def image_to_unit(image) -> np.ndarray:
    """(3, H, W) float in [-1, 1] or uint8, or (H, W, 3) uint8 -> (H, W, 3) float in [0, 1]."""
    x = torch.as_tensor(np.asarray(image) if not isinstance(image, torch.Tensor) else image)
    x = x.detach().cpu()
    if x.dim() == 3 and x.shape[0] == 3:
        x = x.permute(1, 2, 0)
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float().add(1).div(2)
    return x.clamp(0, 1).numpy()


def add_legend(fig, present=None, ncol: int = 10) -> None:
    """A legend of the class colours under the figure (only ``present`` class ids if given)."""
    from matplotlib.patches import Patch

    ids = range(len(CLASSES)) if present is None else sorted({int(c) for c in present})
    handles = [Patch(facecolor=LEGEND[c] / 255, edgecolor="0.4", label=CLASSES[c]) for c in ids]
    fig.legend(handles=handles, loc="lower center", ncol=min(ncol, len(handles)), fontsize=8,
               frameon=False)  # fmt: skip


def map_image_grid(labels, images, ncol: int = 4, titles=None, extra=None, extra_title="model"):
    """Pairs (map | image) for each scene, ``ncol`` pairs a row, with a class legend.

    ``labels`` (N, S, S) class ids; ``images`` (N, 3, S, S) floats in [-1, 1] or uint8;
    ``extra``: optional second images (N, 3, S, S), e.g. a model's outputs, drawn as a third
    column (titled ``extra_title``).
    """
    import matplotlib.pyplot as plt

    n = len(labels)
    if len(images) != n or (extra is not None and len(extra) != n):
        raise ValueError(f"need one image per map: {n} maps, {len(images)} images")
    per = 2 if extra is None else 3
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, per * ncol, figsize=(1.5 * per * ncol, 1.6 * nrow + 0.5),
                             squeeze=False)  # fmt: skip
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        r, c = divmod(i, ncol)
        panels = [colorize(np.asarray(labels[i])), image_to_unit(images[i])]
        names = ["map", "image" if titles is None else titles[i]]
        if extra is not None:
            panels.append(image_to_unit(extra[i]))
            names.append(extra_title)
        for k, (panel, name) in enumerate(zip(panels, names, strict=True)):
            ax = axes[r, per * c + k]
            ax.imshow(panel, interpolation="nearest")
            if r == 0 or titles is not None:
                ax.set_title(name, fontsize=8)
    add_legend(fig, np.unique(np.asarray(labels)))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


def styles_figure(labels, styles: list[Style], instances=None, title: str | None = None):
    """One map rendered in several styles: the layout stays, the look changes."""
    import matplotlib.pyplot as plt

    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(styles) + 1, figsize=(1.9 * (len(styles) + 1), 2.4))
    axes[0].imshow(colorize(labels), interpolation="nearest")
    axes[0].set_title("map", fontsize=8)
    for ax, style in zip(axes[1:], styles, strict=True):
        ax.imshow(render(labels, style, instances), interpolation="nearest")
        ax.set_title(f"{style.time}, {style.season}", fontsize=8)
    for ax in axes:
        ax.axis("off")
    add_legend(fig, np.unique(labels), ncol=5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout(rect=(0, 0.14, 1, 1))
    return fig
