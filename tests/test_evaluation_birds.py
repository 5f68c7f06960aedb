"""The birds protocol's small pieces against direct computations."""

from __future__ import annotations

import math

import torch

from ganlab.data.birds import GROUPS
from ganlab.evaluation.birds import (
    NUM_VALUES,
    alignment_fold_std,
    caption_alignment,
    reliable_groups,
)


def _direct_alignment(predicted, named) -> float:
    """Agreement on every (caption, reliable group) the caption names, pooled."""
    keep = [g in reliable_groups() for g in GROUPS]
    hits = total = 0
    for p, m in zip(predicted.tolist(), named.tolist()):
        for j, (pv, mv) in enumerate(zip(p, m)):
            if keep[j] and mv >= 0:
                hits += pv == mv
                total += 1
    return hits / total


def test_alignment_fold_std_is_the_std_over_ten_equal_folds():
    gen = torch.Generator().manual_seed(0)
    n = 200
    values = torch.tensor(NUM_VALUES)
    predicted = (torch.rand(n, len(GROUPS), generator=gen) * values).long()
    named = (torch.rand(n, len(GROUPS), generator=gen) * values).long()
    named[torch.rand(n, len(GROUPS), generator=gen) < 0.7] = -1  # captions name a few groups
    folds = [_direct_alignment(predicted[k * 20 : (k + 1) * 20], named[k * 20 : (k + 1) * 20])
             for k in range(10)]  # fmt: skip
    assert caption_alignment(predicted, named)["value"] == _direct_alignment(predicted, named)
    assert math.isclose(alignment_fold_std(predicted, named), float(torch.tensor(folds).std()))
    assert math.isnan(alignment_fold_std(predicted[:9], named[:9]))  # fewer captions than folds
