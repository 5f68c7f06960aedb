"""Text and image encoders: shapes, padding, the joint-embedding loss against a loop."""

from __future__ import annotations

import pytest
import torch

from ganlab.text.encoders import (
    DAMSMImageEncoder,
    DAMSMTextEncoder,
    JointImageEncoder,
    JointTextEncoder,
    ds_sje_loss,
)
from ganlab.text.vocab import birds_vocabulary

CAPTIONS = ["a small bird with a red crown", "this bird has blue wings and a long curved bill"]


def _slow_sje(v, t, y, reduce):
    """The DS-SJE loss written per sample and class, straight from the definition."""
    classes = sorted(set(y.tolist()))
    total = 0.0
    for a, b in ((v, t), (t, v)):  # image vs class captions, then caption vs class images
        for n in range(len(y)):
            mean = {
                c: torch.stack([a[n] @ b[m] for m in range(len(y)) if y[m] == c]).mean()
                for c in classes
            }
            terms = [(0.0 if c == int(y[n]) else 1.0) + mean[c] - mean[int(y[n])] for c in classes]
            if reduce == "max":
                total = total + max(terms) / len(y)
            else:
                others = [
                    max(x, 0.0) for c, x in zip(classes, terms, strict=True) if c != int(y[n])
                ]
                total = total + sum(others) / len(others) / len(y)
    return total


@pytest.mark.parametrize("reduce", ["mean", "max"])
def test_ds_sje_loss_matches_the_definition(reduce):
    gen = torch.Generator().manual_seed(0)
    v, t = torch.randn(7, 5, generator=gen), torch.randn(7, 5, generator=gen)
    y = torch.tensor([3, 1, 3, 0, 1, 2, 3])
    got = ds_sje_loss(v, t, y, reduce=reduce)
    assert got.item() == pytest.approx(float(_slow_sje(v, t, y, reduce)), rel=1e-5)
    with pytest.raises(ValueError, match="two classes"):
        ds_sje_loss(v, t, torch.zeros(7, dtype=torch.long))


def test_joint_encoders_shapes_and_padding_invariance():
    vocab = birds_vocabulary()
    ids, lengths = vocab.encode(CAPTIONS)
    text = JointTextEncoder(len(vocab)).eval()
    emb = text(ids, lengths)
    assert emb.shape == (2, 1024)
    longer, _ = vocab.encode(CAPTIONS, max_len=30)  # more padding changes nothing
    assert torch.allclose(text(longer, lengths), emb, atol=1e-5)
    image = JointImageEncoder().eval()
    assert image(torch.rand(3, 3, 32, 32) * 2 - 1).shape == (3, 1024)  # resized to 64 px


def test_damsm_encoders_shapes_and_zero_padding():
    vocab = birds_vocabulary()
    ids, lengths = vocab.encode(CAPTIONS)
    words, sentence = DAMSMTextEncoder(len(vocab)).eval()(ids, lengths)
    assert words.shape == (2, 256, 18) and sentence.shape == (2, 256)
    assert (words[0, :, int(lengths[0]) :] == 0).all() and (
        words[0, :, : int(lengths[0])] != 0
    ).any()
    regions, global_ = DAMSMImageEncoder().eval()(torch.rand(2, 3, 64, 64) * 2 - 1)
    assert regions.shape == (2, 256, 8, 8) and global_.shape == (2, 256)


def test_encoders_reject_bad_tokens_and_images():
    text = JointTextEncoder(10)
    with pytest.raises(TypeError, match="int64"):
        text(torch.zeros(2, 5), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"word ids must lie in 0\.\.9"):
        text(torch.full((2, 5), 11), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="lengths must be in"):
        text(torch.ones(2, 5, dtype=torch.long), torch.tensor([0, 2]))
    with pytest.raises(ValueError, match=r"values in \[-1, 1\]"):
        JointImageEncoder()(torch.rand(1, 3, 64, 64) * 255)
