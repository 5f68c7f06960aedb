"""Figures of the birds world: images with their captions, and caption -> image retrieval."""

from __future__ import annotations

import textwrap

import torch


def _as_unit(image: torch.Tensor):
    """(3, H, W) in [-1, 1] (float) or 0..255 (uint8) -> (H, W, 3) numpy in [0, 1]."""
    x = image.detach().cpu()
    x = x.float() / 255.0 if x.dtype == torch.uint8 else x.float().add(1).div(2)
    return x.clamp(0, 1).permute(1, 2, 0).numpy()


def caption_grid(
    images: torch.Tensor,
    captions: list[str],
    ncol: int = 4,
    width: int = 30,
    title: str | None = None,
):
    """A matplotlib figure: each image with its caption under it (wrapped at ``width`` chars)."""
    import matplotlib.pyplot as plt

    if len(images) != len(captions):
        raise ValueError(
            f"got {len(images)} images but {len(captions)} captions; expected one caption per image"
        )
    n = len(images)
    nrow = (n + ncol - 1) // ncol
    fig, axes = plt.subplots(nrow, ncol, figsize=(2.4 * ncol, 3.1 * nrow), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for i in range(n):
        ax = axes.flat[i]
        ax.imshow(
            _as_unit(images[i]),
            interpolation="lanczos" if images.shape[-1] < 128 else "antialiased",
        )
        ax.set_title("\n".join(textwrap.wrap(captions[i], width)), fontsize=7.5, y=-0.02, va="top")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


@torch.no_grad()
def retrieve(caption: str, text_encoder, image_encoder, images: torch.Tensor, k: int = 6):
    """Indices and scores of the ``k`` images most similar to ``caption`` (cosine for DAMSM,
    the compatibility theta(v).phi(t) for the joint encoder)."""
    text = text_encoder([caption]).sentence  # (1, D)
    feats = []
    for s in range(0, len(images), 250):
        out = image_encoder(images[s : s + 250])
        feats.append(out[1] if isinstance(out, tuple) else out)
    feats = torch.cat(feats)  # (N, D)
    if text_encoder.kind == "damsm":
        scores = (
            torch.nn.functional.normalize(feats, dim=1)
            @ torch.nn.functional.normalize(text, dim=1).T
        )
    else:
        scores = feats @ text.T
    top = scores[:, 0].topk(min(k, len(images)))
    return top.indices, top.values


def retrieval_figure(
    caption: str, text_encoder, image_encoder, images: torch.Tensor, k: int = 6, captions=None
):
    """A row of the ``k`` images the encoders find closest to ``caption``."""
    import matplotlib.pyplot as plt

    idx, scores = retrieve(caption, text_encoder, image_encoder, images, k)
    fig, axes = plt.subplots(1, len(idx), figsize=(2.0 * len(idx), 2.6), squeeze=False)
    for ax, i, s in zip(axes[0], idx.tolist(), scores.tolist(), strict=True):
        ax.imshow(_as_unit(images[i]))
        ax.axis("off")
        label = f"score {s:.2f}"
        if captions is not None:
            label += "\n" + "\n".join(textwrap.wrap(captions[i], 24)[:3])
        ax.set_title(label, fontsize=7, y=-0.02, va="top")
    fig.suptitle(f'"{caption}"  ({text_encoder.kind} encoder)', fontsize=10)
    fig.tight_layout()
    return fig
