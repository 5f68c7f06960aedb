"""Vocabulary and tokenizer: captions -> padded word ids and lengths.

``<pad>`` is id 0 (so ``ids == 0`` is the padding mask) and ``<unk>`` id 1. Behaviour on
awkward input is defined, never silent:

* unknown words become ``<unk>``;
* captions longer than ``max_len`` words (18, AttnGAN's ``WORDS_NUM``) keep their first
  ``max_len`` words;
* an empty caption (no word at all) or a non-string raises an error naming the caption.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import lru_cache

import torch

from ganlab.data.birds import captions as grammar
from ganlab.data.birds.captions import MAX_WORDS, tokenize

PAD, UNK = "<pad>", "<unk>"


class Vocabulary:
    """Word <-> id; ``encode(captions)`` -> (ids (B, max_len) int64, lengths (B,) int64)."""

    def __init__(self, words: Iterable[str], max_len: int = MAX_WORDS):
        words = sorted({w for w in words if w not in (PAD, UNK)})
        self.itos = [PAD, UNK, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.max_len = int(max_len)

    def __len__(self) -> int:
        return len(self.itos)

    @property
    def pad_id(self) -> int:
        return 0

    @property
    def unk_id(self) -> int:
        return 1

    def encode(
        self, captions: str | Sequence[str], max_len: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Captions -> (ids (B, L) int64 padded with 0, lengths (B,) int64 in [1, L])."""
        if isinstance(captions, str):
            captions = [captions]
        if not isinstance(captions, Sequence) or len(captions) == 0:
            raise TypeError(
                "expected a caption (str) or a non-empty list of captions, got "
                f"{type(captions).__name__}"
            )
        L = self.max_len if max_len is None else int(max_len)
        ids = torch.zeros(len(captions), L, dtype=torch.int64)
        lengths = torch.zeros(len(captions), dtype=torch.int64)
        for row, caption in enumerate(captions):
            if not isinstance(caption, str):
                raise TypeError(
                    f"caption {row} is a {type(caption).__name__}, expected str: {caption!r:.60}"
                )
            words = tokenize(caption)
            if not words:
                raise ValueError(
                    f"caption {row} has no words: {caption!r}; expected at least one word"
                )
            words = words[:L]
            ids[row, : len(words)] = torch.tensor([self.stoi.get(w, 1) for w in words])
            lengths[row] = len(words)
        return ids, lengths

    def decode(self, ids: torch.Tensor, lengths: torch.Tensor | None = None) -> list[str]:
        """Word ids -> captions (padding dropped)."""
        out = []
        for row, seq in enumerate(ids.tolist()):
            n = len(seq) if lengths is None else int(lengths[row])
            out.append(" ".join(self.itos[i] for i in seq[:n] if i != 0))
        return out


def _grammar_words() -> set[str]:
    words: set[str] = {"this", "the", "a", "an", "bird", "with", "on", "and", "is", "it", "has"}
    tables = [
        grammar.COLOR_WORDS,
        grammar.PATTERN_WORDS,
        grammar.SHAPE_WORDS,
        grammar.LENGTH_WORDS,
        grammar.SIZE_WORDS,
        grammar.POSE_PHRASES,
        grammar.ORIENTATION_PHRASES,
        grammar.BACKGROUND_PHRASES,
    ]
    for table in tables:
        for phrases in table.values():
            for phrase in phrases:
                words.update(tokenize(phrase))
    for nouns, _ in grammar.PART_NOUNS.values():
        for noun in nouns:
            words.update(tokenize(noun))
    for phrase in (
        *grammar.PART_ADJECTIVE.values(),
        *grammar.BEAK_NOUNS,
        *grammar.EYE_NOUNS,
        *grammar.SUBJECTS,
        *grammar.HAS_VERBS,
    ):
        words.update(tokenize(phrase))
    return words


@lru_cache(maxsize=1)
def birds_vocabulary() -> Vocabulary:
    """Every word the birds world's captions can use (built from the caption grammar)."""
    return Vocabulary(_grammar_words())
