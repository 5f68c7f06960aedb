r"""The course's text encoders, trained on the birds world and shipped as weights.

The papers rely on text encoders that nobody can download any more. The course trains its
own, on the birds world, with each paper's own objective:

**Joint embedding** (Reed et al. 2016a, *Learning Deep Representations of Fine-Grained
Visual Descriptions*; used by GAN-INT-CLS and StackGAN). An image encoder
:math:`\theta(v)` and a text encoder :math:`\varphi(t)` map into one 1024-d space with the
compatibility :math:`F(v, t) = \theta(v)^\top \varphi(t)`. The *deep symmetric structured
joint embedding* (DS-SJE) loss trains both classifiers built on F at once,

.. math::
    \frac1N \sum_n \Big[\max_y \big(\Delta(y_n, y) + \bar F_t(v_n, y) - \bar F_t(v_n, y_n)\big)
                     + \max_y \big(\Delta(y_n, y) + \bar F_v(t_n, y) - \bar F_v(t_n, y_n)\big)\Big]

where :math:`\bar F_t(v, y)` is the mean compatibility of image v with the captions of class
y (in the batch), :math:`\bar F_v(t, y)` the mean over class y's images, and
:math:`\Delta` the 0-1 loss. Classes are the world's species.

**DAMSM** (Xu et al. 2018, AttnGAN): a BiLSTM gives word features (B, 256, T) and a sentence
vector (B, 256); a CNN gives region features (B, 256, h, w) and a global vector (B, 256); the
DAMSM loss (``ganlab.text.damsm``) matches words to regions and sentences to images.

Deviations from the papers (the course trains everything on 64 px birds, on a CPU):

=====================  ===============================  ====================================
what                   paper                            course
=====================  ===============================  ====================================
joint text encoder     char-CNN-RNN (Reed: word-level   word-CNN-RNN: embedding 128, conv
                       variants also reported)          1d k=3 256, GRU 256, mean over words,
                                                        linear to 1024
joint image encoder    GoogLeNet pool5 (1024-d), frozen a small CNN trained jointly (1024-d)
DS-SJE hinge           max over classes (structured     mean over the batch's other classes
                       SVM surrogate)                   (the max collapsed here: loss stuck
                                                        at 2 with both encoders learned)
DAMSM image encoder    Inception-v3 (ImageNet), 17x17   a small CNN trained from scratch,
                       regions of Mixed_6e, 299 px in   8x8 regions, 64 px in
DAMSM text encoder     BiLSTM, embedding 300, 128 per   the same
                       direction, dropout 0.5
=====================  ===============================  ====================================
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.validation import (
    check_images,
    check_indices,
    check_lengths,
    check_tensor,
    in_dtype_of,
    padding_mask,
)

ENCODER_SIZE = 64  # every image encoder reads 64 px (other sizes are resized)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2, inplace=True),
    )


def resize_for_encoder(images: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) in [-1, 1] -> (N, 3, 64, 64), area-style antialiasing when shrinking."""
    check_images(images, "images", channels=3)
    if images.shape[-1] == ENCODER_SIZE and images.shape[-2] == ENCODER_SIZE:
        return images
    return F.interpolate(
        images,
        size=(ENCODER_SIZE, ENCODER_SIZE),
        mode="bilinear",
        antialias=True,
        align_corners=False,
    )


class ImageTrunk(nn.Module):
    """64 px image -> features at 8x8 (``regions``) and 4x4 (``top``)."""

    def __init__(self, width: int = 16):
        super().__init__()
        w = width
        self.to8 = nn.Sequential(
            _block(3, w, 1),  # (N, w, 64, 64)
            _block(w, 2 * w, 2),  # (N, 2w, 32, 32)
            _block(2 * w, 4 * w, 2),  # (N, 4w, 16, 16)
            _block(4 * w, 8 * w, 2),  # (N, 8w, 8, 8)
        )
        self.to4 = _block(8 * w, 8 * w, 2)  # (N, 8w, 4, 4)
        self.channels = 8 * w

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, 3, H, W) in [-1, 1], float of any precision (converted to the weights' dtype)
        -> regions (N, 8w, 8, 8), top (N, 8w, 4, 4)."""
        x8 = self.to8(in_dtype_of(resize_for_encoder(images), self))
        return x8, self.to4(x8)


class JointImageEncoder(nn.Module):
    """theta(v): (N, 3, H, W) in [-1, 1] -> (N, 1024)."""

    def __init__(self, embed_dim: int = 1024, width: int = 16):
        super().__init__()
        self.config = {"embed_dim": embed_dim, "width": width}
        self.trunk = ImageTrunk(width)
        self.proj = nn.Linear(self.trunk.channels, embed_dim)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        _, top = self.trunk(images)
        return self.proj(top.mean(dim=(2, 3)))


def _check_tokens(ids: torch.Tensor, lengths: torch.Tensor, vocab_size: int, values: bool) -> None:
    """Shapes and dtypes always; value ranges (host syncs) only when ``values``."""
    check_tensor(ids, "word ids (from Vocabulary.encode)", ("B", "L"), "int")
    check_lengths(lengths, ids.shape[1], batch=len(ids), values=values)
    if values:
        check_indices(ids, vocab_size, "word ids")


class JointTextEncoder(nn.Module):
    """phi(t), a word-CNN-RNN: ids (B, L), lengths (B,) -> (B, 1024)."""

    def __init__(
        self, vocab_size: int, embed_dim: int = 1024, word_dim: int = 128, hidden: int = 256
    ):
        super().__init__()
        self.config = {
            "vocab_size": vocab_size,
            "embed_dim": embed_dim,
            "word_dim": word_dim,
            "hidden": hidden,
        }
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.conv = nn.Conv1d(word_dim, hidden, kernel_size=3, padding=1)
        self.rnn = nn.GRU(hidden, hidden, batch_first=True)
        self.proj = nn.Linear(hidden, embed_dim)

    def forward(self, ids: torch.Tensor, lengths: torch.Tensor, check: bool = True) -> torch.Tensor:
        """``check=False`` skips the value-range checks (host syncs) for validated training data."""
        _check_tokens(ids, lengths, self.config["vocab_size"], check)
        valid = ~padding_mask(lengths, ids.shape[1]).unsqueeze(-1)  # (B, L, 1), True at words
        x = self.embedding(ids)  # (B, L, word_dim)
        x = F.relu(self.conv(x.transpose(1, 2))).transpose(1, 2) * valid  # (B, L, hidden)
        h, _ = self.rnn(x)  # (B, L, hidden)
        h = (h * valid).sum(1) / lengths[:, None].to(h.dtype)  # mean over the real words
        return self.proj(h)  # (B, embed_dim)


def ds_sje_loss(
    image_emb: torch.Tensor, text_emb: torch.Tensor, classes: torch.Tensor, reduce: str = "mean"
) -> torch.Tensor:
    """Reed et al.'s symmetric structured joint embedding loss on one batch (module docstring).

    image_emb (B, D), text_emb (B, D) (pair n: image n and one of its captions), classes (B,).
    ``reduce="max"`` is the paper's structured hinge (the most violating class);
    ``"mean"`` (course default) averages the hinge over the batch's other classes. With both
    encoders learned from scratch the max version collapsed to equal scores for every class
    (loss stuck at 2; Reed et al. kept the image features fixed), the mean version learns.
    """
    if reduce not in ("mean", "max"):
        raise ValueError(f"reduce must be 'mean' or 'max', got {reduce!r}")
    labels, inverse = torch.unique(classes, return_inverse=True)  # (C,), (B,)
    if len(labels) < 2:
        raise ValueError("the joint embedding loss needs at least two classes in a batch")
    onehot = F.one_hot(inverse, len(labels)).to(image_emb.dtype)  # (B, C)
    per_class = onehot / onehot.sum(0, keepdim=True)  # column means
    delta = 1.0 - onehot  # 0-1 loss Delta(y_n, y)

    def hinge(scores):  # scores (B, C): compatibility with each class's mean
        true = (scores * onehot).sum(1, keepdim=True)
        if reduce == "max":
            return (delta + scores - true).amax(1).mean()
        violation = (delta + scores - true).clamp(min=0) * delta  # other classes only
        return (violation.sum(1) / (len(labels) - 1)).mean()

    f_text = image_emb @ text_emb.T @ per_class  # (B, C): image n vs class y's captions
    f_image = text_emb @ image_emb.T @ per_class  # (B, C): caption n vs class y's images
    return hinge(f_text) + hinge(f_image)


class DAMSMTextEncoder(nn.Module):
    """BiLSTM: ids (B, L), lengths (B,) -> words (B, 256, L), zero at padding; sentence (B, 256)."""

    def __init__(
        self, vocab_size: int, embed_dim: int = 300, hidden: int = 128, dropout: float = 0.5
    ):
        super().__init__()
        self.config = {
            "vocab_size": vocab_size,
            "embed_dim": embed_dim,
            "hidden": hidden,
            "dropout": dropout,
        }
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.drop = nn.Dropout(dropout)
        self.rnn = nn.LSTM(embed_dim, hidden, batch_first=True, bidirectional=True)
        self.dim = 2 * hidden

    def forward(
        self, ids: torch.Tensor, lengths: torch.Tensor, check: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_tokens(ids, lengths, self.config["vocab_size"], check)
        x = self.drop(self.embedding(ids))  # (B, L, 300)
        packed = nn.utils.rnn.pack_padded_sequence(
            x, lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        out, (h, _) = self.rnn(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=ids.shape[1])
        words = out.transpose(1, 2)  # (B, 256, L), zeros after each caption's end
        sentence = torch.cat([h[0], h[1]], dim=1)  # last states of both directions (B, 256)
        return words, sentence


class DAMSMImageEncoder(nn.Module):
    """images (N, 3, H, W) in [-1, 1] -> regions (N, 256, 8, 8), global (N, 256)."""

    def __init__(self, dim: int = 256, width: int = 16):
        super().__init__()
        self.config = {"dim": dim, "width": width}
        self.trunk = ImageTrunk(width)
        self.emb_features = nn.Conv2d(
            self.trunk.channels, dim, 1
        )  # regions, as AttnGAN's emb_features
        self.emb_cnn_code = nn.Linear(self.trunk.channels, dim)  # global vector
        self.dim = dim

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x8, top = self.trunk(images)
        return self.emb_features(x8), self.emb_cnn_code(top.mean(dim=(2, 3)))


@dataclass
class TextFeatures:
    """What every chapter gets from a caption encoder.

    ``sentence`` (B, D); ``words`` (B, D, L) or None (joint encoder); ``lengths`` (B,);
    ``padding`` (B, L) bool, True where there is no word (mask it out of attention).
    """

    sentence: torch.Tensor
    words: torch.Tensor | None
    lengths: torch.Tensor
    padding: torch.Tensor

    def to(self, device) -> TextFeatures:
        words = None if self.words is None else self.words.to(device)
        return TextFeatures(
            self.sentence.to(device), words, self.lengths.to(device), self.padding.to(device)
        )
