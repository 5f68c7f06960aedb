"""The birds vocabulary and tokenizer: ids, padding, unknown words, truncation, bad input."""

from __future__ import annotations

import pytest
import torch

from ganlab.data.birds import BirdsWorld
from ganlab.text.vocab import Vocabulary, birds_vocabulary


def test_vocabulary_covers_every_caption_of_the_world():
    vocab = birds_vocabulary()
    caps = [c for i in range(300) for c in BirdsWorld("zeroshot").bird(i).captions]
    ids, lengths = vocab.encode(caps)
    assert (ids != vocab.unk_id).all()
    assert vocab.decode(ids[:3], lengths[:3]) == [
        " ".join(c.lower().replace("-", " ").replace(",", "").split()) for c in caps[:3]
    ]


def test_padding_unknown_words_and_truncation():
    vocab = birds_vocabulary()
    ids, lengths = vocab.encode(["a red zorblat bird", "bird " * 30])
    assert ids.shape == (2, 18) and ids.dtype == torch.int64
    assert lengths.tolist() == [4, 18]
    assert ids[0, 2] == vocab.unk_id and (ids[0, 4:] == vocab.pad_id).all()
    assert (ids[1] == vocab.stoi["bird"]).all()  # kept the first 18 words
    assert vocab.itos[:2] == ["<pad>", "<unk>"]


@pytest.mark.parametrize(
    "bad, error, match",
    [
        ([""], ValueError, "caption 0 has no words"),
        (["a bird", "  ,, "], ValueError, "caption 1 has no words"),
        ([3], TypeError, "caption 0 is a int"),
        (None, TypeError, "expected a caption"),
        ([], TypeError, "non-empty list"),
    ],
)
def test_bad_captions_get_clear_errors(bad, error, match):
    with pytest.raises(error, match=match):
        birds_vocabulary().encode(bad)


def test_vocabulary_is_sorted_and_stable():
    v = Vocabulary(["b", "a", "a"])
    assert v.itos == ["<pad>", "<unk>", "a", "b"] and len(v) == 4
