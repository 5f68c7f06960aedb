"""Sample grids and training curves, as matplotlib figures or PNG files."""

from __future__ import annotations

import os
from pathlib import Path

import torch


def make_grid(images: torch.Tensor, nrow: int = 8, pad: int = 2) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> one (C, H', W') image in [0, 1], ``nrow`` images a row."""
    from torchvision.utils import make_grid as tv_grid

    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    unit = images.detach().float().cpu().add(1).div(2).clamp(0, 1)
    return tv_grid(unit, nrow=nrow, padding=pad, pad_value=1.0)


FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}  # file ending -> what is written


def save_grid(images: torch.Tensor, path: str | os.PathLike, nrow: int = 8) -> Path:
    """Write a grid in the format the file name says (PNG or JPEG), atomically (a failed
    write leaves any older file intact); another ending is refused."""
    from PIL import Image

    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise ValueError(
            f"cannot write {path.name}: expected a file name ending in {', '.join(FORMATS)}"
        )
    grid = make_grid(images, nrow=nrow)
    array = (grid.permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    if array.shape[2] == 1:
        array = array[:, :, 0]
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    Image.fromarray(array).save(tmp, format=fmt, **({"quality": 95} if fmt == "JPEG" else {}))
    os.replace(tmp, path)
    return path


def show_grid(images, nrow: int = 8, title: str | None = None, ax=None, row_labels=None):
    """Draw a grid with matplotlib; ``row_labels`` name each row (e.g. the digit)."""
    import matplotlib.pyplot as plt

    grid = make_grid(images, nrow=nrow)
    if ax is None:
        rows = (len(images) + nrow - 1) // nrow
        _, ax = plt.subplots(figsize=(min(0.9 * nrow, 12), min(0.9 * rows, 12)))
    ax.imshow(grid.permute(1, 2, 0).numpy().squeeze(), cmap="gray", vmin=0, vmax=1)
    ax.set_xticks([])
    if row_labels is not None:
        h = images.shape[2] + 2
        ax.set_yticks([2 + h * i + images.shape[2] / 2 for i in range(len(row_labels))])
        ax.set_yticklabels([str(r) for r in row_labels])
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_history(history: list[dict], keys=None, ax=None, title="training losses"):
    """Loss curves from ``TrainResult.history`` (one point per logging interval)."""
    import matplotlib.pyplot as plt

    if not history:
        raise ValueError("history is empty: train for at least one logging interval")
    keys = keys or [k for k in history[0] if k != "step"]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.2))
    steps = [h["step"] for h in history]
    for k in keys:
        ax.plot(steps, [h[k] for h in history], label=k)
    ax.set_xlabel("step")
    ax.set_title(title)
    ax.legend(loc="best", fontsize=8)
    ax.grid(alpha=0.3)
    return ax
