r"""Metrics read off a classifier (a judge): conditional accuracy and the Inception Score form.

Conditional accuracy (CGAN, StarGAN v2's domain accuracy): the fraction of generated images
G(z | y) that the judge classifies as the requested y,

    acc = (1/n) sum_i [argmax_c p(c | x_i) = y_i],      chance = 1 / num_classes.

Inception Score (Salimans et al. 2016), here with the judge's p(y | x) in place of
Inception-v3's:

    IS = exp( E_x KL( p(y | x) || p(y) ) ),   p(y) = E_x p(y | x),

computed on each of ``splits`` disjoint chunks of the samples; the mean and standard
deviation over chunks are reported (as in the original code, which used 10 splits). The
original code splits in the given order, which is only right for samples in random order:
on class-sorted samples (a CGAN's outputs grouped by label, or the held-out digits, which
are stored class by class) every chunk holds one class, p(y) equals p(y | x), and IS
collapses to about 1. So the rows are shuffled first (``seed``; ``seed=None`` keeps the
order, like the original). IS lies
in [1, C]: high when every sample is confidently one class AND all classes appear. It never
looks at real images, so it cannot see that samples are unrealistic in ways the judge ignores.
"""

from __future__ import annotations

import numpy as np
import torch

from ganlab.validation import label_array, to_numpy64


def conditional_accuracy(judge_logits_or_preds, labels) -> float:
    """Fraction of samples whose judged class equals ``labels``.

    ``judge_logits_or_preds``: logits or probabilities ``(n, C)`` (argmax is taken) or
    predicted classes ``(n,)``. ``labels``: the requested classes ``(n,)``. Sample size: n.
    """
    x = judge_logits_or_preds
    ndim = x.ndim if hasattr(x, "ndim") else np.ndim(x)
    if ndim == 2:
        scores = to_numpy64(x, "judge_logits_or_preds")
        if not np.isfinite(scores).all():
            raise ValueError("judge logits contain NaN or inf values")
        preds, num_classes = scores.argmax(1), scores.shape[1]
    elif ndim == 1:
        preds, num_classes = label_array(x, len(x), "predicted classes"), None
    else:
        raise ValueError(
            "judge_logits_or_preds must be logits (n, C) or predicted classes (n,), got "
            f"shape {tuple(np.shape(x))}"
        )
    if len(preds) == 0:
        raise ValueError("conditional_accuracy needs at least one sample, got 0")
    labels = label_array(labels, len(preds), "labels", num_classes)
    return float((preds == labels).mean())


def inception_score(probs, splits: int = 10, seed: int | None = 0) -> tuple[float, float]:
    """``(mean, std)`` of exp(E KL(p(y|x) || p(y))) over ``splits`` chunks of ``probs``.

    ``probs``: class probabilities ``(n, C)``, rows summing to 1 (``softmax`` of the judge's
    logits). Sample size: n, split into ``splits`` chunks of about n / splits, after a
    shuffle of the rows with ``seed`` (``None``: no shuffle).
    """
    p = to_numpy64(probs, "probs")
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"probs must have shape (n, C) with C >= 2, got {p.shape}")
    if not isinstance(splits, int | np.integer) or not 1 <= splits <= p.shape[0]:
        raise ValueError(f"splits must be an integer in 1..n={p.shape[0]}, got {splits!r}")
    if not np.isfinite(p).all() or p.min() < 0 or np.abs(p.sum(1) - 1).max() > 1e-3:
        raise ValueError(
            "probs must be probabilities (non-negative rows summing to 1); pass "
            "torch.softmax(logits, dim=1), not logits"
        )
    if seed is not None:
        p = p[np.random.default_rng(seed).permutation(len(p))]
    scores = []
    for chunk in np.array_split(p, splits):
        marginal = chunk.mean(0, keepdims=True)  # p(y) on this chunk
        # KL(p(y|x) || p(y)) = sum_y p log p - p log p(y); 0 log 0 = 0.
        with np.errstate(divide="ignore", invalid="ignore"):
            terms = np.where(chunk > 0, chunk * (np.log(chunk) - np.log(marginal)), 0.0)
        scores.append(np.exp(terms.sum(1).mean()))
    return float(np.mean(scores)), float(np.std(scores))


def softmax(logits) -> torch.Tensor:
    """Row-wise softmax of ``(n, C)`` logits, as float64 (for :func:`inception_score`)."""
    return torch.softmax(torch.as_tensor(to_numpy64(logits, "logits")), dim=1)
