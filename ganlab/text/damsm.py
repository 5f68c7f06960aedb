r"""The DAMSM loss (Xu et al. 2018, AttnGAN, Sec. 3.3): words matched to image regions.

The text encoder gives word features :math:`e \in \mathbb R^{D \times T}` (and a sentence
vector :math:`\bar e`); the image encoder gives region features
:math:`v \in \mathbb R^{D \times R}` (and a global vector :math:`\bar v`). For a caption and
an image:

1. similarity of every word with every region, :math:`s = e^\top v` (T x R), normalised
   over the words for each region (Eq. 7-8);
2. for each word, attention over the regions sharpened by :math:`\gamma_1` (Eq. 9) gives a
   region-context vector :math:`c_i = \sum_j \alpha_{ij} v_j`;
3. relevance of the image to the caption (Eq. 10):
   :math:`R(Q, D) = \log \sum_{i=1}^{T} \exp(\gamma_2 \cos(c_i, e_i))` (the paper raises the
   sum to :math:`1/\gamma_2`; the official code does not, nor does the course);
4. over a batch of M pairs, the posterior of the right image for each caption and of the
   right caption for each image, :math:`\exp(\gamma_3 R) / \sum \exp(\gamma_3 R)`, trained
   with cross-entropy both ways (Eq. 11-13); the same with
   :math:`R = \cos(\bar v, \bar e)` at the sentence level (Eq. 14).

Padding words never count: they are masked out of the word softmax and of the sum in 3
(the official code slices each caption to its length, the same thing). With ``class_ids``,
pairs of different images of the same class are removed from the softmax, as the official
code does. :math:`\gamma_1 = 4` (the CUB yml; ``config.py`` defaults to 5), :math:`\gamma_2 = 5`,
:math:`\gamma_3 = 10`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

GAMMA1, GAMMA2, GAMMA3 = 4.0, 5.0, 10.0


def _word_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """(B,) -> (B, T) bool, True at real words."""
    return torch.arange(t, device=lengths.device)[None] < lengths[:, None]


def word_region_attention(words, regions, lengths, gamma1: float = GAMMA1):
    """Region context for every word of every caption against every image.

    words (B_t, D, T), regions (B_i, D, h, w), lengths (B_t,) ->
    context (B_t, B_i, D, T), attention (B_t, B_i, T, h*w) (each word's weights over regions).
    """
    if words.dim() != 3 or regions.dim() != 4 or words.shape[1] != regions.shape[1]:
        raise ValueError(
            f"expected words (B, D, T) and regions (B, D, h, w) with one D, got "
            f"{tuple(words.shape)} and {tuple(regions.shape)}"
        )
    v = regions.flatten(2)  # (B_i, D, R)
    T = words.shape[2]
    real = _word_mask(lengths, T)  # (B_t, T)
    s = torch.einsum("adt,bdr->abtr", words, v)  # (B_t, B_i, T, R)
    # Eq. 8: for each region, normalise over the caption's real words
    s = s.masked_fill(~real[:, None, :, None], float("-inf"))
    s = torch.softmax(s, dim=2)
    # Eq. 9: for each word, attention over the regions, sharpened by gamma1
    alpha = torch.softmax(gamma1 * s, dim=3)  # (B_t, B_i, T, R)
    context = torch.einsum("abtr,bdr->abdt", alpha, v)  # (B_t, B_i, D, T)
    return context, alpha


def word_level_similarity(words, regions, lengths, gamma1=GAMMA1, gamma2=GAMMA2) -> torch.Tensor:
    """R(Q, D) for every caption (rows, B_t) and image (columns, B_i)."""
    context, _ = word_region_attention(words, regions, lengths, gamma1)
    cos = F.cosine_similarity(context, words[:, None], dim=2, eps=1e-8)  # (B_t, B_i, T)
    real = _word_mask(lengths, words.shape[2])[:, None, :]  # (B_t, 1, T)
    return torch.logsumexp((gamma2 * cos).masked_fill(~real, float("-inf")), dim=2)  # (B_t, B_i)


def _matching_loss(scores: torch.Tensor, class_ids) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy of the diagonal: images for each caption, captions for each image."""
    b = scores.shape[0]
    if class_ids is not None:
        same = class_ids[:, None] == class_ids[None, :]
        same = same & ~torch.eye(b, dtype=torch.bool, device=scores.device)
        scores = scores.masked_fill(same, float("-inf"))
    labels = torch.arange(b, device=scores.device)
    return F.cross_entropy(scores, labels), F.cross_entropy(scores.T, labels)


def damsm_word_loss(
    words, regions, lengths, class_ids=None, gamma1=GAMMA1, gamma2=GAMMA2, gamma3=GAMMA3
):
    """Word-level DAMSM loss of a batch of matching pairs: (loss_w0, loss_w1).

    loss_w0: for each caption, find its image; loss_w1: for each image, find its caption.
    """
    r = word_level_similarity(words, regions, lengths, gamma1, gamma2)  # (captions, images)
    return _matching_loss(gamma3 * r, class_ids)


def damsm_sentence_loss(sentence, global_, class_ids=None, gamma3=GAMMA3):
    """Sentence-level DAMSM loss from cosines of sentence and global vectors: (s0, s1)."""
    cos = F.normalize(sentence, dim=1) @ F.normalize(global_, dim=1).T  # (captions, images)
    return _matching_loss(gamma3 * cos, class_ids)


def damsm_loss(
    words,
    sentence,
    regions,
    global_,
    lengths,
    class_ids=None,
    gamma1=GAMMA1,
    gamma2=GAMMA2,
    gamma3=GAMMA3,
) -> dict:
    """Both levels, both directions: ``{"word", "sentence", "total"}`` (total = their sum)."""
    w0, w1 = damsm_word_loss(words, regions, lengths, class_ids, gamma1, gamma2, gamma3)
    s0, s1 = damsm_sentence_loss(sentence, global_, class_ids, gamma3)
    return {"word": w0 + w1, "sentence": s0 + s1, "total": w0 + w1 + s0 + s1}
