r"""The DAMSM loss (Xu et al. 2018, AttnGAN, Sec. 3.3): words matched to image regions.

The text encoder gives word features :math:`e \in \mathbb R^{D \times T}` (and a sentence
vector :math:`\bar e`); the image encoder gives region features
:math:`v \in \mathbb R^{D \times N}` (N = h*w regions; and a global vector :math:`\bar v`).
For one caption and one image:

1. similarity of every word with every region, :math:`s = e^\top v` (T x N, Eq. 7),
   normalised over the caption's words for each region (Eq. 8):
   :math:`\bar s_{i,j} = \exp(s_{i,j}) / \sum_{k=1}^{T} \exp(s_{k,j})`;
2. for each word, attention over the regions sharpened by :math:`\gamma_1` (Eq. 9):
   :math:`\alpha_j = \exp(\gamma_1 \bar s_{i,j}) / \sum_{k=1}^{N} \exp(\gamma_1 \bar s_{i,k})`,
   and the word's region-context vector :math:`c_i = \sum_j \alpha_j v_j`;
3. relevance of the image to the caption (Eq. 10, as the official code computes it):

   .. math:: R(Q, D) = \log \sum_{i=1}^{T} \exp(\gamma_2 \cos(c_i, e_i))

   The paper writes :math:`\log\big(\sum_i \exp(\gamma_2 R(c_i, e_i))\big)^{1/\gamma_2}`, i.e.
   the above divided by :math:`\gamma_2`; the official ``words_loss`` does not divide (it takes
   ``mul(gamma2).exp().sum().log()``) and neither does the course. With gamma3 = 10 the
   official scale is what the published models were trained with;
4. over a batch of M matching pairs :math:`(Q_i, D_i)`, the posterior of the right caption for
   each image (Eq. 11) :math:`P(D_i|Q_i) = \exp(\gamma_3 R(Q_i, D_i)) / \sum_{j}
   \exp(\gamma_3 R(Q_i, D_j))`, and of the right image for each caption; the losses are their
   negative log-likelihoods, :math:`L^w_1 = -\sum_i \log P(D_i|Q_i)` and
   :math:`L^w_2 = -\sum_i \log P(Q_i|D_i)` (Eq. 12-13; the code and the course average over
   the batch). The sentence level does the same with :math:`R(Q, D) = \cos(\bar v, \bar e)`
   (Eq. 14): :math:`L^s_1, L^s_2`.

:math:`\mathcal L_{DAMSM} = L^w_1 + L^w_2 + L^s_1 + L^s_2` (Eq. 15). The names follow the
official code: ``loss_w0``/``loss_s0`` is :math:`L_1` (rows are images, a softmax over the
captions), ``loss_w1``/``loss_s1`` is :math:`L_2` (rows are captions).

Shapes: words (B, D, T) with lengths (B,) int64 (positions >= length are padding); sentence
(B, D); regions (B, D, h, w); global vector (B, D). Caption i and image i match.

Padding words never count: they are masked out of the softmax over words (1) and out of the
sum in (3); the official code slices each caption to its length, which is the same thing.
With ``class_ids``, pairs of two different samples of the same class are removed from the
softmax (set to -inf), as the official code does: they are not wrong pairs.

Everything is vectorised over the batch (the official code loops over captions): the word
level materialises (B_t, B_i, T, h*w) and (B_t, B_i, T, D) tensors, about 0.2 GB each in
float32 for B = 100, T = 18, 17x17 regions, D = 256.

=========================  =================================  ==============================
what                       paper / official code              course
=========================  =================================  ==============================
gamma1                     4 (CUB and COCO ymls); 5 in        ``GAMMA1 = 4``
                           ``config.py``'s default
gamma2, gamma3             5, 10                              ``GAMMA2 = 5``, ``GAMMA3 = 10``
power 1/gamma2 in Eq. 10   paper: yes; code: no               no (code)
loss reduction             paper: sum over the batch;         mean (code)
                           code: mean (CrossEntropyLoss)
cosine's eps               code: clamps ||x||*||y|| at 1e-8   the same
=========================  =================================  ==============================
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from ganlab.validation import check_lengths, check_tensor, padding_mask

GAMMA1, GAMMA2, GAMMA3 = 4.0, 5.0, 10.0
"""gamma1 sharpens word->region attention (4: CUB yml; config.py's default is 5), gamma2 the
word->caption aggregation, gamma3 the softmax over the batch."""
EPS = 1e-8


def _check(words, regions, lengths, values: bool = True) -> None:
    """Shapes and dtypes always; the lengths' range (a host sync) only when ``values``."""
    check_tensor(words, "words", ("B", "D", "T"))
    share = "words (B, D, T) and regions (B, D, h, w) share D"
    check_tensor(regions, "regions", ("B", words.shape[1], "h", "w"), why=share)
    check_lengths(lengths, words.shape[2], batch=len(words), values=values)


def _attend(words, regions, real, gamma1):
    """-> dot products s (B_t, B_i, T, N), alpha (B_t, B_i, T, N), context (B_t, B_i, T, D)."""
    v = regions.flatten(2)  # (B_i, D, N)
    s = torch.einsum("adt,bdn->abtn", words, v)  # Eq. 7: (B_t, B_i, T, N)
    # Eq. 8: for each region, a softmax over the caption's REAL words
    s_bar = torch.softmax(s.masked_fill(~real[:, None, :, None], float("-inf")), dim=2)
    # Eq. 9: for each word, a softmax over the regions, sharpened by gamma1
    alpha = torch.softmax(gamma1 * s_bar, dim=3)  # (B_t, B_i, T, N)
    context = torch.einsum("abtn,bdn->abtd", alpha, v)  # c_i = sum_j alpha_j v_j
    return s, alpha, context


def word_region_attention(words, regions, lengths, gamma1: float = GAMMA1):
    """Region context of every word of every caption in every image (Eq. 7-9).

    words (B_t, D, T), regions (B_i, D, h, w), lengths (B_t,) ->
    context (B_t, B_i, D, T), attention (B_t, B_i, T, h*w): each real word's weights over the
    regions (they sum to 1). Padding words get zero context and zero attention.
    """
    _check(words, regions, lengths)
    real = ~padding_mask(lengths, words.shape[2])  # (B_t, T), True at real words
    _, alpha, context = _attend(words, regions, real, gamma1)
    pad = ~real[:, None, :, None]  # (B_t, 1, T, 1)
    return context.masked_fill(pad, 0.0).transpose(2, 3), alpha.masked_fill(pad, 0.0)


def word_level_similarity(
    words, regions, lengths, gamma1=GAMMA1, gamma2=GAMMA2, check: bool = True
) -> torch.Tensor:
    """R(Q, D) = log sum_i exp(gamma2 cos(c_i, e_i)) over each caption's real words (Eq. 10).

    words (B_t, D, T), regions (B_i, D, h, w), lengths (B_t,) -> (B_t, B_i): row a, column b
    is the relevance of image b to caption a. ``check=False`` skips the lengths' range check
    (a host sync) for training data that were validated when tokenised.
    """
    _check(words, regions, lengths, values=check)
    real = ~padding_mask(lengths, words.shape[2])  # (B_t, T), True at real words
    s, alpha, context = _attend(words, regions, real, gamma1)
    # cos(c_i, e_i) = e_i . c_i / (|e_i| |c_i|), and e_i . c_i = sum_j alpha_j (e_i . v_j)
    dot = (alpha * s).sum(3)  # (B_t, B_i, T)
    norms = words.norm(dim=1)[:, None, :] * context.norm(dim=3)  # (B_t, B_i, T)
    cos = dot / norms.clamp_min(EPS)  # the official cosine clamps the product
    cos = (gamma2 * cos).masked_fill(~real[:, None, :], float("-inf"))  # padding -> exp = 0
    return torch.logsumexp(cos, dim=2)  # (B_t, B_i)


def _matching_loss(scores: torch.Tensor, class_ids) -> tuple[torch.Tensor, torch.Tensor]:
    """scores (images, captions) -> (CE over captions per image, CE over images per caption)."""
    b = scores.shape[0]
    if scores.shape != (b, b):
        raise ValueError(f"expected a square batch of matching pairs, got {tuple(scores.shape)}")
    if class_ids is not None:
        class_ids = torch.as_tensor(class_ids, device=scores.device)
        if class_ids.shape != (b,):
            raise ValueError(f"class_ids must have shape ({b},), got {tuple(class_ids.shape)}")
        same = class_ids[:, None] == class_ids[None, :]  # (B, B)
        same = same & ~torch.eye(b, dtype=torch.bool, device=scores.device)
        scores = scores.masked_fill(same, float("-inf"))  # same class: not a wrong pair
    labels = torch.arange(b, device=scores.device)  # pair i matches pair i
    return F.cross_entropy(scores, labels), F.cross_entropy(scores.T, labels)


def damsm_word_loss(
    words,
    regions,
    lengths,
    class_ids=None,
    gamma1=GAMMA1,
    gamma2=GAMMA2,
    gamma3=GAMMA3,
    check: bool = True,
):
    """Word-level DAMSM loss of a batch of matching pairs: (loss_w0, loss_w1) (Eq. 11-13).

    loss_w0 = L^w_1: for each image, find its caption; loss_w1 = L^w_2: for each caption, its
    image. Each a mean over the batch.
    """
    r = word_level_similarity(words, regions, lengths, gamma1, gamma2, check)  # (captions, images)
    return _matching_loss(gamma3 * r.T, class_ids)  # rows: images, as the official code


def damsm_sentence_loss(sentence, global_, class_ids=None, gamma3=GAMMA3):
    """Sentence-level DAMSM loss (Eq. 14): (loss_s0, loss_s1), rows images then captions.

    sentence (B, D), global_ (B, D); R = cos(global_i, sentence_j).
    """
    check_tensor(sentence, "sentence", ("B", "D"))
    check_tensor(global_, "global_", tuple(sentence.shape), why="the shape of sentence")
    dots = global_ @ sentence.T  # (images, captions)
    norms = global_.norm(dim=1)[:, None] * sentence.norm(dim=1)[None, :]
    return _matching_loss(gamma3 * dots / norms.clamp_min(EPS), class_ids)


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
    check: bool = True,
) -> dict:
    """Both levels, both directions (Eq. 15): ``{"word", "sentence", "total"}``.

    word = loss_w0 + loss_w1, sentence = loss_s0 + loss_s1, total = word + sentence.
    ``check=False``: no host sync (see :func:`word_level_similarity`), for a training step.
    """
    w0, w1 = damsm_word_loss(words, regions, lengths, class_ids, gamma1, gamma2, gamma3, check)
    s0, s1 = damsm_sentence_loss(sentence, global_, class_ids, gamma3)
    return {"word": w0 + w1, "sentence": s0 + s1, "total": w0 + w1 + s0 + s1}
