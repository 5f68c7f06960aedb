"""Building blocks shared across papers; each lives here once.

What belongs in ``ganlab.nn`` (the rule):

* a layer, block or loss term that two or more papers' models use (PixelNorm: PGGAN and
  StyleGAN; AdaIN: StyleGAN and StarGAN v2; R1: StyleGAN and StarGAN v2), or
* a paper's NAMED building block that later chapters reuse or compare against (StackGAN's
  Conditioning Augmentation, reused by AttnGAN; PGGAN's minibatch standard deviation, reused
  by StyleGAN's D);
* each with its formula, its shapes and the official values in its docstring, and a test
  against a hand computation in ``tests/test_nn_*.py`` (or the module's own test file).

What does not: a chapter's wiring (which blocks, in which order, at which widths) stays in
``ganlab/models/<paper>.py``; training steps and schedules stay in the chapter and the loop.
Modules here import only torch and each other, never ``ganlab.models``, ``ganlab.chapters``
or anything above them. Penalties live here too (``ganlab.nn.penalties``), as losses live in
``torch.nn``: they are functions of a discriminator shared by several papers.
"""

from ganlab.nn.attention import WordAttention, padding_mask, word_attention
from ganlab.nn.blur import Blur, blur_kernel
from ganlab.nn.bottleneck import BottleneckResidual
from ganlab.nn.conditioning import ConditioningAugmentation, kl_divergence
from ganlab.nn.equalized import HE_GAIN, EqualizedConv2d, EqualizedLinear
from ganlab.nn.glu import GLU, glu
from ganlab.nn.maxout import Maxout
from ganlab.nn.minibatch_std import MinibatchStdDev, minibatch_stddev
from ganlab.nn.mode_seeking import mode_seeking_loss
from ganlab.nn.noise import NoiseInjection
from ganlab.nn.normalization import AdaIN, PixelNorm, instance_norm, pixel_norm
from ganlab.nn.penalties import (
    check_lazy_r1,
    check_r1_gamma,
    drift_penalty,
    input_gradients,
    lazy_r1_config,
    lazy_regularisation_adam,
    r1_penalty,
    wgan_gp_penalty,
)
from ganlab.nn.spectral import apply_spectral_norm, has_spectral_norm, remove_spectral_norm

__all__ = [
    "GLU",
    "HE_GAIN",
    "AdaIN",
    "Blur",
    "BottleneckResidual",
    "ConditioningAugmentation",
    "EqualizedConv2d",
    "EqualizedLinear",
    "Maxout",
    "MinibatchStdDev",
    "NoiseInjection",
    "PixelNorm",
    "WordAttention",
    "apply_spectral_norm",
    "blur_kernel",
    "check_lazy_r1",
    "check_r1_gamma",
    "drift_penalty",
    "glu",
    "has_spectral_norm",
    "input_gradients",
    "instance_norm",
    "kl_divergence",
    "lazy_r1_config",
    "lazy_regularisation_adam",
    "minibatch_stddev",
    "mode_seeking_loss",
    "padding_mask",
    "pixel_norm",
    "r1_penalty",
    "remove_spectral_norm",
    "wgan_gp_penalty",
    "word_attention",
]
