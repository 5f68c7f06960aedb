"""AttnGAN's figure: where each word of a caption is drawn, stage by stage."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def _unit(image: torch.Tensor):
    return ((image.detach().float().clamp(-1, 1) + 1) / 2).permute(1, 2, 0).numpy()


def word_attention_figure(
    images: list[torch.Tensor], attention: list[torch.Tensor], words: list[str], title=None
):
    """One row per attention stage: the stage's image, then one map per word over it.

    ``images``: each stage's image of ONE sample, [(3, s0, s0), (3, 2 s0, 2 s0), ...];
    ``attention``: that sample's maps per attention stage, [(T, s0, s0), (T, 2 s0, 2 s0)]
    (stage i attends over stage i-1's features and draws image i); ``words``: the caption's
    tokens, len(words) <= T (padding beyond them is not drawn). Each map is upsampled to its
    image's size and shown over it, scaled to its own maximum (the title gives that maximum:
    the share of attention the word's most attentive pixel gives it).
    """
    import matplotlib.pyplot as plt

    if len(attention) != len(images) - 1:
        raise ValueError(
            f"expected one attention map set per stage after the first: {len(images)} images "
            f"need {len(images) - 1} attention tensors, got {len(attention)}"
        )
    t = len(words)
    if any(a.dim() != 3 or a.shape[0] < t for a in attention):
        raise ValueError(
            f"each attention tensor must be (T, S, S) with T >= {t} words, got "
            f"{[tuple(a.shape) for a in attention]}"
        )
    fig, axes = plt.subplots(len(attention), t + 1, figsize=(1.3 * (t + 1), 1.5 * len(attention)))
    axes = [axes] if len(attention) == 1 else axes
    for row, (image, maps) in enumerate(zip(images[1:], attention)):
        size = image.shape[-1]
        up = F.interpolate(maps[None, :t].float(), size=(size, size), mode="bilinear")[0]
        ax = axes[row]
        ax[0].imshow(_unit(image))
        ax[0].set_ylabel(f"stage {row + 1}\n{size} px", fontsize=8)
        for k in range(t):
            ax[k + 1].imshow(_unit(image), alpha=0.45)
            ax[k + 1].imshow(up[k].numpy(), cmap="magma", alpha=0.65, vmin=0)
            if row == 0:
                ax[k + 1].set_title(words[k], fontsize=9)
            ax[k + 1].set_xlabel(f"max {float(maps[k].max()):.2f}", fontsize=7)
        for a in ax:
            a.set_xticks([])
            a.set_yticks([])
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


def word_attention_explorer(attend, caption: str | None = None, seed: int = 0):
    """Type a caption (Enter) and pick a seed: the images of every stage with one attention
    map per word (:func:`word_attention_figure`).

    ``attend(caption, seed) -> (images, attention, words)`` gives one sample's stage images,
    its attention maps per stage and the caption's tokens, as :func:`word_attention_figure`
    takes them; the chapter wires it (``ganlab.chapters.attngan.attention_explorer``). An
    error from ``attend`` (a caption without words) is printed instead of a figure.
    """
    from ganlab.viz.explorers import caption_seed_explorer

    def figure(text, seed):
        images, attention, words = attend(text, seed)
        return word_attention_figure(images, attention, words, title=f'"{text}", seed {seed}')

    return caption_seed_explorer(figure, caption, seed)
