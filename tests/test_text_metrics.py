"""Retrieval and alignment metrics against direct computations."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ganlab.metrics.alignment import text_alignment
from ganlab.metrics.retrieval import r_precision, recall_at_k


def test_recall_at_k_matches_a_direct_ranking():
    gen = torch.Generator().manual_seed(0)
    sim = torch.randn(40, 60, generator=gen)
    rel = torch.rand(40, 60, generator=gen) < 0.05
    rel[:, 0] |= ~rel.any(1)
    got = recall_at_k(sim, rel, ks=(1, 5, 10))
    for k in (1, 5, 10):
        top = sim.topk(k, dim=1).indices
        want = np.mean([bool(rel[q, top[q]].any()) for q in range(40)])
        assert got[k] == pytest.approx(want)


def test_r_precision_perfect_random_and_chance():
    gen = torch.Generator().manual_seed(1)
    a = torch.randn(300, 16, generator=gen)
    assert r_precision(a, a)[0] == 1.0
    rand = [r_precision(a, torch.randn(300, 16, generator=gen), seed=s)[0] for s in range(5)]
    assert 0.0 <= np.mean(rand) < 0.04  # chance is 1/100
    with pytest.raises(ValueError, match="at least 100 pairs"):
        r_precision(a[:50], a[:50])


def test_r_precision_equals_a_loop_over_candidates():
    gen = torch.Generator().manual_seed(2)
    img, txt = torch.randn(120, 8, generator=gen), torch.randn(120, 8, generator=gen)
    txt = txt + 1.5 * img  # partly aligned
    got, _ = r_precision(img, txt, candidates=100, seed=3)
    rng = np.random.default_rng(3)
    others = np.stack([rng.choice(119, 99, replace=False) for _ in range(120)])
    others = others + (others >= np.arange(120)[:, None])
    cos = torch.nn.functional.cosine_similarity
    hits = [
        all(cos(img[i], txt[i], 0) > cos(img[i], txt[j], 0) for j in others[i]) for i in range(120)
    ]
    assert got == pytest.approx(np.mean(hits))


def test_text_alignment_counts_only_named_attributes():
    groups = ("a", "b", "c")
    pred = torch.tensor([[0, 1, 2], [1, 1, 0]])
    named = torch.tensor([[0, -1, 1], [-1, 1, -1]])
    out = text_alignment(pred, named, groups, (2, 2, 4))
    assert out["value"] == pytest.approx(2 / 3) and out["n"] == 3
    assert out["per_group"] == {"a": (1.0, 1), "b": (1.0, 1), "c": (0.0, 1)}
    assert out["chance"] == pytest.approx((0.5 + 0.5 + 0.25) / 3)
    with pytest.raises(ValueError, match="no caption names"):
        text_alignment(pred, -torch.ones_like(named), groups)
    with pytest.raises(TypeError, match="integer"):
        text_alignment(pred.float(), named, groups)
