r"""Metrics of image-to-image translation across domains (StarGAN v2, Choi et al. 2020).

A multi-domain translator G(x, s) turns a source image x into target domain y with a style
code s (from a random z through the mapping network: *latent-guided*; or from a reference
image through the style encoder: *reference-guided*). Four questions, four numbers:

**Diversity** (StarGAN v2's "LPIPS"): do different styles give different outputs for one
input? For each source image, K outputs (the official evaluation: K = 10, each with its own
z or reference) and the mean perceptual distance over their K (K - 1) / 2 pairs; then the
mean over source images:

.. math::
    \mathrm{div} = \frac{1}{N} \sum_{n=1}^{N} \frac{2}{K (K - 1)} \sum_{i < j}
                   d\big(G(x_n, s_i), G(x_n, s_j)\big).

The paper averages this over every (source domain, target domain) task, source != target
(``metrics/eval.py``; its d is LPIPS-AlexNet; the course's d is
:class:`~ganlab.metrics.perceptual.PerceptualDistance` on the face judge). A translator that
ignores the style scores 0.

**Domain accuracy**: does the output belong to the target domain? The fraction of outputs
that the judge classifies as their target (chance: 1 / number of domains), and the
confusion matrix of targets against judged domains. (StarGAN v1 reported a classifier's
accuracy; StarGAN v2 relies on FID to the target domain; the course reports both.)

**Factor preservation**: does the output keep what the translation should keep, a source
face's pose for example? With the judge's readings r(x_n) of a continuous factor on each
source and r(G(x_n, s)) on its output,

.. math::
    \rho = \mathrm{corr}\big(r(x), r(G(x, s))\big), \qquad
    \mathrm{MAE} = \frac{1}{N} \sum_n |r(G(x_n, s_n)) - r(x_n)|,

    \mathrm{MAE}_{chance} = \frac{1}{N (N - 1)} \sum_{n \ne m} |r(G(x_m, s_m)) - r(x_n)|,
    \qquad \mathrm{retained} = 1 - \mathrm{MAE} / \mathrm{MAE}_{chance}.

rho is Pearson's correlation over the N translations; MAE_chance is the error that the same
outputs would make if each were paired with another source (the factor carried no
information from its own source); so ``retained`` is 1 when the factor is copied exactly and
about 0 when the output's factor is unrelated to the source's (it can be negative). Sample
sizes: N translations (and, for diversity, K outputs per input).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence

import numpy as np
import torch

from ganlab.metrics.classification import conditional_accuracy
from ganlab.metrics.perceptual import PerceptualDistance
from ganlab.validation import label_array as check_labels
from ganlab.validation import to_numpy64

OUTPUTS_PER_INPUT = 10  # StarGAN v2's num_outs_per_domain


def _as_groups(outputs) -> torch.Tensor:
    """Outputs as (N, K, C, H, W): from that tensor, or a list of K tensors (N, C, H, W)."""
    if isinstance(outputs, torch.Tensor):
        group = outputs
    elif isinstance(outputs, Sequence) and all(isinstance(o, torch.Tensor) for o in outputs):
        shapes = {tuple(o.shape) for o in outputs}
        if len(shapes) != 1:
            raise ValueError(f"the K output batches must have one shape, got {sorted(shapes)}")
        group = torch.stack(list(outputs), dim=1)
    else:
        raise TypeError(
            "outputs must be a tensor (N inputs, K outputs, C, H, W) or a list of K tensors "
            f"(N, C, H, W) (StarGAN v2's group_of_images), got {type(outputs).__name__}"
        )
    if group.ndim != 5 or group.shape[1] < 2 or group.shape[0] < 1:
        raise ValueError(
            "outputs must be (N >= 1 inputs, K >= 2 outputs per input, C, H, W), got shape "
            f"{tuple(group.shape)}"
        )
    return group


@torch.no_grad()
def diversity_per_input(
    outputs, distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
) -> np.ndarray:
    """The mean of d over the K (K - 1) / 2 pairs of each input's outputs: (N,) float64.

    ``outputs``: (N, K, C, H, W), or a list of K tensors (N, C, H, W) where entry k holds
    the k-th output of every input. ``distance(x, y) -> (N,)``; a
    :class:`PerceptualDistance` computes each output's features once instead of K - 1 times.
    """
    group = _as_groups(outputs)
    n, k = group.shape[:2]
    pairs = list(itertools.combinations(range(k), 2))
    total = torch.zeros(n, dtype=torch.float64)
    if isinstance(distance, PerceptualDistance):
        feats = [distance.normalized_features(group[:, i]) for i in range(k)]
        for i, j in pairs:
            total += distance.from_features(feats[i], feats[j]).double().cpu()
    else:
        for i, j in pairs:
            d = distance(group[:, i], group[:, j])
            if d.shape != (n,):
                raise ValueError(f"distance(x, y) must return (N,) = ({n},), got {tuple(d.shape)}")
            total += d.double().cpu()
    return (total / len(pairs)).numpy()


def perceptual_diversity(outputs, distance) -> float:
    """StarGAN v2's diversity: the mean over inputs of :func:`diversity_per_input`.

    Sample size: N inputs x K outputs (K (K - 1) / 2 pairs per input; the paper's K = 10).
    """
    return float(diversity_per_input(outputs, distance).mean())


def domain_accuracy(judge_logits_or_preds, target_domains) -> float:
    """Fraction of outputs judged to be in their target domain (chance 1 / num_domains).

    ``judge_logits_or_preds``: the judge's domain logits (N, D) or predicted domains (N,);
    ``target_domains``: (N,) the domain each output was translated to. Sample size: N.
    """
    return conditional_accuracy(judge_logits_or_preds, target_domains)


def domain_confusion(judge_logits_or_preds, target_domains, num_domains: int) -> np.ndarray:
    """Counts (D, D): row = target domain, column = judged domain.

    The diagonal over the row sums is each target domain's accuracy; an off-diagonal
    column says which domain the failures look like (often the source's).
    """
    x = judge_logits_or_preds
    ndim = x.ndim if hasattr(x, "ndim") else np.ndim(x)
    if ndim == 2:
        scores = to_numpy64(x, "judge logits")
        if scores.shape[1] != num_domains:
            raise ValueError(
                f"judge logits must have one column per domain ({num_domains}), got "
                f"{scores.shape[1]}"
            )
        preds = scores.argmax(1)
    else:
        preds = check_labels(x, len(x), "judged domains", num_domains)
    targets = check_labels(target_domains, len(preds), "target_domains", num_domains)
    confusion = np.zeros((num_domains, num_domains), dtype=np.int64)
    np.add.at(confusion, (targets, preds), 1)
    return confusion


def _sum_abs_differences(a: np.ndarray, b: np.ndarray) -> float:
    """sum over all i, j of |a_i - b_j| in O(n log n): sorted b and its prefix sums."""
    b = np.sort(b)
    prefix = np.concatenate([[0.0], np.cumsum(b)])
    k = np.searchsorted(b, a)  # number of b_j below each a_i
    below = a * k - prefix[k]  # sum of (a_i - b_j) over b_j < a_i
    above = (prefix[-1] - prefix[k]) - a * (len(b) - k)  # sum of (b_j - a_i) over the rest
    return float((below + above).sum())


def factor_preservation(
    source_readings, output_readings, names: Sequence[str] | None = None
) -> dict[str, dict[str, float]]:
    """How much of each continuous factor of the sources survives the translation.

    Args:
        source_readings: (N,) or (N, F) the judge's reading of F factors (e.g. yaw, pitch,
            roll in degrees) on the source images.
        output_readings: the same readings on the outputs, row n translated from source n.
        names: F factor names (default ``factor_0``, ...; ``factor`` for a single one).

    Returns ``{name: {"correlation", "mae", "mae_chance", "retained", "n"}}`` as defined in
    the module docstring. ``correlation`` is NaN when either reading is constant (no spread
    to correlate). Sample size: N >= 2 translations.
    """
    s = to_numpy64(source_readings, "source_readings")
    o = to_numpy64(output_readings, "output_readings")
    if s.shape != o.shape or s.ndim not in (1, 2) or s.shape[0] < 2:
        raise ValueError(
            "source_readings and output_readings must have one shape, (N,) or (N, F) with "
            f"N >= 2 (row n of the outputs translated from source n), got {s.shape} and {o.shape}"
        )
    if not (np.isfinite(s).all() and np.isfinite(o).all()):
        raise ValueError("readings contain NaN or inf values")
    single = s.ndim == 1
    s, o = s.reshape(len(s), -1), o.reshape(len(o), -1)
    n, f = s.shape
    if names is None:
        names = ["factor"] if single else [f"factor_{i}" for i in range(f)]
    if len(names) != f:
        raise ValueError(f"{len(names)} names for {f} factors")
    out = {}
    for i, name in enumerate(names):
        src, dst = s[:, i], o[:, i]
        mae = float(np.abs(dst - src).mean())
        off_diagonal = _sum_abs_differences(dst, src) - mae * n  # leave out m == n
        chance = float(off_diagonal / (n * (n - 1)))
        if src.std() == 0 or dst.std() == 0:
            corr = float("nan")
        else:
            corr = float(np.corrcoef(src, dst)[0, 1])
        out[name] = {
            "correlation": corr,
            "mae": mae,
            "mae_chance": chance,
            "retained": 1.0 - mae / chance if chance > 0 else float("nan"),
            "n": n,
        }
    return out
