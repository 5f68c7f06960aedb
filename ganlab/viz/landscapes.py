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


def painted_figure(generate, labels, styles: list[Style], seeds: int = 4, title=None):
    """SPADE's demo as one figure: a (painted) map; the picture
    ``generate(maps, seed=..., style_images=...)`` paints of it in the style of each of
    ``styles`` (the world's rendering of the map in that style is the encoder's reference,
    drawn above it); then ``seeds`` pictures from random styles z ~ N(0, I)."""
    import matplotlib.pyplot as plt

    from ganlab.evaluation.landscapes import style_reference

    labels = torch.as_tensor(np.asarray(labels)).long()
    refs = torch.cat([style_reference(labels, s) for s in styles]) if styles else None
    styled = generate(labels.expand(len(styles), -1, -1), style_images=refs) if styles else []
    free = generate(labels.expand(seeds, -1, -1), seed=0) if seeds else []
    cols = 1 + len(styles) + seeds
    fig, axes = plt.subplots(2, cols, figsize=(1.7 * cols, 3.8), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    axes[1, 0].imshow(colorize(labels.numpy()), interpolation="nearest")
    axes[1, 0].set_title("the map", fontsize=8)
    for i, style in enumerate(styles):
        axes[0, 1 + i].imshow(image_to_unit(refs[i]), interpolation="nearest")
        axes[0, 1 + i].set_title(f"reference:\n{style.time}, {style.season}", fontsize=7)
        axes[1, 1 + i].imshow(image_to_unit(styled[i]), interpolation="nearest")
        axes[1, 1 + i].set_title("G, its style", fontsize=8)
    for j in range(seeds):
        axes[1, 1 + len(styles) + j].imshow(image_to_unit(free[j]), interpolation="nearest")
        axes[1, 1 + len(styles) + j].set_title(f"G, random z {j}", fontsize=8)
    add_legend(fig, np.unique(labels.numpy()), ncol=5)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.1, 1, 0.95))
    return fig


SHAPES = ("rectangle", "ellipse", "triangle (mountain)", "everything below (horizon)")


def paint(labels: np.ndarray, cls: int, shape: str, x: float, y: float, w: float, h: float):
    """Paint class ``cls`` into a copy of ``labels`` (S, S): a shape centred at (x, y) with
    width w and height h, all as fractions of the image (0..1; y down)."""
    size = labels.shape[0]
    c = (np.arange(size) + 0.5) / size
    u, v = np.meshgrid(c, c)
    if shape == "rectangle":
        mask = (np.abs(u - x) <= w / 2) & (np.abs(v - y) <= h / 2)
    elif shape == "ellipse":
        mask = ((u - x) / max(w / 2, 1e-6)) ** 2 + ((v - y) / max(h / 2, 1e-6)) ** 2 <= 1
    elif shape.startswith("triangle"):
        top, base = y - h / 2, y + h / 2
        mask = (v >= top) & (v <= base) & (np.abs(u - x) <= (v - top) / max(h, 1e-6) * w / 2)
    elif shape.startswith("everything below"):
        mask = v >= y
    else:
        raise ValueError(f"unknown shape {shape!r}: expected one of {SHAPES}")
    out = labels.copy()
    out[mask] = cls
    return out


def map_painter(generate, size: int, vae: bool, start=None, seed: int = 0):
    """Paint a map, get a picture: pick a class and a shape, place it with the sliders and
    press "paint"; ``generate(maps, seed=..., style_images=...)`` (a size-``size`` G)
    redraws. The style: a random z (seed slider) or, with an encoder (``vae``), the
    encoder's reading of the world's rendering of your map at a time of day and season.
    "undo" and "reset" undo."""
    import ipywidgets as widgets
    import matplotlib.pyplot as plt
    from IPython.display import display

    from ganlab.data.landscapes import SEASONS, TIMES, painted_map
    from ganlab.evaluation.landscapes import style_reference

    first = painted_map(size) if start is None else np.asarray(start, dtype=np.uint8)
    history = [first.copy()]
    cls = widgets.Dropdown(options=list(zip(CLASSES, range(len(CLASSES)))), value=3,
                           description="class")  # fmt: skip
    shape = widgets.Dropdown(options=SHAPES, value="ellipse", description="shape")
    sl = {k: widgets.FloatSlider(value=v, min=0, max=1, step=0.02, description=k,
                                 continuous_update=False)
          for k, v in (("x", 0.5), ("y", 0.3), ("w", 0.3), ("h", 0.2))}  # fmt: skip
    style_opts = ["random z"] + [f"{t}, {s}" for t in TIMES for s in SEASONS] if vae else ["-"]
    style = widgets.Dropdown(options=style_opts, description="style")
    seed_w = widgets.IntSlider(value=seed, min=0, max=99, description="seed")
    buttons = [widgets.Button(description=d) for d in ("paint", "undo", "reset")]
    out = widgets.Output()

    def draw(*_):
        labels = torch.from_numpy(history[-1].astype(np.int64))
        if vae and style.value != "random z":
            t, s = (p.strip() for p in style.value.split(","))
            ref = style_reference(labels, Style(time=t, season=s))
            image = generate(labels[None], style_images=ref)[0]
        else:
            image = generate(labels[None], seed=seed_w.value)[0]
        out.clear_output(wait=True)
        with out:
            fig, axes = plt.subplots(1, 2, figsize=(6, 3.2))
            axes[0].imshow(colorize(history[-1]), interpolation="nearest")
            axes[0].set_title("your map", fontsize=9)
            axes[1].imshow(image_to_unit(image), interpolation="nearest")
            axes[1].set_title(f"G's picture ({style.value}, seed {seed_w.value})", fontsize=9)
            for ax in axes:
                ax.axis("off")
            add_legend(fig, np.unique(history[-1]), ncol=5)
            fig.tight_layout(rect=(0, 0.12, 1, 1))
            display(fig)
            plt.close(fig)

    def on_paint(_):
        v = {k: s.value for k, s in sl.items()}
        history.append(paint(history[-1], cls.value, shape.value, **v))
        draw()

    def on_undo(_):
        if len(history) > 1:
            history.pop()
        draw()

    def on_reset(_):
        del history[1:]
        draw()

    for b, f in zip(buttons, (on_paint, on_undo, on_reset), strict=True):
        b.on_click(f)
    style.observe(draw, names="value")
    seed_w.observe(draw, names="value")
    draw()
    controls = widgets.VBox([widgets.HBox([cls, shape]), widgets.HBox(list(sl.values())[:2]),
                             widgets.HBox(list(sl.values())[2:]), widgets.HBox([style, seed_w]),
                             widgets.HBox(buttons)])  # fmt: skip
    return widgets.VBox([controls, out])
