r"""PGGAN: Karras, Aila, Laine & Lehtinen, *Progressive Growing of GANs for Improved Quality,
Stability, and Variation*, ICLR 2018.

Training a GAN at 1024 px from the start asks D and G to learn the coarse layout and the fine
texture at once, and D tells real from fake by the texture long before G has a face. PGGAN
starts both networks at 4x4 and adds one resolution at a time; every layer stays trainable.
Level :math:`k` works at :math:`4 \cdot 2^k` px (level 0 = 4x4, level 8 = 1024x1024).

**Fade-in** (Sec. 2, Fig. 2). A new block is blended in smoothly. With :math:`h_{k-1}` the
features of level k-1, :math:`\mathrm{up}` nearest-neighbour x2, :math:`\mathrm{down}` 2x2
average pooling and :math:`\alpha` rising linearly from 0 to 1:

.. math::
    G_k(z) = (1-\alpha)\, \mathrm{up}\big(\mathrm{toRGB}_{k-1}(h_{k-1})\big)
             + \alpha\, \mathrm{toRGB}_k\big(\mathrm{block}_k(h_{k-1})\big)

    D_k(x) = D_{<k}\Big((1-\alpha)\, \mathrm{fromRGB}_{k-1}(\mathrm{down}(x))
             + \alpha\, \mathrm{block}_k\big(\mathrm{fromRGB}_k(x)\big)\Big)

and the REAL images get the same blend (the official ``process_reals``, "FadeLOD"), so that D
never sees a sharpness only the reals have: :func:`fade_reals`,
:math:`x' = (1-\alpha)\, \mathrm{up}(\mathrm{down}(x)) + \alpha\, x`. After the fade-in,
training goes on at :math:`\alpha = 1` (the stabilise phase) before the next level fades in.
Level 0 has no fade-in (there is nothing below it): it only stabilises, and the last level
stabilises until the end of training (:class:`ProgressiveSchedule`).

**Equalised learning rate** (Sec. 4.1; :class:`ganlab.nn.EqualizedConv2d`, ``EqualizedLinear``):
:math:`w = \frac{g}{\sqrt{\text{fan\_in}}}\, \hat w`, :math:`\hat w \sim \mathcal N(0, 1)`,
the scale applied at run time, gain :math:`g = \sqrt 2` (1 for toRGB and D's last dense).

**PixelNorm** (Sec. 4.2; :class:`ganlab.nn.PixelNorm`), on z and after every conv of G (after
its LReLU): :math:`b_{x,y} = a_{x,y} / \sqrt{\frac1C \sum_j (a^j_{x,y})^2 + 10^{-8}}`.

**Minibatch standard deviation** (Sec. 3; :class:`ganlab.nn.MinibatchStdDev`), at the start of
D's 4x4 block: per group of 4 samples, the std over the group of every feature and pixel,
averaged to one number, appended as one more feature map.

**Loss** (Sec. A.1; WGAN-GP of Gulrajani et al. with the drift term), with
:math:`\hat x = x + \epsilon(\tilde x - x)`, :math:`\epsilon \sim U[0,1)` per sample:

.. math::
    L_D = \mathbb E[D(\tilde x)] - \mathbb E[D(x)]
          + \lambda\, \mathbb E\big[(\|\nabla_{\hat x} D(\hat x)\|_2 - 1)^2\big]
          + \epsilon_{drift}\, \mathbb E[D(x)^2], \qquad
    L_G = -\mathbb E[D(\tilde x)]

with :math:`\lambda = 10`, :math:`\epsilon_{drift} = 0.001` (:func:`d_loss`, :func:`g_loss`).
Adam lr 0.001, betas (0, 0.99), eps 1e-8 for both networks (:func:`adam`), its state reset
when the level of detail changes (:attr:`ScheduleState.reset_optimizer`); samples come from
an exponential moving average of G's weights with decay 0.999 (the loop does it, with
``ganlab.train.ema.EMA(generator, decay=EMA_DECAY)``).

Shapes (``nf(s) = min(fmap_base / 2**(s * fmap_decay), fmap_max)``, official 8192, 1.0, 512;
C = image channels; level k at S = 4 * 2**k px, its block has nf(k+1) channels)::

    G  z (B, latent) -> PixelNorm
       block 0   dense (B, 16 nf(1)) -> view (B, nf(1), 4, 4) + bias -> LReLU -> PixelNorm
                 -> conv3x3 -> LReLU -> PixelNorm                            (B, nf(1), 4, 4)
       block k   nearest x2 (B, nf(k), S, S) -> conv3x3 -> LReLU -> PixelNorm
                 -> conv3x3 -> LReLU -> PixelNorm                            (B, nf(k+1), S, S)
       toRGB_k   conv1x1, gain 1, no activation                              (B, C, S, S)
    D  fromRGB_k conv1x1 -> LReLU                      (B, C, S, S) ->       (B, nf(k+1), S, S)
       block k   conv3x3 -> LReLU -> conv3x3 to nf(k) -> LReLU -> avg-pool 2x2
                                                                             (B, nf(k), S/2, S/2)
       block 0   minibatch stddev (B, nf(1) + 1, 4, 4) -> conv3x3 -> LReLU  (B, nf(1), 4, 4)
                 -> flatten -> dense (B, nf(0)) -> LReLU -> dense, gain 1    (B,) scores

At full size (1024 px, latent 512): 512 channels up to 64 px, then 256, 128, 64, 32, 16; the
paper's Table 2 lists 23.1M parameters for G and 23.1M for D (``PAPER_PARAMETERS``; the test
counts the course's at these widths).

The level index: level k = 4 * 2**k px. The official code counts the other way, by the level
of detail ``lod`` = (levels - 1) - level (0 = full size), fractional while fading:
``lod = max_level - level + (1 - alpha)`` (:meth:`ScheduleState.lod`).

Deviations from the paper and the official code (tkarras/progressive_growing_of_gans):

=======================  ==========================================  =========================
what                     paper / official                            course
=======================  ==========================================  =========================
widths, latent           fmap_base 8192, fmap_max 512, latent 512    ``fmap_base``,
                         (= nf(0)), 1024 px (CelebA-HQ)              ``fmap_max``,
                                                                     ``latent_size``,
                                                                     ``resolution`` arguments;
                                                                     the chapter's profiles
                                                                     run small widths at
                                                                     <= 64 px
images per phase         paper (Sec. A.1): 800k real images per      ``ProgressiveSchedule``
                         fade-in and 800k per stabilise; the code's  takes both lengths; the
                         default (``lod_training_kimg`` =            chapter scales them to
                         ``lod_transition_kimg`` = 600) 600k each;   its CPU budget
                         total 12000 kimg (preset v2)
batch size per           paper: 16 up to 128 px, then 14, 6, 3 at    ``batch_size`` int or
resolution               256, 512, 1024; code (preset v2, 1 GPU,     {resolution: size}
                         fp32): 128 up to 16 px, 64 at 32, 32 at
                         64, 16, 8, 4, 4 at 128 ... 1024
schedule granularity     re-evaluated every 4 minibatches            every step
                         (``minibatch_repeats``)
optimiser reset          ``reset_opt_for_new_lod``: whenever floor   ``reset_optimizer`` at
                         or ceil of lod changes, i.e. at the start   the same points; the
                         of every fade-in and of every stabilise     loop acts on it
upsample + conv in G     a fused transposed conv (``fused_scale``):  nearest x2 then conv3x3
                         the same function as nearest x2 + conv3x3   (the paper's Table 2)
                         with the kernel stored flipped
conv + pool in D         fused strided conv (``fused_scale``) =      conv3x3, LReLU, avg-pool
                         conv3x3 + avg-pool, but bias and LReLU      (the paper's order)
                         AFTER the pool; the paper's Table 2 and
                         the unfused path: LReLU, then pool
G's first layer          paper: 4x4 conv on the 1x1 latent; code:    the code's dense, gain
                         dense with gain sqrt(2)/4 (= the conv's He  sqrt(2)/4, one bias per
                         constant) and one bias per channel          channel
G EMA                    beta 0.999 from step 0                      the loop's EMA: 0.999
                                                                     with a warm-up
                                                                     min(0.999, (1+t)/(10+t));
                                                                     chapter 5 scales beta to
                                                                     its short phases
minibatch stddev         paper (Sec. 3): std over the minibatch;     groups of 4
                         code: groups of ``mbstd_group_size`` = 4
                         (16 in the 1-GPU v1 preset)
conditioning             AC-GAN label head for CIFAR-10 only         unconditional
=======================  ==========================================  =========================

Results the paper reports (FIDELITY 5.7): CIFAR-10 Inception score 8.80 (unsupervised);
CelebA-HQ 1024x1024 FID 7.30. SWD on Laplacian-pyramid patches is ``ganlab.metrics``' job.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from numbers import Integral, Real

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nn import (
    HE_GAIN,
    EqualizedConv2d,
    EqualizedLinear,
    MinibatchStdDev,
    PixelNorm,
    drift_penalty,
    pixel_norm,
    wgan_gp_penalty,
)

LATENT_SIZE = 512
"""Official latent size: ``nf(0)`` = min(fmap_base, fmap_max) = 512."""
FMAP_BASE, FMAP_DECAY, FMAP_MAX = 8192, 1.0, 512
"""Official width formula's constants (``G_paper`` / ``D_paper``), for 1024 px."""
LRELU_SLOPE = 0.2
MBSTD_GROUP_SIZE = 4
"""Minibatch-stddev group size (``mbstd_group_size``; 16 in the 1-GPU v1 preset)."""
GP_WEIGHT = 10.0
"""WGAN-GP lambda (``wgan_lambda``)."""
DRIFT_WEIGHT = 0.001
"""epsilon_drift (``wgan_epsilon``)."""
ADAM_LR, ADAM_BETAS, ADAM_EPS = 1e-3, (0.0, 0.99), 1e-8
"""Adam for G and D (``G_lrate_base`` = ``D_lrate_base``, ``G_opt`` = ``D_opt``)."""
EMA_DECAY = 0.999
"""G's weight average for sampling (``G_smoothing``)."""
PAPER_PHASE_IMAGES = 800_000
"""Real images per fade-in and per stabilise phase in the paper (Sec. A.1)."""
CODE_PHASE_IMAGES = 600_000
"""The same in the official code's defaults (``lod_training_kimg = lod_transition_kimg = 600``)."""
PAPER_BATCH_SIZES = {4: 16, 8: 16, 16: 16, 32: 16, 64: 16, 128: 16, 256: 14, 512: 6, 1024: 3}
"""Minibatch per resolution in the paper (Sec. A.1; the code's v1 preset)."""
CODE_BATCH_SIZES = {4: 128, 8: 128, 16: 128, 32: 64, 64: 32, 128: 16, 256: 8, 512: 4, 1024: 4}
"""Minibatch per resolution of the code's default preset (v2, 1 GPU, fp32)."""
PAPER_PARAMETERS = 23.1e6
"""Trainable parameters of G, and of D, at 1024 px (the paper's Table 2)."""

FADE, STABILISE = "fade", "stabilise"


# --------------------------------------------------------------------------------------
# Levels, widths and input checks
# --------------------------------------------------------------------------------------


def resolution_of(level: int) -> int:
    """Level k works at 4 * 2**k px (level 0 = 4x4)."""
    return 4 * 2**level


def level_of(resolution: int) -> int:
    """The inverse of :func:`resolution_of`: 4 -> 0, 8 -> 1, ..., 1024 -> 8."""
    if not isinstance(resolution, Integral) or resolution < 4 or resolution & (resolution - 1):
        raise ValueError(
            f"resolution must be a power of two >= 4 (4, 8, ..., 1024), got {resolution!r}"
        )
    return int(math.log2(resolution)) - 2


def num_features(stage: int, fmap_base: int, fmap_decay: float, fmap_max: int) -> int:
    """The official ``nf(stage)`` = min(int(fmap_base / 2**(stage * fmap_decay)), fmap_max).

    Level k's block has nf(k + 1) channels: 512 at 4..64 px, then 256, ..., 16 at 1024 px.
    """
    return min(int(fmap_base / (2.0 ** (stage * fmap_decay))), fmap_max)


def _check_width_arguments(fmap_base: int, fmap_decay: float, fmap_max: int, max_level: int):
    smallest = num_features(max_level + 1, fmap_base, fmap_decay, fmap_max)
    if fmap_max < 1 or smallest < 1:
        raise ValueError(
            f"fmap_base={fmap_base}, fmap_decay={fmap_decay}, fmap_max={fmap_max} give "
            f"{smallest} channels at the last level ({resolution_of(max_level)} px); every level "
            "needs >= 1 (raise fmap_base or lower the resolution)"
        )


def _check_level(level, max_level: int) -> int:
    if isinstance(level, bool) or not isinstance(level, Integral):
        raise TypeError(f"level must be an int (0 = 4x4, k = 4 * 2**k px), got {level!r}")
    if not 0 <= level <= max_level:
        raise ValueError(
            f"level must be in 0..{max_level} (0 = 4x4 ... {max_level} = "
            f"{resolution_of(max_level)} px), got {level}"
        )
    return int(level)


def _check_alpha(alpha, level: int):
    """alpha: a number in [0, 1] or a 0-dim float tensor (range checked on the CPU only)."""
    if isinstance(alpha, torch.Tensor):
        if alpha.dim() != 0 or not alpha.is_floating_point():
            raise TypeError(f"alpha must be a float or a 0-dim float tensor, got {alpha!r}")
        checkable = alpha.device.type == "cpu" and not torch.compiler.is_compiling()
        value = float(alpha) if checkable else None
    elif isinstance(alpha, Real) and not isinstance(alpha, bool):
        value = alpha = float(alpha)
    else:
        raise TypeError(f"alpha must be a float in [0, 1], got {alpha!r}")
    if value is not None and not 0.0 <= value <= 1.0:
        raise ValueError(
            f"alpha must lie in [0, 1] (0 = the previous level only, 1 = the new block only), "
            f"got {value}"
        )
    if level == 0 and value is not None and value != 1.0:
        raise ValueError(
            f"level 0 (4x4) has no fade-in, there is no lower resolution: alpha must be 1, "
            f"got {value}"
        )
    return alpha


def _check_float(x, shape: tuple, name: str, why: str = "") -> None:
    """``shape`` may hold None for a free size (the batch)."""
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"{name} must be a float torch.Tensor, got {type(x).__name__} {getattr(x, 'dtype', '')}"
        )
    if x.dim() != len(shape) or any(s is not None and s != n for s, n in zip(shape, x.shape)):
        want = ", ".join("B" if s is None else str(s) for s in shape)
        raise ValueError(f"{name} must have shape ({want}){why}, got {tuple(x.shape)}")


def _check_pyramid_images(x, name: str) -> None:
    _check_float(x, (None, None, None, None), name)
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"{name} must have an even height and width (2x2 pooling), got {h}x{w}")


# --------------------------------------------------------------------------------------
# Resampling and the real images
# --------------------------------------------------------------------------------------


def upsample(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, 2H, 2W): nearest neighbour (the official ``upscale2d``)."""
    return F.interpolate(x, scale_factor=2, mode="nearest")


def downsample(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, C, H/2, W/2): 2x2 box average (the official ``downscale2d``)."""
    return F.avg_pool2d(x, 2)


def fade_reals(x: torch.Tensor, alpha) -> torch.Tensor:
    r"""The reals' cross-fade: lerp(up(down(x)), x, alpha) = (1 - alpha) up(down(x)) + alpha x.

    x (B, C, S, S) at the level's resolution -> (B, C, S, S). The official ``process_reals``
    ("FadeLOD") blends x with its 2x2 box average, replicated back to S x S, by
    ``lod - floor(lod)`` = 1 - alpha: the same alpha as G's and D's fade-in. alpha = 1 (every
    stabilise phase) returns x; alpha = 0 returns the previous level's image, upsampled.
    """
    _check_pyramid_images(x, "x")
    alpha = _check_alpha(alpha, level=1)
    if isinstance(alpha, float) and alpha == 1.0:
        return x
    return _lerp(upsample(downsample(x)), x, alpha)


def reals_for(x: torch.Tensor, level: int, alpha) -> torch.Tensor:
    """Real images (B, C, H, W), H = W = 4 * 2**j with j >= level, as D sees them at ``level``.

    Box-downsampled to the level's resolution (as the official ``dataset_tool`` builds its
    resolution pyramid: the mean of 2x2 blocks, repeated) then :func:`fade_reals` with alpha.
    """
    _check_float(x, (None, None, None, None), "x")
    if x.shape[-1] != x.shape[-2]:
        raise ValueError(f"x must hold square images (B, C, S, S), got {tuple(x.shape)}")
    # x may be larger than the level's resolution, never smaller
    level = _check_level(level, level_of(x.shape[-1]))
    alpha = _check_alpha(alpha, level)
    factor = x.shape[-1] // resolution_of(level)
    x = F.avg_pool2d(x, factor) if factor > 1 else x  # (B, C, S, S) at the level
    return x if level == 0 else fade_reals(x, alpha)


def _lerp(a: torch.Tensor, b: torch.Tensor, alpha) -> torch.Tensor:
    """a + alpha (b - a), the fade-in blend: alpha = 0 gives a (the old path), 1 gives b."""
    dtype = torch.promote_types(a.dtype, b.dtype)  # under autocast one path may be bf16
    a, b = a.to(dtype), b.to(dtype)
    if isinstance(alpha, torch.Tensor):
        alpha = alpha.to(device=b.device, dtype=dtype)
    return torch.lerp(a, b, alpha)


# --------------------------------------------------------------------------------------
# Layers
# --------------------------------------------------------------------------------------


def conv_lrelu_pixelnorm(in_channels: int, out_channels: int) -> nn.Sequential:
    """G's layer: (B, in, H, W) -> equalised conv3x3 -> LReLU(0.2) -> PixelNorm (B, out, H, W)."""
    return nn.Sequential(
        EqualizedConv2d(in_channels, out_channels, 3), nn.LeakyReLU(LRELU_SLOPE), PixelNorm()
    )


def conv_lrelu(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Sequential:
    """D's layer: (B, in, H, W) -> equalised conv k x k -> LReLU(0.2) -> (B, out, H, W)."""
    return nn.Sequential(
        EqualizedConv2d(in_channels, out_channels, kernel_size), nn.LeakyReLU(LRELU_SLOPE)
    )


class GeneratorInputBlock(nn.Module):
    """G's 4x4 block: z (B, latent) -> (B, channels, 4, 4).

    dense (no bias) to 16 * channels -> view (B, channels, 4, 4) -> + one bias per channel ->
    LReLU -> PixelNorm -> conv3x3 -> LReLU -> PixelNorm. The dense layer's gain sqrt(2)/4 is
    the official one ("to match the original Theano implementation", a 4x4 conv on the 1x1
    latent, whose He constant is sqrt(2 / (16 latent)) = sqrt(2) / 4 / sqrt(latent)).
    """

    def __init__(self, latent_size: int, channels: int) -> None:
        super().__init__()
        self.latent_size, self.channels = latent_size, channels
        self.dense = EqualizedLinear(latent_size, 16 * channels, bias=False, gain=HE_GAIN / 4)
        self.bias = nn.Parameter(torch.zeros(channels))
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        self.norm = PixelNorm()
        self.conv = conv_lrelu_pixelnorm(channels, channels)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x = self.dense(z).view(-1, self.channels, 4, 4)  # (B, C, 4, 4)
        x = self.norm(self.act(x + self.bias.view(1, -1, 1, 1)))
        return self.conv(x)  # (B, C, 4, 4)


class GeneratorBlock(nn.Module):
    """G's block k >= 1: (B, in, S/2, S/2) -> nearest x2 -> 2 x [conv3x3, LReLU, PixelNorm]
    -> (B, out, S, S)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = conv_lrelu_pixelnorm(in_channels, out_channels)
        self.conv1 = conv_lrelu_pixelnorm(out_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv1(self.conv0(upsample(x)))  # (B, out, S, S)


class DiscriminatorBlock(nn.Module):
    """D's block k >= 1: (B, in, S, S) -> conv3x3, LReLU -> conv3x3 to out, LReLU -> avg-pool
    -> (B, out, S/2, S/2)."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv0 = conv_lrelu(in_channels, in_channels)
        self.conv1 = conv_lrelu(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return downsample(self.conv1(self.conv0(x)))  # (B, out, S/2, S/2)


class DiscriminatorOutputBlock(nn.Module):
    """D's 4x4 block: (B, channels, 4, 4) -> minibatch stddev (B, channels + 1, 4, 4) ->
    conv3x3, LReLU (B, channels, 4, 4) -> dense (B, hidden), LReLU -> dense, gain 1 -> (B,).

    The batch must be a multiple of min(group_size, B) (the official requirement).
    """

    def __init__(self, channels: int, hidden: int, group_size: int = MBSTD_GROUP_SIZE) -> None:
        super().__init__()
        self.minibatch_stddev = MinibatchStdDev(group_size)
        self.conv = conv_lrelu(channels + 1, channels)
        self.dense0 = EqualizedLinear(16 * channels, hidden)
        self.act = nn.LeakyReLU(LRELU_SLOPE)
        self.dense1 = EqualizedLinear(hidden, 1, gain=1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(self.minibatch_stddev(x))  # (B, C + 1, 4, 4) -> (B, C, 4, 4)
        x = self.act(self.dense0(x.flatten(1)))  # (B, hidden)
        return self.dense1(x).squeeze(1)  # (B,)


# --------------------------------------------------------------------------------------
# Generator and discriminator
# --------------------------------------------------------------------------------------


class Generator(nn.Module):
    """PGGAN's growing generator: forward(z (B, latent), level, alpha) -> (B, C, S, S),
    S = 4 * 2**level, linear outputs (no tanh; the data live in [-1, 1]).

    ``resolution``: the final size (4 * 2**max_level); ``latent_size`` None = nf(0) as the
    official code; widths nf(k + 1) from ``fmap_base``, ``fmap_decay``, ``fmap_max``.
    ``blocks[k]`` and ``to_rgb[k]`` belong to level k.
    """

    def __init__(
        self,
        resolution: int = 1024,
        latent_size: int | None = None,
        *,
        num_channels: int = 3,
        fmap_base: int = FMAP_BASE,
        fmap_decay: float = FMAP_DECAY,
        fmap_max: int = FMAP_MAX,
        normalize_latents: bool = True,
    ) -> None:
        super().__init__()
        self.max_level = level_of(resolution)
        _check_width_arguments(fmap_base, fmap_decay, fmap_max, self.max_level)

        def nf(stage: int) -> int:
            return num_features(stage, fmap_base, fmap_decay, fmap_max)

        self.latent_size = nf(0) if latent_size is None else int(latent_size)
        if self.latent_size < 1 or num_channels < 1:
            raise ValueError(
                f"latent_size and num_channels must be >= 1, got {latent_size}, {num_channels}"
            )
        self.resolution, self.num_channels = resolution, num_channels
        self.normalize_latents = normalize_latents
        self.widths = [nf(k + 1) for k in range(self.max_level + 1)]  # channels of level k
        blocks: list[nn.Module] = [GeneratorInputBlock(self.latent_size, self.widths[0])]
        blocks += [GeneratorBlock(a, b) for a, b in zip(self.widths, self.widths[1:])]
        self.blocks = nn.ModuleList(blocks)
        self.to_rgb = nn.ModuleList(
            EqualizedConv2d(c, num_channels, 1, gain=1.0) for c in self.widths
        )

    def sample_z(
        self, n: int, generator: torch.Generator | None = None, device=None
    ) -> torch.Tensor:
        """n latents (n, latent_size) ~ N(0, I) (normalised inside forward)."""
        if not isinstance(n, Integral) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        device = device if device is not None else self.to_rgb[0].weight.device
        return torch.randn(int(n), self.latent_size, generator=generator, device=device)

    def features(self, z: torch.Tensor, level: int) -> list[torch.Tensor]:
        """[h_0, ..., h_level]: the features of levels 0..level, h_k (B, nf(k+1), S_k, S_k)."""
        _check_float(z, (None, self.latent_size), "z", f" (latent_size {self.latent_size})")
        level = _check_level(level, self.max_level)
        h = pixel_norm(z) if self.normalize_latents else z  # (B, latent)
        hs = []
        for k in range(level + 1):
            h = self.blocks[k](h)
            hs.append(h)
        return hs

    def forward(self, z: torch.Tensor, level: int, alpha=1.0) -> torch.Tensor:
        level = _check_level(level, self.max_level)
        alpha = _check_alpha(alpha, level)
        hs = self.features(z, level)
        new = self.to_rgb[level](hs[-1])  # (B, C, S, S): the new block only
        if level == 0 or (isinstance(alpha, float) and alpha == 1.0):
            return new  # stabilise
        old = upsample(self.to_rgb[level - 1](hs[-2]))  # (B, C, S/2, S/2) -> (B, C, S, S)
        return _lerp(old, new, alpha)  # fade-in


class Discriminator(nn.Module):
    """PGGAN's growing critic: forward(x (B, C, S, S), level, alpha) -> scores (B,), with
    S = 4 * 2**level.

    ``from_rgb[k]`` and ``blocks[k]`` belong to level k (``blocks[0]`` is the 4x4 output block
    with the minibatch stddev); the same width arguments as :class:`Generator`. The batch
    must be a multiple of min(``mbstd_group_size``, B).
    """

    def __init__(
        self,
        resolution: int = 1024,
        *,
        num_channels: int = 3,
        fmap_base: int = FMAP_BASE,
        fmap_decay: float = FMAP_DECAY,
        fmap_max: int = FMAP_MAX,
        mbstd_group_size: int = MBSTD_GROUP_SIZE,
    ) -> None:
        super().__init__()
        self.max_level = level_of(resolution)
        _check_width_arguments(fmap_base, fmap_decay, fmap_max, self.max_level)

        def nf(stage: int) -> int:
            return num_features(stage, fmap_base, fmap_decay, fmap_max)

        if num_channels < 1:
            raise ValueError(f"num_channels must be >= 1, got {num_channels}")
        self.resolution, self.num_channels = resolution, num_channels
        self.widths = [nf(k + 1) for k in range(self.max_level + 1)]  # channels at level k
        self.from_rgb = nn.ModuleList(conv_lrelu(num_channels, c, 1) for c in self.widths)
        blocks: list[nn.Module] = [
            DiscriminatorOutputBlock(self.widths[0], nf(0), mbstd_group_size)
        ]
        blocks += [DiscriminatorBlock(b, a) for a, b in zip(self.widths, self.widths[1:])]
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: torch.Tensor, level: int, alpha=1.0) -> torch.Tensor:
        level = _check_level(level, self.max_level)
        alpha = _check_alpha(alpha, level)
        size = resolution_of(level)
        why = f" (level {level} works at 4 * 2**{level} = {size} px)"
        _check_float(x, (None, self.num_channels, size, size), "x", why)
        h = self.from_rgb[level](x)  # (B, nf(level+1), S, S)
        h = self.blocks[level](h)  # the new block: (B, nf(level), S/2, S/2); at level 0 (B,)
        if level > 0 and not (isinstance(alpha, float) and alpha == 1.0):
            old = self.from_rgb[level - 1](downsample(x))  # (B, nf(level), S/2, S/2)
            h = _lerp(old, h, alpha)  # fade-in
        for k in reversed(range(level)):
            h = self.blocks[k](h)  # level k's block, ... -> (B,) at k = 0
        return h


# --------------------------------------------------------------------------------------
# Losses and optimiser
# --------------------------------------------------------------------------------------

Critic = Callable[..., torch.Tensor]  # D(x, level, alpha) -> scores (B,)


def d_loss(
    D: Critic,
    reals: torch.Tensor,
    fakes: torch.Tensor,
    level: int,
    alpha=1.0,
    *,
    gp_weight: float = GP_WEIGHT,
    drift_weight: float = DRIFT_WEIGHT,
    generator: torch.Generator | None = None,
    return_terms: bool = False,
):
    """L_D = mean D(fake) - mean D(real) + lambda * GP + eps_drift * mean D(real)^2.

    reals, fakes (B, C, S, S) at the level's resolution; the reals already cross-faded with
    the same alpha (:func:`reals_for` / :func:`fade_reals`); fakes are detached here. The
    gradient penalty (``ganlab.nn.wgan_gp_penalty``) runs D at the same level and alpha on
    per-sample interpolates, epsilon drawn from ``generator``. Returns the scalar loss, or with
    ``return_terms`` (loss, {"wasserstein": mean D(real) - mean D(fake), "gp", "drift"}).
    The official per-sample loss averaged over the batch is the same number.
    """
    if reals.shape != fakes.shape:
        raise ValueError(
            f"reals and fakes must have the same shape, got {tuple(reals.shape)} and "
            f"{tuple(fakes.shape)}"
        )
    fakes = fakes.detach()
    real_scores = D(reals, level, alpha)  # (B,)
    fake_scores = D(fakes, level, alpha)  # (B,)
    wasserstein = real_scores.float().mean() - fake_scores.float().mean()
    gp = wgan_gp_penalty(lambda x: D(x, level, alpha), reals, fakes, gp_weight, generator)
    drift = drift_penalty(real_scores, drift_weight)
    loss = -wasserstein + gp + drift
    if return_terms:
        terms = {"wasserstein": wasserstein.detach(), "gp": gp.detach(), "drift": drift.detach()}
        return loss, terms
    return loss


def g_loss(D: Critic, fakes: torch.Tensor, level: int, alpha=1.0) -> torch.Tensor:
    """L_G = -mean D(fake); fakes (B, C, S, S) from G at the same level and alpha."""
    return -D(fakes, level, alpha).float().mean()


def adam(params: Iterable[torch.nn.Parameter], lr: float = ADAM_LR) -> torch.optim.Adam:
    """The official optimiser: Adam(lr 0.001, betas (0, 0.99), eps 1e-8), for G and for D.

    Reset its state (a new optimiser, or ``optimizer.state.clear()``) where
    :attr:`ScheduleState.reset_optimizer` says so.
    """
    return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, eps=ADAM_EPS)


# --------------------------------------------------------------------------------------
# The growing schedule
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Phase:
    """One span of the schedule: ``kind`` ("fade" or "stabilise") at ``level``, global steps
    ``start`` .. ``start + steps - 1`` of ``batch_size`` images each."""

    level: int
    kind: str
    start: int
    steps: int
    batch_size: int

    @property
    def stop(self) -> int:
        return self.start + self.steps


@dataclass(frozen=True)
class ScheduleState:
    """What to train at one global step.

    ``alpha``: the fade-in weight, i / n at step i of an n-step fade-in (0 at its first step,
    (n-1)/n at its last), 1 while stabilising. ``new_level``: the first step at this
    resolution (step 0, or the first step of the level's fade-in). ``new_phase``: the first
    step of a fade-in or a stabilise phase. ``images_seen``: real images shown before this step.
    """

    step: int
    level: int
    alpha: float
    phase: str
    resolution: int
    batch_size: int
    images_seen: int
    new_level: bool
    new_phase: bool

    @property
    def reset_optimizer(self) -> bool:
        """The official rule (``reset_opt_for_new_lod``): reset Adam's state whenever floor or
        ceil of lod changes, i.e. at the first step of every phase (new layers at a fade-in's
        start, and again when the fade-in ends and the level stabilises)."""
        return self.new_phase

    def lod(self, max_level: int) -> float:
        """The official level of detail: max_level - level + (1 - alpha) (0 = full size)."""
        return max_level - self.level + (1.0 - self.alpha)


def _check_images_count(name: str, value, allow_zero: bool) -> int:
    if (
        isinstance(value, bool)
        or not isinstance(value, Integral)
        or value < (0 if allow_zero else 1)
    ):
        bound = ">= 0" if allow_zero else ">= 1"
        raise ValueError(f"{name} must be an int {bound} (real images per phase), got {value!r}")
    return int(value)


class ProgressiveSchedule:
    """The growing schedule: global step -> :class:`ScheduleState` (level, alpha, phase, ...).

    Phases, in order (the official ``TrainingSchedule``)::

        stabilise level start_level,
        fade level start_level + 1, stabilise level start_level + 1,
        ...
        fade level max_level, stabilise level max_level (until the end: every later step)

    The level being stabilised is never faded again; a fade-in is always followed by the
    stabilise phase of the SAME level; level ``start_level`` (0 by default) has no fade-in.
    A phase of N images at batch b lasts ceil(N / b) steps. ``fade_images`` = 0 grows without
    fading (an ablation); ``start_level = max_level`` trains at full size without growing
    (the official ``-nogrowing`` config).

    ``stabilise_images``, ``fade_images``: real images per phase (paper 800k, code 600k:
    ``PAPER_PHASE_IMAGES``, ``CODE_PHASE_IMAGES``; scaled down by the chapter).
    ``batch_size``: an int, or {resolution: batch} covering every trained resolution
    (``PAPER_BATCH_SIZES``, ``CODE_BATCH_SIZES``).
    """

    def __init__(
        self,
        max_level: int,
        stabilise_images: int,
        fade_images: int,
        batch_size: int | Mapping[int, int],
        start_level: int = 0,
    ) -> None:
        if isinstance(max_level, bool) or not isinstance(max_level, Integral) or max_level < 0:
            raise ValueError(f"max_level must be an int >= 0 (0 = 4x4 only), got {max_level!r}")
        self.max_level = int(max_level)
        self.start_level = _check_level(start_level, self.max_level)
        self.stabilise_images = _check_images_count("stabilise_images", stabilise_images, False)
        self.fade_images = _check_images_count("fade_images", fade_images, True)
        self.batch_sizes = self._batch_sizes(batch_size)
        phases, start = [], 0
        for level in range(self.start_level, self.max_level + 1):
            kinds = (STABILISE,) if level == self.start_level else (FADE, STABILISE)
            b = self.batch_sizes[level]
            for kind in kinds:
                images = self.fade_images if kind == FADE else self.stabilise_images
                steps = -(-images // b)  # ceil
                if steps:
                    phases.append(Phase(level, kind, start, steps, b))
                    start += steps
        self.phases: tuple[Phase, ...] = tuple(phases)

    @classmethod
    def for_steps(
        cls, total_steps: int, max_level: int, batch_size: int, start_level: int = 0
    ) -> ProgressiveSchedule:
        """A schedule scaled to a run of ``total_steps`` at one batch size: every phase (the
        official fade-in = stabilise length) gets total_steps // phases steps, phases =
        2 (max_level - start_level) + 1; the last stabilise phase also takes the remainder."""
        levels = max_level - start_level if isinstance(max_level, Integral) else 0
        phases = 2 * max(levels, 0) + 1
        if isinstance(total_steps, bool) or not isinstance(total_steps, Integral):
            raise ValueError(f"total_steps must be an int, got {total_steps!r}")
        if total_steps < phases:
            raise ValueError(
                f"total_steps must be >= {phases} (one step per phase: levels {start_level}.."
                f"{max_level} stabilise, and each after the first fades in), got {total_steps}"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, Integral) or batch_size < 1:
            raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
        images = total_steps // phases * batch_size
        return cls(max_level, images, images, batch_size, start_level=start_level)

    def _batch_sizes(self, batch_size) -> dict[int, int]:
        levels = range(self.start_level, self.max_level + 1)
        if isinstance(batch_size, Mapping):
            missing = [resolution_of(k) for k in levels if resolution_of(k) not in batch_size]
            if missing:
                raise ValueError(
                    f"batch_size must give a batch for every trained resolution; missing {missing}"
                )
            sizes = {k: batch_size[resolution_of(k)] for k in levels}
        else:
            sizes = dict.fromkeys(levels, batch_size)
        for k, b in sizes.items():
            if isinstance(b, bool) or not isinstance(b, Integral) or b < 1:
                raise ValueError(
                    f"batch size at {resolution_of(k)} px must be an int >= 1, got {b!r}"
                )
        return {k: int(b) for k, b in sizes.items()}

    @property
    def total_steps(self) -> int:
        """Steps until the final level has stabilised for one phase (training may go on)."""
        return self.phases[-1].stop

    @property
    def reset_steps(self) -> list[int]:
        """The steps where ``reset_optimizer`` holds: the first step of every phase."""
        return [p.start for p in self.phases]

    def phase_at(self, step: int) -> Phase:
        """The phase holding global step ``step`` (the last one for every later step)."""
        if isinstance(step, bool) or not isinstance(step, Integral) or step < 0:
            raise ValueError(f"step must be an int >= 0, got {step!r}")
        for phase in self.phases:
            if step < phase.stop:
                return phase
        return self.phases[-1]  # the final level stabilises until the end

    def __call__(self, step: int) -> ScheduleState:
        phase = self.phase_at(step)
        i = step - phase.start  # steps already done in this phase
        alpha = i / phase.steps if phase.kind == FADE else 1.0
        before = sum(p.steps * p.batch_size for p in self.phases if p.stop <= phase.start)
        first_at_level = all(p.level != phase.level for p in self.phases if p.stop <= phase.start)
        return ScheduleState(
            step=int(step),
            level=phase.level,
            alpha=alpha,
            phase=phase.kind,
            resolution=resolution_of(phase.level),
            batch_size=phase.batch_size,
            images_seen=before + i * phase.batch_size,
            new_level=i == 0 and first_at_level,
            new_phase=i == 0,
        )
