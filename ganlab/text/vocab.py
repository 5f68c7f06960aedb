"""Vocabulary and tokenizer: captions -> padded word ids and lengths.

``<pad>`` is id 0 (so ``ids == 0`` is the padding mask) and ``<unk>`` id 1. Behaviour on
awkward input is defined, never silent:

* unknown words become ``<unk>``; a caption with no known word at all warns
  (:class:`ganlab.errors.GanLabWarning`), naming it: its features say nothing about it, so
  whatever is drawn or ranked for it is the same for any such caption;
* captions longer than ``max_len`` words (18, AttnGAN's ``WORDS_NUM``) keep their first
  ``max_len`` words; ``max_len`` must be at least 1;
* an empty caption (no word at all) or a non-string raises an error naming the caption.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from functools import lru_cache

import torch

from ganlab.data.birds import captions as grammar
from ganlab.data.birds.captions import MAX_WORDS, tokenize
from ganlab.errors import GanLabWarning
from ganlab.validation import check_captions, check_count

PAD, UNK = "<pad>", "<unk>"


class Vocabulary:
    """Word <-> id; ``encode(captions)`` -> (ids (B, max_len) int64, lengths (B,) int64)."""

    def __init__(self, words: Iterable[str], max_len: int = MAX_WORDS):
        words = sorted({w for w in words if w not in (PAD, UNK)})
        self.itos = [PAD, UNK, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}
        self.max_len = check_count(max_len, "max_len (words kept per caption)")

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
        """Captions -> (ids (B, L) int64 padded with 0, lengths (B,) int64 in [1, L]).

        ``max_len`` (default ``self.max_len``) is L, at least 1. Warns about captions whose
        every word is unknown (module docstring)."""
        captions = check_captions(captions)
        L = self.max_len if max_len is None else check_count(max_len, "max_len")
        ids = torch.zeros(len(captions), L, dtype=torch.int64)
        lengths = torch.zeros(len(captions), dtype=torch.int64)
        unknown = []
        for row, caption in enumerate(captions):
            words = tokenize(caption)
            if not words:
                raise ValueError(
                    f"caption {row} has no words: {caption!r}; expected at least one word"
                )
            row_ids = [self.stoi.get(w, self.unk_id) for w in words[:L]]
            if all(i == self.unk_id for i in row_ids):
                unknown.append(f"caption {row} {caption!r:.60}")
            ids[row, : len(row_ids)] = torch.tensor(row_ids)
            lengths[row] = len(row_ids)
        if unknown:
            warnings.warn(
                f"{'; '.join(unknown[:3])}{' ...' if len(unknown) > 3 else ''}: no word the "
                f"vocabulary knows ({len(unknown)} of {len(captions)} captions), every word "
                f"became <unk>, so what is drawn or ranked for it does not depend on its text "
                "(the known words: Vocabulary.itos)",
                GanLabWarning,
                stacklevel=2,
            )
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
