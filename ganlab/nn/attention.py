r"""AttnGAN's word attention (Xu et al. 2018, Sec. 3.1, Eq. 2): every pixel reads the words.

An attention stage of the generator holds image features :math:`h \in \mathbb R^{\hat D
\times N}` (N = H*W pixels) and the caption's word features :math:`e \in \mathbb R^{D
\times T}`. The words are first mapped to the image's width by a perceptron layer
:math:`e' = U e` (:math:`U \in \mathbb R^{\hat D \times D}`, a 1x1 conv without bias in the
official code). Then for pixel :math:`j` and word :math:`i`

.. math::
    s'_{j,i} = h_j^\top e'_i, \qquad
    \beta_{j,i} = \frac{\exp(s'_{j,i})}{\sum_{k=0}^{T-1} \exp(s'_{j,k})}, \qquad
    c_j = \sum_{i=0}^{T-1} \beta_{j,i}\, e'_i

a softmax over the WORDS for each pixel; :math:`c` is the word-context map, the same shape
as :math:`h`, which the next stage concatenates with :math:`h`.

Shapes: h (B, C, H, W), words (B, D, T) -> U -> (B, C, T); attention (B, T, H, W) (for each
word a map over the pixels: what the chapter shows), context (B, C, H, W).

Padding: ``mask`` (B, T) is True at padding words (``padding_mask(lengths, T)``, from
``ganlab.validation``); they get weight exactly 0. A caption whose every word is masked
gives an all-zero row (zero attention, zero context) instead of the NaN a plain
``softmax`` of all -inf returns.

=========================  =====================================  ==========================
what                       official (GlobalAttention.py)          course
=========================  =====================================  ==========================
mask layout                ``mask.repeat(queryL, 1)`` against     the mask of caption b is
                           rows ordered (batch, pixel): for       applied to caption b
                           B > 1 each row gets another            (a broadcast)
                           caption's mask (taoxugit/AttnGAN
                           issue #93)
all-masked row             softmax of all -inf: NaN               zeros
=========================  =====================================  ==========================
"""

from __future__ import annotations

import torch
from torch import nn

from ganlab.validation import check_tensor, padding_mask

__all__ = ["WordAttention", "padding_mask", "word_attention"]


def _check_inputs(h, words, mask) -> None:
    check_tensor(h, "h (image features)", ("B", "C", "H", "W"))
    check_tensor(words, "words", (len(h), "D", "T"), why="one caption per image")
    if mask is not None:  # True at padding words
        check_tensor(mask, "mask (B, T)", (len(h), words.shape[2]), "bool")


def word_attention(
    h: torch.Tensor, words: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eq. 2 with the words already projected: h (B, C, H, W), words (B, C, T), mask (B, T)
    True at padding -> context (B, C, H, W), attention (B, T, H, W).

    For every pixel the attention is a softmax over the caption's real words.
    """
    _check_inputs(h, words, mask)
    if words.shape[1] != h.shape[1]:
        raise ValueError(
            f"words must be projected to h's {h.shape[1]} channels first, got {words.shape[1]}"
        )
    b, c, height, width = h.shape
    query = h.flatten(2).transpose(1, 2)  # (B, N, C), N = H*W pixels
    scores = query @ words  # s'_{j,i} = h_j . e'_i: (B, N, T)
    if mask is not None:
        scores = scores.masked_fill(mask[:, None, :], float("-inf"))  # padding: exp(-inf) = 0
        empty = mask.all(dim=1)  # (B,) captions with no real word at all
        scores = scores.masked_fill(empty[:, None, None], 0.0)  # finite, so no NaN ...
    beta = torch.softmax(scores, dim=2)  # over the WORDS, for each pixel: (B, N, T)
    if mask is not None:
        beta = beta.masked_fill(mask[:, None, :], 0.0)  # ... and its rows are zeroed here
    context = words @ beta.transpose(1, 2)  # c_j = sum_i beta_{j,i} e'_i: (B, C, N)
    attention = beta.transpose(1, 2).reshape(b, -1, height, width)  # (B, T, H, W)
    return context.view(b, c, height, width), attention


class WordAttention(nn.Module):
    """AttnGAN's attention module (official ``GlobalAttentionGeneral``).

    ``channels`` is the image features' width C (official idf = ngf), ``word_dim`` the word
    features' D (official cdf = nef = 256). ``U`` maps the words to C channels (Eq. 2).
    forward(h (B, C, H, W), words (B, D, T), mask (B, T) bool or None)
    -> context (B, C, H, W), attention (B, T, H, W).
    """

    def __init__(self, channels: int, word_dim: int) -> None:
        super().__init__()
        if channels < 1 or word_dim < 1:
            raise ValueError(f"channels and word_dim must be >= 1, got {channels}, {word_dim}")
        self.channels, self.word_dim = channels, word_dim
        self.U = nn.Conv1d(word_dim, channels, kernel_size=1, bias=False)  # e' = U e

    def forward(
        self, h: torch.Tensor, words: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        _check_inputs(h, words, mask)
        if h.shape[1] != self.channels or words.shape[1] != self.word_dim:
            raise ValueError(
                f"expected h with {self.channels} channels and words with {self.word_dim}, got "
                f"h {tuple(h.shape)} and words {tuple(words.shape)}"
            )
        return word_attention(h, self.U(words), mask)  # words (B, D, T) -> (B, C, T)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, word_dim={self.word_dim}"
