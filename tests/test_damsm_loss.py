"""The DAMSM loss against loops written straight from the paper's equations, padding invariance,
the official code's loss directions and class masking, and a batch of 100 on CPU."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from ganlab.text.damsm import (
    damsm_loss,
    damsm_sentence_loss,
    damsm_word_loss,
    word_level_similarity,
    word_region_attention,
)


@pytest.fixture(autouse=True)
def _one_thread(_torch_threads):
    torch.set_num_threads(1)


def _slow_attention(e, v, gamma1):
    """One caption e (D, T) (real words only) and regions v (D, N): alpha (T, N) by Eq. 7-9."""
    T, N = e.shape[1], v.shape[1]
    s = [[sum(e[d, i].item() * v[d, j].item() for d in range(e.shape[0])) for j in range(N)]
         for i in range(T)]  # fmt: skip
    # Eq. 8: for each region j, normalise over the words i
    s_bar = [[math.exp(s[i][j]) / sum(math.exp(s[k][j]) for k in range(T)) for j in range(N)]
             for i in range(T)]  # fmt: skip
    # Eq. 9: for each word i, softmax over the regions of gamma1 * s_bar
    return [[math.exp(gamma1 * s_bar[i][j]) / sum(math.exp(gamma1 * x) for x in s_bar[i])
             for j in range(N)] for i in range(T)]  # fmt: skip


def _slow_relevance(e, v, gamma1, gamma2):
    """R(Q, D) = log sum_i exp(gamma2 cos(c_i, e_i)), c_i = sum_j alpha_ij v_j (Eq. 10, code)."""
    alpha = _slow_attention(e, v, gamma1)
    total = 0.0
    for i in range(e.shape[1]):
        c = [sum(alpha[i][j] * v[d, j].item() for j in range(v.shape[1])) for d in range(len(v))]
        dot = sum(c[d] * e[d, i].item() for d in range(len(v)))
        cos = dot / (math.sqrt(sum(x * x for x in c)) * e[:, i].norm().item())
        total += math.exp(gamma2 * cos)
    return math.log(total)


def _batch(seed, b=3, bi=4, d=6, t=5, h=2, w=3):
    gen = torch.Generator().manual_seed(seed)
    words = torch.randn(b, d, t, generator=gen) * 0.5
    regions = torch.randn(bi, d, h, w, generator=gen) * 0.5
    return words, regions


def test_word_similarity_matches_the_equations():
    words, regions = _batch(0)
    lengths = torch.tensor([5, 2, 3])
    for gamma1, gamma2 in ((4.0, 5.0), (1.0, 2.0)):
        got = word_level_similarity(words, regions, lengths, gamma1, gamma2)
        assert got.shape == (3, 4)
        for a in range(3):
            for b in range(4):
                e, v = words[a, :, : lengths[a]], regions[b].flatten(1)
                want = _slow_relevance(e, v, gamma1, gamma2)
                assert got[a, b].item() == pytest.approx(want, rel=1e-5)


def test_attention_matches_the_equations_and_zeroes_padding():
    words, regions = _batch(1)
    lengths = torch.tensor([4, 5, 1])
    context, attn = word_region_attention(words, regions, lengths, gamma1=4.0)
    assert context.shape == (3, 4, 6, 5) and attn.shape == (3, 4, 5, 6)
    for a in range(3):
        n = int(lengths[a])
        for b in range(4):
            v = regions[b].flatten(1)
            want = torch.tensor(_slow_attention(words[a, :, :n], v, 4.0), dtype=torch.float32)
            assert torch.allclose(attn[a, b, :n], want, atol=1e-6)
            assert torch.allclose(context[a, b, :, :n], v @ want.T, atol=1e-6)
            assert (attn[a, b, n:] == 0).all() and (context[a, b, :, n:] == 0).all()
    assert torch.allclose(attn[0, :, :4].sum(-1), torch.ones(4, 4))  # each word sums to 1


def test_padding_never_counts():
    words, regions = _batch(2)
    lengths = torch.tensor([5, 2, 3])
    got = word_level_similarity(words, regions, lengths)
    garbage = words.clone()
    garbage[1, :, 2:] = 100.0  # huge values in caption 1's padding
    garbage[2, :, 3:] = -torch.randn(6, 2) * 50
    assert torch.allclose(word_level_similarity(garbage, regions, lengths), got)
    # and no gradient reaches the padding
    garbage.requires_grad_()
    word_level_similarity(garbage, regions, lengths).sum().backward()
    assert (garbage.grad[1, :, 2:] == 0).all() and (garbage.grad[2, :, 3:] == 0).all()
    assert garbage.grad[1, :, :2].abs().sum() > 0
    # a shorter T (padding trimmed) gives the same numbers
    assert torch.allclose(word_level_similarity(words[:, :, :5], regions, lengths), got)
    trimmed = word_level_similarity(words[1:2, :, :2], regions, lengths[1:2])
    assert torch.allclose(trimmed, got[1:2], atol=1e-6)


def _official_ce(scores, labels):
    """-mean_i log softmax(scores_i)[labels_i], written out."""
    return -(scores.gather(1, labels[:, None]).squeeze(1) - scores.logsumexp(1)).mean()


def test_word_loss_directions_follow_the_official_code():
    gen = torch.Generator().manual_seed(3)
    words, regions = torch.randn(4, 8, 6, generator=gen), torch.randn(4, 8, 3, 3, generator=gen)
    lengths = torch.tensor([6, 4, 5, 3])
    r = word_level_similarity(words, regions, lengths)  # (captions, images)
    labels = torch.arange(4)
    w0, w1 = damsm_word_loss(words, regions, lengths)
    # loss_w0: rows are images (Eq. 11, P(D_i | Q_i)); loss_w1: rows are captions
    assert w0.item() == pytest.approx(_official_ce(10.0 * r.T, labels).item(), rel=1e-5)
    assert w1.item() == pytest.approx(_official_ce(10.0 * r, labels).item(), rel=1e-5)
    assert abs(w0.item() - w1.item()) > 1e-3  # the two directions really differ here
    g0, _ = damsm_word_loss(words, regions, lengths, gamma3=2.0)
    assert g0.item() == pytest.approx(_official_ce(2.0 * r.T, labels).item(), rel=1e-5)


def test_same_class_pairs_are_not_negatives():
    gen = torch.Generator().manual_seed(4)
    words, regions = torch.randn(4, 8, 6, generator=gen), torch.randn(4, 8, 3, 3, generator=gen)
    lengths = torch.tensor([6, 4, 5, 3])
    scores = 10.0 * word_level_similarity(words, regions, lengths).T  # (images, captions)
    masked = scores.clone()
    masked[0, 2] = masked[2, 0] = float("-inf")  # samples 0 and 2 share class 7
    labels = torch.arange(4)
    m0, m1 = damsm_word_loss(words, regions, lengths, class_ids=torch.tensor([7, 1, 7, 2]))
    assert m0.item() == pytest.approx(_official_ce(masked, labels).item(), rel=1e-5)
    assert m1.item() == pytest.approx(_official_ce(masked.T, labels).item(), rel=1e-5)
    # all classes distinct: nothing masked
    d0, _ = damsm_word_loss(words, regions, lengths, class_ids=torch.tensor([0, 1, 2, 3]))
    assert d0.item() == pytest.approx(_official_ce(scores, labels).item(), rel=1e-5)


def test_sentence_loss_is_the_cosine_softmax_both_ways():
    gen = torch.Generator().manual_seed(5)
    sentence, global_ = torch.randn(5, 7, generator=gen), torch.randn(5, 7, generator=gen)
    cos = torch.tensor(
        [
            [F.cosine_similarity(global_[i], sentence[j], dim=0).item() for j in range(5)]
            for i in range(5)
        ]  # fmt: skip
    )  # (images, captions)
    labels = torch.arange(5)
    s0, s1 = damsm_sentence_loss(sentence, global_)
    assert s0.item() == pytest.approx(_official_ce(10 * cos, labels).item(), rel=1e-5)
    assert s1.item() == pytest.approx(_official_ce(10 * cos.T, labels).item(), rel=1e-5)


def test_total_is_the_sum_of_four_terms():
    gen = torch.Generator().manual_seed(6)
    words, regions = torch.randn(4, 8, 6, generator=gen), torch.randn(4, 8, 3, 3, generator=gen)
    sentence, global_ = torch.randn(4, 8, generator=gen), torch.randn(4, 8, generator=gen)
    lengths = torch.tensor([6, 4, 5, 3])
    out = damsm_loss(words, sentence, regions, global_, lengths)
    w0, w1 = damsm_word_loss(words, regions, lengths)
    s0, s1 = damsm_sentence_loss(sentence, global_)
    assert out["word"].item() == pytest.approx((w0 + w1).item())
    assert out["sentence"].item() == pytest.approx((s0 + s1).item())
    assert out["total"].item() == pytest.approx((w0 + w1 + s0 + s1).item())


def test_batch_of_100_runs_and_backpropagates():
    gen = torch.Generator().manual_seed(7)
    words = torch.randn(100, 16, 12, generator=gen).requires_grad_()
    regions = torch.randn(100, 16, 5, 5, generator=gen).requires_grad_()
    lengths = torch.randint(1, 13, (100,), generator=gen)
    out = damsm_loss(words, torch.randn(100, 16), regions, torch.randn(100, 16), lengths)
    out["total"].backward()
    assert torch.isfinite(out["total"]) and torch.isfinite(words.grad).all()
    assert torch.isfinite(regions.grad).all()


@pytest.mark.parametrize(
    "lengths, error",
    [
        (torch.tensor([5, 0, 3]), ValueError),  # an empty caption
        (torch.tensor([5, 6, 3]), ValueError),  # longer than T
        (torch.tensor([5, 2]), ValueError),  # one length missing
        (torch.tensor([5.0, 2.0, 3.0]), TypeError),  # float lengths
    ],
)
def test_bad_lengths_are_refused(lengths, error):
    words, regions = _batch(8)
    with pytest.raises(error, match="lengths"):
        word_level_similarity(words, regions, lengths)


def test_mismatched_widths_are_refused():
    words, regions = _batch(9)
    with pytest.raises(ValueError, match="share D"):
        word_level_similarity(words, regions[:, :5], torch.tensor([5, 2, 3]))


def test_check_false_skips_only_the_range_check():
    """A training step passes ``check=False``: the same loss, no host sync on the lengths'
    values, and the shape/dtype errors still raised."""
    words, regions = _batch(10)
    lengths = torch.tensor([5, 2, 3])
    sentence, global_ = words.mean(2), regions.mean((2, 3))
    regions4 = regions[:3]
    want = damsm_loss(words, sentence, regions4, global_[:3], lengths)
    got = damsm_loss(words, sentence, regions4, global_[:3], lengths, check=False)
    assert all(torch.equal(want[k], got[k]) for k in want)
    too_long = torch.tensor([5, 6, 3])
    with pytest.raises(ValueError, match="lengths"):
        word_level_similarity(words, regions, too_long)
    word_level_similarity(words, regions, too_long, check=False)  # not read: no sync
    with pytest.raises(ValueError, match="lengths"):
        word_level_similarity(words, regions, torch.tensor([5, 2]), check=False)  # shapes are
