"""Metrics of generated images: one validated implementation of each, used by every chapter.

=============================  ====================================  ======================
function                       what it measures                      module
=============================  ====================================  ======================
``frechet_distance``           Gaussian W2 between feature sets      ``frechet``
``frechet_distance_terms``     its mean part and covariance part     ``frechet``
``kernel_inception_distance``  unbiased MMD^2, cubic kernel (KID)    ``frechet``
``parzen_log_likelihood``      Parzen-window log p(test) (CGAN)      ``parzen``
``select_parzen_sigma``        sigma by grid search on validation    ``parzen``
``conditional_accuracy``       judge(G(z|y)) == y                    ``classification``
``inception_score``            exp E KL(p(y|x) || p(y)), judge's p   ``classification``
``mean_pairwise_distance``     diversity: mean L2 over pairs         ``diversity``
``mean_iou``                   SPADE: segmenter's map vs input map   ``segmentation``
``pixel_accuracy``             SPADE: fraction of pixels right       ``segmentation``
=============================  ====================================  ======================

Inputs are torch tensors or numpy arrays; everything is computed in float64 and returned as
Python floats (or ``(mean, spread)`` tuples). Each docstring states the sample sizes behind
the number; :class:`MetricResult` carries them into reports (``describe()``, ``as_dict()``
with keys ``value`` and ``n``). Wrong shapes, dtypes or scales raise ``ValueError`` (or
:class:`DtypeError`, which is both a ``TypeError`` and a ``ValueError``) naming what was
expected (the checks live in :mod:`ganlab.validation`). A Frechet distance from fewer
samples than features warns (:class:`ganlab.errors.GanLabWarning`). The feature network is
an argument of the caller: a course judge's ``.features(x)`` by default, Inception-v3 pool3
features when they are available locally.
"""

from ganlab.errors import DtypeError
from ganlab.metrics.classification import conditional_accuracy, inception_score, softmax
from ganlab.metrics.diversity import mean_pairwise_distance
from ganlab.metrics.frechet import (
    feature_moments,
    frechet_distance,
    frechet_distance_from_moments,
    frechet_distance_terms,
    kernel_inception_distance,
)
from ganlab.metrics.parzen import (
    parzen_log_densities,
    parzen_log_likelihood,
    select_parzen_sigma,
)
from ganlab.metrics.perceptual import PerceptualDistance, calibrate_perceptual_distance
from ganlab.metrics.ppl import path_length_samples, perceptual_path_length
from ganlab.metrics.result import MetricResult
from ganlab.metrics.segmentation import (
    confusion_matrix,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
    segmentation_scores,
)
from ganlab.metrics.swd import sliced_wasserstein_distance
from ganlab.metrics.translation import (
    domain_accuracy,
    domain_confusion,
    factor_preservation,
    perceptual_diversity,
)

__all__ = [
    "DtypeError",
    "MetricResult",
    "PerceptualDistance",
    "calibrate_perceptual_distance",
    "conditional_accuracy",
    "confusion_matrix",
    "domain_accuracy",
    "domain_confusion",
    "factor_preservation",
    "feature_moments",
    "frechet_distance",
    "frechet_distance_from_moments",
    "frechet_distance_terms",
    "inception_score",
    "iou_per_class",
    "kernel_inception_distance",
    "mean_iou",
    "mean_pairwise_distance",
    "parzen_log_densities",
    "parzen_log_likelihood",
    "path_length_samples",
    "perceptual_diversity",
    "perceptual_path_length",
    "pixel_accuracy",
    "segmentation_scores",
    "select_parzen_sigma",
    "sliced_wasserstein_distance",
    "softmax",
]
