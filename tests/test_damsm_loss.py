"""The DAMSM loss against a loop written straight from the paper, and padding invariance."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganlab.text.damsm import damsm_loss, damsm_word_loss, word_level_similarity


def _slow_relevance(e, v, gamma1, gamma2):
    """One caption e (D, T) and one image's regions v (D, R): R(Q, D) by the equations."""
    s = e.T @ v  # (T, R)
    s = torch.exp(s) / torch.exp(s).sum(0, keepdim=True)  # Eq. 8, over words
    alpha = torch.exp(gamma1 * s) / torch.exp(gamma1 * s).sum(1, keepdim=True)  # Eq. 9
    total = 0.0
    for i in range(e.shape[1]):
        c = (alpha[i][None] * v).sum(1)
        total += math.exp(gamma2 * F.cosine_similarity(c, e[:, i], dim=0).item())
    return math.log(total)


def test_word_similarity_matches_the_equations_and_ignores_padding():
    gen = torch.Generator().manual_seed(0)
    words = torch.randn(3, 6, 5, generator=gen) * 0.5
    regions = torch.randn(4, 6, 2, 3, generator=gen) * 0.5
    lengths = torch.tensor([5, 2, 3])
    got = word_level_similarity(words, regions, lengths, 4.0, 5.0)
    for a in range(3):
        for b in range(4):
            want = _slow_relevance(words[a, :, : lengths[a]], regions[b].flatten(1), 4.0, 5.0)
            assert got[a, b].item() == pytest.approx(want, rel=1e-4)
    garbage = words.clone()
    garbage[1, :, 2:] = 100.0  # padding of caption 1 holds garbage
    assert torch.allclose(word_level_similarity(garbage, regions, lengths, 4.0, 5.0), got)


def test_losses_are_cross_entropies_over_the_batch_and_mask_classes():
    gen = torch.Generator().manual_seed(1)
    words, regions = torch.randn(4, 8, 6, generator=gen), torch.randn(4, 8, 3, 3, generator=gen)
    lengths = torch.tensor([6, 4, 5, 3])
    r = 10.0 * word_level_similarity(words, regions, lengths)
    labels = torch.arange(4)
    w0, w1 = damsm_word_loss(words, regions, lengths)
    assert w0.item() == pytest.approx(F.cross_entropy(r, labels).item(), rel=1e-5)
    assert w1.item() == pytest.approx(F.cross_entropy(r.T, labels).item(), rel=1e-5)
    # pairs of the same class (0 and 2) are not negatives of each other
    m0, _ = damsm_word_loss(words, regions, lengths, class_ids=torch.tensor([7, 1, 7, 2]))
    masked = r.clone()
    masked[0, 2] = masked[2, 0] = float("-inf")
    assert m0.item() == pytest.approx(F.cross_entropy(masked, labels).item(), rel=1e-5)
    out = damsm_loss(words, torch.randn(4, 8), regions, torch.randn(4, 8), lengths)
    assert out["total"].item() == pytest.approx((out["word"] + out["sentence"]).item())
    assert torch.isfinite(out["total"])
