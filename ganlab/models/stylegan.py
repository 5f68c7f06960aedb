r"""StyleGAN: Karras, Laine & Aila, *A Style-Based Generator Architecture for Generative
Adversarial Networks*, CVPR 2019.

A traditional generator feeds z to its first layer and lets every later layer inherit it.
StyleGAN never shows z to the image-making network. A **mapping network** f turns z into an
intermediate latent w; a **synthesis network** g starts from a learned constant and, at every
layer, is told by w *how to style* its feature maps (AdaIN), while per-pixel **noise** supplies
the stochastic detail (the exact placement of hairs, freckles, fur strokes):

.. math::
    w = f(z) = \mathrm{FC}_8 \circ \dots \circ \mathrm{FC}_1\big(\mathrm{PixelNorm}(z)\big),
    \qquad \mathrm{FC}_i(h) = \mathrm{LReLU}_{0.2}(W_i h + b_i),\ \text{lr multiplier } 0.01

Each of the L = 2 log2(R) - 2 synthesis layers (two per resolution 4, 8, ..., R) computes

.. math::
    x &\leftarrow \mathrm{blur}(\mathrm{conv}_{3\times3}(\mathrm{up}_2(x)))
        \ \text{(first layer of a resolution > 4)}, \quad
        \mathrm{conv}_{3\times3}(x)\ \text{(second layer)} \\
    x &\leftarrow x + B \odot n, \qquad n_{b,h,w} \sim \mathcal N(0, 1)
        \ \text{(one noise image, per-channel learned scale } B\text{, init 0)} \\
    x &\leftarrow \mathrm{LReLU}_{0.2}(x + b) \\
    \mathrm{AdaIN}(x, y)_c &= y_{s,c}\, \frac{x_c - \mu(x_c)}{\sigma(x_c)} + y_{b,c},
    \qquad y = (y_s, y_b) = A(w_\ell)

where layer 0 has no conv: its x is the learned constant (1, 512, 4, 4), initialised to ones.
The paper writes :math:`y_s`; the official ``style_mod`` computes ``x * (style[:,0] + 1) +
style[:,1]``, i.e. :math:`(1 + y_s)`, so that a zero style leaves IN(x) unchanged (A's bias
starts at 0). The course follows the code (``ganlab.nn.AdaIN.stylegan``). The image is a 1x1
conv of the last layer (toRGB, linear, no tanh; data in [-1, 1]).

**Style mixing regularisation** (Sec. 3.1): during training, with probability 0.9 two latents
z1, z2 are mapped and a crossover layer k is drawn uniformly from {1, ..., L-1}; layers
:math:`\ell < k` get :math:`w_1` and :math:`\ell \ge k` get :math:`w_2`, so that the network
cannot assume neighbouring styles are correlated.

**Truncation in W** (Sec. 3.1, Appendix B): :math:`\bar w` is tracked during training as an
exponential moving average of the minibatch mean of w,

.. math::
    \bar w \leftarrow 0.995\, \bar w + 0.005\, \mathrm{mean}_b(w_b), \qquad
    w'_\ell = \bar w + \psi\,(w_\ell - \bar w) \quad \text{for } \ell < 8,

with :math:`\psi = 0.7` on the first 8 layers (4-32 px) for the paper's figures; off (psi = 1)
in training and in the FID numbers.

**Loss** (FFHQ): non-saturating logistic loss with R1 on the reals (Mescheder et al. 2018),

.. math::
    L_G = \mathbb E_z\, \mathrm{softplus}(-D(G(z))), \qquad
    L_D = \mathbb E_z\, \mathrm{softplus}(D(G(z))) + \mathbb E_x\, \mathrm{softplus}(-D(x))
        + \frac\gamma2\, \mathbb E_x \|\nabla_x D(x)\|_2^2,

:math:`\gamma = 10` at 1024 px. R1 sums the squared gradient over the pixels: for a D of the
same smoothness the sum shrinks as 1 / (number of pixels), so gamma must grow with the pixel
count to keep the same strength; the course scales the paper's value by the area,
:math:`\gamma(R) = 10\,(R / 1024)^2` (:func:`r1_gamma`): 0.0098 at 32 px, 0.039 at 64 px.
For comparison, StyleGAN2-ADA used gamma = 0.01 for CIFAR-10 (32 px), and its 'auto' config's
heuristic 0.0002 R^2 / minibatch gives 0.0064 at 32 px and 0.0256 at 64 px (batch 32).
The discriminator is PGGAN's (equalised LR, minibatch standard deviation at 4x4) with a
[1, 2, 1] blur before each downsampling. Optimiser: Adam lr 0.001, betas (0, 0.99), eps 1e-8;
sampling uses an exponential moving average of G's weights with a half-life of 10k images.

Shapes (official widths nf(s) = min(8192 / 2^s, 512); R = 1024, L = 18)::

    MappingNetwork    z (B, 512) -> PixelNorm -> 8 x [EqualizedLinear 512 (lr_mul 0.01),
                      LReLU 0.2] -> w (B, 512)
    Generator         w (B, 512) -> broadcast (B, L, 512) -> [mixing] -> [truncation] -> ws
    SynthesisNetwork  ws (B, L, 512):
      layer 0         const (1, 512, 4, 4) -> expand (B, 512, 4, 4) -> epilogue(ws[:, 0])
      layer 1         conv3x3 512 -> (B, 512, 4, 4) -> epilogue(ws[:, 1])
      res r = 8..R    up x2 -> conv3x3 -> blur -> (B, nf(log2 r - 1), r, r) -> epilogue
                      conv3x3 -> (B, nf(log2 r - 1), r, r) -> epilogue
                      widths 512 (8-32 px), 256 (64), 128, 64, 32, 16 (1024)
      toRGB           1x1 conv (gain 1) -> (B, 3, R, R)
      epilogue        noise (B, 1, r, r) * B (C,) -> + bias (C,) -> LReLU -> IN -> AdaIN:
                      A(ws[:, l]) (B, 2C) -> y_s, y_b (B, C)
    Discriminator     (B, 3, R, R) -> fromRGB 1x1 -> (B, nf(log2 R - 1), R, R)
      res r = R..8    conv3x3 nf(log2 r - 1) -> blur -> conv3x3 nf(log2 r - 2) -> 2x2 mean
      4x4             minibatch stddev (+1 map) -> conv3x3 nf(1) -> dense nf(0) -> dense 1
                      -> scores (B,)

**Coarse, middle and fine styles** (Sec. 3.1, Fig. 3): coarse = the layers at 4-8 px (pose,
face shape, glasses), middle = 16-32 px (features, hair style, eyes open/closed), fine =
64-1024 px (colour scheme, microstructure). At R < 64 the paper's fine band does not exist;
:func:`style_groups` then gives the last resolution to "fine" (see there). The noise figure
(Fig. 5) splits in two: :func:`noise_groups`.

Deviations from the paper and the official code (NVlabs/stylegan, ``networks_stylegan.py``,
``loss.py``, ``train.py``):

======================  =========================================  ==========================
what                    official                                   course
======================  =========================================  ==========================
progressive growing     FFHQ config: G_style / D_basic grow from   fixed structure (the
                        8 px (``lod_initial_resolution=8``, 600k   official
                        images per resolution + 600k fade-in,      ``structure='fixed'``):
                        Adam state reset per resolution,           the full resolution from
                        ``structure='recursive'``)                 the first step
toRGB / fromRGB         one per resolution, blended by ``lod``     one, at the output
                                                                   resolution
upsample + conv         upscale2d (nearest) -> conv3x3 -> blur;    always the separate ops
                        at >= 128 px fused into one transposed     (up, conv, blur in that
                        conv (the same linear map: the 3x3         order; D: blur, conv,
                        kernel summed over its 2x2 footprint)      2x2 mean)
D                       D_basic = PGGAN's D_paper + blur before    the same, fixed
                        each downsampling conv; output (B, 1)      resolution; output (B,)
learning rate           0.001 up to 64 px; 0.0015 (128),           ``ADAM_LR`` = 0.001 (the
                        0.002 (256), 0.003 (512, 1024)             course trains <= 64 px)
minibatch (8 GPUs)      {4: 512, 8: 256, 16: 128, 32: 64, 64: 32}  the chapter's config
                        and 32 above
R1 gamma                10 (FFHQ, 1024 px)                         the chapter's profiles:
                                                                   10 (cpu, smoke: measured
                                                                   against 1 and 0.05), 0.2
                                                                   (gpu); :func:`r1_gamma`:
                                                                   10 (R/1024)^2 area-scaled
G EMA                   beta = 0.5^(batch / 10k), no warm-up;      :func:`g_ema_decay` for
                        non-trainables (w_avg, noise) copied       ``ganlab.train.ema.EMA``
                                                                   (which adds a warm-up
                                                                   and copies buffers)
mapping width           mapping_fmaps = 512 = dlatent_size         ``hidden_dim`` (default
                                                                   ``w_dim``)
truncation in training  forced off (``is_training``)               ``ValueError`` if psi != 1
                                                                   in training mode
fixed noise             per-layer non-trainable N(0, 1) variables  ``noise_const_<l>``
                        (``randomize_noise=False``)                buffers,
                                                                   ``noise_mode='const'``
per-layer noise         ``generate_figures.py`` zeroes the stored  ``noise_layers=`` (and
switches                noise outside a layer range: Fig. 5 uses   ``noise=`` per layer);
                        all, none, range(8, 18) (64-1024 px) and   :func:`noise_groups`
                        range(0, 8) (4-32 px)
======================  =========================================  ==========================

The paper's figures use the same layer ranges as :func:`style_groups` at 1024 px: Fig. 3
(style mixing) copies range(0, 4), range(4, 8) or range(8, 18) from source B.
Parameters of the course's G at 1024 px: 26,212,019 (the official growing G adds 7,608 in its
eight lower-resolution toRGB layers).

Both use: w_avg zero-initialised and updated in EVERY training-mode forward of G (the official
graph builds one update in the G loss and one in the D loss); one mixing crossover per
minibatch; IN statistics in float32 with eps 1e-8; every weight equalised (gain sqrt 2, 1 for
A, toRGB and D's last dense); biases zero. Paper's results: FFHQ FID 4.40 (traditional
baseline 8.04), CelebA-HQ 5.17; generator 26.2M trainable parameters (23.1M traditional).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nn.blur import Blur
from ganlab.nn.equalized import EqualizedConv2d, EqualizedLinear
from ganlab.nn.minibatch_std import MinibatchStdDev
from ganlab.nn.noise import NoiseInjection
from ganlab.nn.normalization import AdaIN, PixelNorm
from ganlab.nn.penalties import r1_penalty

RESOLUTIONS = tuple(2**k for k in range(3, 11))
"""Output resolutions the models accept: powers of 2 from 8 to 1024."""
Z_DIM = 512
"""Latent size (official ``latent_size``)."""
W_DIM = 512
"""Intermediate latent size (official ``dlatent_size``)."""
MAPPING_LAYERS = 8
"""Fully connected layers in the mapping network."""
MAPPING_LR_MUL = 0.01
"""Learning-rate multiplier of the mapping network (``mapping_lrmul``)."""
LRELU_SLOPE = 0.2
"""Leaky ReLU slope everywhere."""
FMAP_BASE = 8192
"""Width formula nf(stage) = min(FMAP_BASE / 2^stage, FMAP_MAX) (official ``fmap_base``)."""
FMAP_MAX = 512
"""Width cap (official ``fmap_max``)."""
BLUR_FILTER = (1, 2, 1)
"""The binomial low-pass filter after each upsampling (and before each downsampling in D)."""
STYLE_MIXING_PROB = 0.9
"""Probability of style mixing regularisation in a training minibatch."""
TRUNCATION_PSI = 0.7
"""The paper's truncation strength for its figures."""
TRUNCATION_CUTOFF = 8
"""Truncation applies to the layers l < 8 (4-32 px)."""
W_AVG_BETA = 0.995
"""Decay of the moving average of w (``dlatent_avg_beta``)."""
PSI_RANGE = (-1.0, 1.0)
"""Accepted psi: the paper's Fig. 8 sweeps psi from -1 (the 'anti-face') to 1."""
R1_GAMMA_PAPER = 10.0
"""R1 weight for FFHQ at 1024 px (``r1_gamma``)."""
R1_REFERENCE_RESOLUTION = 1024
"""The resolution at which R1_GAMMA_PAPER was set."""
ADAM_LR = 0.001
"""Adam learning rate of G and D up to 64 px (``G_lrate_base``, ``D_lrate_base``)."""
ADAM_BETAS = (0.0, 0.99)
"""Adam betas of G and D."""
ADAM_EPS = 1e-8
"""Adam epsilon of G and D."""
G_EMA_HALF_LIFE_KIMG = 10.0
"""Half-life of G's weight average in thousands of images (``G_smoothing_kimg``)."""
MBSTD_GROUP_SIZE = 4
"""Minibatch standard deviation group size in D."""
PAPER_G_PARAMS = 26.2e6
"""Trainable parameters of the style-based generator at 1024 px, as the paper states."""
STYLE_GROUP_PIXELS = {"coarse": (4, 8), "middle": (16, 32), "fine": (64, 1024)}
"""The paper's style bands (Sec. 3.1) as (smallest, largest) layer resolution in pixels."""
NOISE_MODES = ("random", "const", "none")
"""``random``: fresh N(0, 1) per call; ``const``: the stored per-layer draw; ``none``: off."""


# --------------------------------------------------------------------------------------
# Sizes and layer indices
# --------------------------------------------------------------------------------------


def resolution_log2(resolution: int) -> int:
    """log2(resolution) for a power of 2 in [8, 1024]; a ValueError naming them otherwise."""
    if isinstance(resolution, bool) or not isinstance(resolution, int):
        raise TypeError(f"resolution must be an int, got {type(resolution).__name__}")
    if resolution not in RESOLUTIONS:
        raise ValueError(
            f"resolution must be a power of 2 in [8, 1024], one of {RESOLUTIONS}; got {resolution}"
        )
    return int(math.log2(resolution))


def num_style_layers(resolution: int) -> int:
    """L = 2 log2(R) - 2: two layers (two style inputs) per resolution 4, 8, ..., R."""
    return 2 * resolution_log2(resolution) - 2


def layer_resolution(layer: int) -> int:
    """The feature-map size of synthesis layer ``layer``: 4, 4, 8, 8, 16, 16, ..."""
    if isinstance(layer, bool) or not isinstance(layer, int) or layer < 0:
        raise ValueError(f"layer must be an int >= 0, got {layer!r}")
    return 2 ** (layer // 2 + 2)


def layers_at(resolution: int, lo_px: int, hi_px: int) -> range:
    """The synthesis layers of a R-px generator whose maps are lo_px..hi_px (inclusive)."""
    n = num_style_layers(resolution)
    picked = [i for i in range(n) if lo_px <= layer_resolution(i) <= hi_px]
    return range(picked[0], picked[-1] + 1) if picked else range(0)


def style_groups(resolution: int, scheme: str = "course") -> dict[str, range]:
    """Layer index ranges of the coarse, middle and fine styles of a R-px generator.

    ``scheme="paper"``: the paper's pixel bands (:data:`STYLE_GROUP_PIXELS`): coarse 4-8 px,
    middle 16-32 px, fine 64 px and up; at R < 64 "fine" is EMPTY (and at R = 8 "middle" too).

    ``scheme="course"`` (default): the same bands when R >= 64. Below, the octaves 4..R are
    shared so that fine always holds the last resolution, coarse up to the first two and
    middle what is left: R = 32 -> coarse 4-8 px, middle 16, fine 32; R = 16 -> 4 / 8 / 16;
    R = 8 -> 4 / none / 8. At 1024 px: coarse = layers 0-3, middle 4-7, fine 8-17.
    """
    log2 = resolution_log2(resolution)
    if scheme == "paper":
        return {name: layers_at(resolution, *band) for name, band in STYLE_GROUP_PIXELS.items()}
    if scheme != "course":
        raise ValueError(f"scheme must be 'course' or 'paper', got {scheme!r}")
    octaves = log2 - 1  # 4, 8, ..., R
    coarse = max(1, min(2, octaves - 2))
    fine = max(1, octaves - 4)
    middle = octaves - coarse - fine
    bounds = [0, 2 * coarse, 2 * (coarse + middle), 2 * octaves]  # two layers per octave
    return {
        name: range(bounds[i], bounds[i + 1]) for i, name in enumerate(("coarse", "middle", "fine"))
    }


def noise_groups(resolution: int, scheme: str = "course") -> dict[str, range]:
    """The two noise bands of the paper's Fig. 5: "coarse" = every layer before the fine
    styles (4-32 px at R >= 64: range(0, 8)), "fine" = :func:`style_groups`' fine layers."""
    fine = style_groups(resolution, scheme)["fine"]
    if len(fine) == 0:  # scheme="paper" below 64 px: no fine layers
        return {"coarse": range(num_style_layers(resolution)), "fine": fine}
    return {"coarse": range(0, fine.start), "fine": fine}


def fmap_width(stage: int, fmap_base: int = FMAP_BASE, fmap_max: int = FMAP_MAX) -> int:
    """The official nf(stage) = min(int(fmap_base / 2^stage), fmap_max) (fmap_decay 1)."""
    width = min(int(fmap_base / 2.0**stage), fmap_max)
    if width < 1:
        raise ValueError(
            f"fmap_base={fmap_base} gives {width} channels at stage {stage} "
            f"(resolution {2 ** (stage + 1)} px); raise fmap_base"
        )
    return width


def r1_gamma(resolution: int) -> float:
    """The course's R1 weight: the paper's 10 at 1024 px scaled by the pixel count,
    gamma(R) = 10 (R / 1024)^2 (0.0098 at 32 px, 0.039 at 64 px)."""
    resolution_log2(resolution)
    return R1_GAMMA_PAPER * (resolution / R1_REFERENCE_RESOLUTION) ** 2


def g_ema_decay(batch_size: int, half_life_kimg: float = G_EMA_HALF_LIFE_KIMG) -> float:
    """Per-step decay of G's weight average: 0.5 ** (batch / (1000 half_life_kimg)).

    The official ``Gs_beta``: the average forgets half of its past every 10k images, whatever
    the minibatch (0.99778 at batch 32). Pass it to ``ganlab.train.ema.EMA(G, decay=...)``.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be an int >= 1, got {batch_size!r}")
    if not half_life_kimg > 0:
        raise ValueError(f"half_life_kimg must be > 0, got {half_life_kimg}")
    return 0.5 ** (batch_size / (1000.0 * half_life_kimg))


# --------------------------------------------------------------------------------------
# Style mixing and truncation (pure functions on ws)
# --------------------------------------------------------------------------------------


def _check_ws(ws, name: str = "ws") -> None:
    if not isinstance(ws, torch.Tensor) or not ws.is_floating_point() or ws.dim() != 3:
        raise ValueError(
            f"{name} must be a float tensor (B, L, w_dim), got "
            f"{type(ws).__name__} {tuple(getattr(ws, 'shape', ()))}"
        )


def check_crossover(crossover, num_layers: int) -> int:
    """crossover k must be an int in [0, L]: layers < k from the first w, >= k from the second."""
    if isinstance(crossover, bool) or not isinstance(crossover, int):
        raise TypeError(f"crossover must be an int layer index, got {type(crossover).__name__}")
    if not 0 <= crossover <= num_layers:
        raise ValueError(
            f"crossover must lie in [0, {num_layers}] for {num_layers} style layers (layers "
            f"< crossover take the first w, the others the second); got {crossover}"
        )
    return crossover


def mix_styles(ws1: torch.Tensor, ws2: torch.Tensor, crossover: int) -> torch.Tensor:
    """Style mixing at layer k: ws1[:, :k] then ws2[:, k:]. (B, L, w_dim) x 2 -> (B, L, w_dim).

    k = 4 takes the coarse styles (4-8 px) from ws1 and the rest from ws2.
    """
    _check_ws(ws1, "ws1")
    _check_ws(ws2, "ws2")
    if ws1.shape != ws2.shape:
        raise ValueError(
            f"ws1 and ws2 must have the same shape, got {tuple(ws1.shape)} and {tuple(ws2.shape)}"
        )
    k = check_crossover(crossover, ws1.shape[1])
    return torch.cat([ws1[:, :k], ws2[:, k:]], dim=1)


def check_psi(psi) -> float:
    """psi must be a finite number in PSI_RANGE ([-1, 1])."""
    if isinstance(psi, bool) or not isinstance(psi, numbers.Real):
        raise TypeError(f"psi must be a number, got {type(psi).__name__}")
    lo, hi = PSI_RANGE
    if not (math.isfinite(psi) and lo <= psi <= hi):
        raise ValueError(
            f"psi must lie in [{lo}, {hi}] (1 = no truncation, 0 = every w at w_avg, the "
            f"paper uses 0.7); got {psi}"
        )
    return float(psi)


def truncate(
    ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int = TRUNCATION_CUTOFF
) -> torch.Tensor:
    """Truncation trick in W: w_l' = w_avg + psi (w_l - w_avg) for the layers l < cutoff.

    ws (B, L, w_dim), w_avg (w_dim,) -> (B, L, w_dim). The layers >= cutoff are unchanged;
    psi = 1 (or cutoff = 0) is the identity, psi = 0 puts those layers at w_avg.
    """
    _check_ws(ws)
    psi = check_psi(psi)
    num_layers, w_dim = ws.shape[1], ws.shape[2]
    if not isinstance(w_avg, torch.Tensor) or w_avg.shape != (w_dim,):
        raise ValueError(
            f"w_avg must have shape ({w_dim},), got {tuple(getattr(w_avg, 'shape', ()))}"
        )
    if isinstance(cutoff, bool) or not isinstance(cutoff, int) or not 0 <= cutoff <= num_layers:
        raise ValueError(
            f"truncation cutoff must be an int in [0, {num_layers}] (layers < cutoff are "
            f"truncated), got {cutoff!r}"
        )
    coefs = torch.ones(num_layers, 1, dtype=ws.dtype, device=ws.device)  # (L, 1)
    coefs[:cutoff] = psi
    return w_avg.to(ws.dtype) + coefs * (ws - w_avg.to(ws.dtype))  # lerp(w_avg, ws, coefs)


# --------------------------------------------------------------------------------------
# Mapping network
# --------------------------------------------------------------------------------------


class MappingNetwork(nn.Module):
    """f: z (B, z_dim) -> PixelNorm -> num_layers x [EqualizedLinear, LReLU 0.2] -> w (B, w_dim).

    Every layer has gain sqrt 2 and the learning-rate multiplier ``lr_mul`` (0.01): its
    weights are stored 100x larger and scaled down at run time, so Adam moves them 100x
    slower than the synthesis network's. Hidden width ``hidden_dim`` (official 512 = w_dim).
    """

    def __init__(
        self,
        z_dim: int = Z_DIM,
        w_dim: int = W_DIM,
        num_layers: int = MAPPING_LAYERS,
        hidden_dim: int | None = None,
        lr_mul: float = MAPPING_LR_MUL,
    ) -> None:
        super().__init__()
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1 (the paper uses 8), got {num_layers}")
        hidden_dim = w_dim if hidden_dim is None else hidden_dim
        self.z_dim, self.w_dim, self.lr_mul = z_dim, w_dim, lr_mul
        self.norm = PixelNorm()
        sizes = [z_dim] + [hidden_dim] * (num_layers - 1) + [w_dim]
        self.layers = nn.ModuleList(
            EqualizedLinear(a, b, lr_mul=lr_mul) for a, b in zip(sizes, sizes[1:])
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() != 2:
            raise ValueError(
                f"z must be a float tensor (B, {self.z_dim}), got "
                f"{type(z).__name__} {tuple(getattr(z, 'shape', ()))}"
            )
        if z.shape[1] != self.z_dim:
            raise ValueError(f"z must be (B, {self.z_dim}), got {tuple(z.shape)}")
        x = self.norm(z)  # (B, z_dim), unit RMS
        for layer in self.layers:
            x = F.leaky_relu(layer(x), LRELU_SLOPE)  # (B, hidden) ... (B, w_dim)
        return x


# --------------------------------------------------------------------------------------
# Synthesis network
# --------------------------------------------------------------------------------------


class SynthesisLayer(nn.Module):
    """One synthesis layer: [up x2 -> conv3x3 -> blur | conv3x3 | nothing] -> epilogue.

    ``kind``: "const" (layer 0: the epilogue only, on the constant), "conv" (the second layer
    of a resolution), "up" (the first layer of a resolution > 4: nearest upsample, conv,
    [1, 2, 1] blur: the official order). The epilogue is the official ``layer_epilogue``:
    noise (B scale init 0) -> bias -> LReLU 0.2 -> IN -> style (1 + y_s), y_b from A(w).
    x (B, in_channels, r_in, r_in), w (B, w_dim) -> (B, out_channels, r, r).
    """

    KINDS = ("const", "conv", "up")

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        kind: str,
        blur_filter: Sequence[float] | None = BLUR_FILTER,
    ) -> None:
        super().__init__()
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        if kind == "const" and in_channels != out_channels:
            raise ValueError("a 'const' layer has no conv: in_channels must equal out_channels")
        self.kind = kind
        self.upsample = nn.Upsample(scale_factor=2, mode="nearest") if kind == "up" else None
        self.conv = (
            None if kind == "const" else EqualizedConv2d(in_channels, out_channels, 3, bias=False)
        )
        self.blur = Blur(blur_filter) if kind == "up" and blur_filter else None
        self.noise = NoiseInjection(out_channels)  # B in the paper, per channel, init 0
        self.bias = nn.Parameter(torch.zeros(out_channels))  # applied after the noise
        self.adain = AdaIN.stylegan(out_channels, w_dim)  # IN, then A(w) -> (1 + y_s), y_b

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise: torch.Tensor | None = None,
        *,
        use_noise: bool = True,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        if self.upsample is not None:
            x = self.upsample(x)  # (B, C_in, 2r, 2r), nearest
        if self.conv is not None:
            x = self.conv(x)  # (B, C_out, r, r)
        if self.blur is not None:
            x = self.blur(x)  # [1, 2, 1] low-pass, same size
        if use_noise:
            x = self.noise(x, noise, generator)  # + B (C,) * n (B, 1, r, r)
        x = F.leaky_relu(x + self.bias.view(1, -1, 1, 1), LRELU_SLOPE)
        return self.adain(x, w)  # (1 + y_s) IN(x) + y_b


class SynthesisNetwork(nn.Module):
    """g: ws (B, L, w_dim) -> image (B, img_channels, R, R), from a learned constant.

    ``self.const`` (1, nf(1), 4, 4) starts at ones; ``self.layers[l]`` takes style ws[:, l];
    the noise of layer l is (B, 1, r_l, r_l) with r_l = ``layer_resolution(l)``. There is no
    z input: a sample is determined by its ws and its noise.
    """

    def __init__(
        self,
        resolution: int = 1024,
        w_dim: int = W_DIM,
        fmap_base: int = FMAP_BASE,
        fmap_max: int = FMAP_MAX,
        img_channels: int = 3,
        blur_filter: Sequence[float] | None = BLUR_FILTER,
    ) -> None:
        super().__init__()
        log2 = resolution_log2(resolution)
        self.resolution, self.w_dim, self.img_channels = resolution, w_dim, img_channels
        self.num_layers = num_style_layers(resolution)
        width = fmap_width(1, fmap_base, fmap_max)
        self.const = nn.Parameter(torch.ones(1, width, 4, 4))  # the learned constant input
        layers = [
            SynthesisLayer(width, width, w_dim, "const"),
            SynthesisLayer(width, width, w_dim, "conv"),
        ]
        for res in range(3, log2 + 1):  # 8 px .. R
            out = fmap_width(res - 1, fmap_base, fmap_max)
            layers.append(SynthesisLayer(width, out, w_dim, "up", blur_filter))
            layers.append(SynthesisLayer(out, out, w_dim, "conv"))
            width = out
        self.layers = nn.ModuleList(layers)
        self.to_rgb = EqualizedConv2d(width, img_channels, 1, gain=1.0)  # linear output
        for i in range(self.num_layers):  # the official noise variables (randomize_noise=False)
            r = layer_resolution(i)
            self.register_buffer(f"noise_const_{i}", torch.randn(1, 1, r, r))

    def const_noise(self, layer: int) -> torch.Tensor:
        """The stored N(0, 1) noise image (1, 1, r, r) of ``layer`` (``noise_mode='const'``)."""
        return getattr(self, f"noise_const_{layer}")

    def _layer_noise(
        self, noise_mode: str, noise, noise_layers
    ) -> tuple[list[torch.Tensor | None], list[bool]]:
        """Resolve the per-layer noise: (explicit tensors or None, switched on)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        n = self.num_layers
        if noise is None:
            noise = [None] * n
        elif isinstance(noise, torch.Tensor) or len(noise) != n:
            raise ValueError(
                f"noise must be a sequence of {n} entries (a (B|1, 1, r, r) tensor or None per "
                f"layer), got {type(noise).__name__} of length {len(noise)}"
            )
        on = [noise_mode != "none"] * n
        if noise_layers is not None:
            chosen = set(noise_layers)
            bad = [i for i in chosen if isinstance(i, bool) or not isinstance(i, int)
                   or not 0 <= i < n]  # fmt: skip
            if bad:
                raise ValueError(f"noise_layers must be layer indices in [0, {n}), got {bad}")
            on = [flag and i in chosen for i, flag in enumerate(on)]
        resolved = list(noise)
        if noise_mode == "const":
            resolved = [self.const_noise(i) if x is None else x for i, x in enumerate(noise)]
        # an explicit noise tensor is always used; otherwise a switched-off layer gets none
        use = [flag or x is not None for flag, x in zip(on, noise)]
        return resolved, use

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "random",
        noise: Sequence[torch.Tensor | None] | None = None,
        noise_layers: Iterable[int] | None = None,
        generator: torch.Generator | None = None,
        return_activations: bool = False,
    ) -> torch.Tensor | tuple[torch.Tensor, list[torch.Tensor]]:
        """ws (B, L, w_dim) or (B, w_dim) (one w for every layer) -> image (B, C, R, R).

        Noise per layer l: ``noise[l]`` if given (a (B|1, 1, r, r) tensor; always used);
        else nothing if ``noise_mode='none'`` or l is not in ``noise_layers`` (when given);
        else a fresh draw (``'random'``, from ``generator`` on ws's device if given) or the
        stored draw (``'const'``). ``return_activations``: also the list of the L layer
        outputs (B, C_l, r_l, r_l), after their AdaIN.
        """
        if isinstance(ws, torch.Tensor) and ws.dim() == 2 and ws.is_floating_point():
            ws = ws[:, None, :].expand(-1, self.num_layers, -1)  # (B, w_dim) -> (B, L, w_dim)
        _check_ws(ws)
        if ws.shape[1:] != (self.num_layers, self.w_dim):
            raise ValueError(
                f"ws must be (B, {self.num_layers}, {self.w_dim}) for a {self.resolution}-px "
                f"synthesis network, got {tuple(ws.shape)}"
            )
        layer_noise, use_noise = self._layer_noise(noise_mode, noise, noise_layers)
        x = self.const.expand(ws.shape[0], -1, -1, -1).to(ws.dtype)  # (B, nf(1), 4, 4)
        activations = []
        for i, layer in enumerate(self.layers):
            x = layer(x, ws[:, i], layer_noise[i], use_noise=use_noise[i], generator=generator)
            activations.append(x)
        image = self.to_rgb(x)  # (B, img_channels, R, R)
        return (image, activations) if return_activations else image


# --------------------------------------------------------------------------------------
# Generator: mapping + mixing + truncation + synthesis
# --------------------------------------------------------------------------------------


class Generator(nn.Module):
    """G = g(f(z)) with style mixing regularisation (training), w_avg and truncation (eval).

    Attributes: ``mapping`` (:class:`MappingNetwork`), ``synthesis``
    (:class:`SynthesisNetwork`), buffer ``w_avg`` (w_dim,), ``num_layers`` L.
    In ``train()`` mode every forward updates w_avg and, with probability
    ``style_mixing_prob``, mixes in a second random z at a random crossover; truncation is off.
    """

    def __init__(
        self,
        resolution: int = 1024,
        z_dim: int = Z_DIM,
        w_dim: int = W_DIM,
        mapping_layers: int = MAPPING_LAYERS,
        mapping_hidden: int | None = None,
        mapping_lr_mul: float = MAPPING_LR_MUL,
        fmap_base: int = FMAP_BASE,
        fmap_max: int = FMAP_MAX,
        img_channels: int = 3,
        style_mixing_prob: float = STYLE_MIXING_PROB,
        w_avg_beta: float = W_AVG_BETA,
        truncation_cutoff: int = TRUNCATION_CUTOFF,
        blur_filter: Sequence[float] | None = BLUR_FILTER,
    ) -> None:
        super().__init__()
        if not 0.0 <= style_mixing_prob <= 1.0:
            raise ValueError(f"style_mixing_prob must lie in [0, 1], got {style_mixing_prob}")
        if not 0.0 <= w_avg_beta < 1.0:
            raise ValueError(f"w_avg_beta must lie in [0, 1), got {w_avg_beta}")
        if (
            isinstance(truncation_cutoff, bool)
            or not isinstance(truncation_cutoff, int)
            or (truncation_cutoff < 0)
        ):
            raise ValueError(f"truncation_cutoff must be an int >= 0, got {truncation_cutoff!r}")
        self.mapping = MappingNetwork(z_dim, w_dim, mapping_layers, mapping_hidden, mapping_lr_mul)
        self.synthesis = SynthesisNetwork(
            resolution, w_dim, fmap_base, fmap_max, img_channels, blur_filter
        )
        self.resolution, self.z_dim, self.w_dim = resolution, z_dim, w_dim
        self.num_layers = self.synthesis.num_layers
        self.style_mixing_prob, self.w_avg_beta = float(style_mixing_prob), float(w_avg_beta)
        self.truncation_cutoff = min(int(truncation_cutoff), self.num_layers)
        self.register_buffer("w_avg", torch.zeros(w_dim))  # the official dlatent_avg

    def sample_z(
        self, n: int, device=None, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """z ~ N(0, I): (n, z_dim)."""
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    def _check_z(self, z, name: str = "z") -> None:
        if not isinstance(z, torch.Tensor) or not z.is_floating_point() or z.dim() != 2:
            raise ValueError(
                f"{name} must be a float tensor (B, {self.z_dim}), got "
                f"{type(z).__name__} {tuple(getattr(z, 'shape', ()))}"
            )
        if z.shape[1] != self.z_dim:
            raise ValueError(f"{name} must be (B, {self.z_dim}), got {tuple(z.shape)}")

    @torch.no_grad()
    def _update_w_avg(self, w: torch.Tensor) -> None:
        """w_avg <- beta w_avg + (1 - beta) mean_b(w) (official lerp(batch_avg, avg, beta))."""
        self.w_avg.lerp_(w.detach().float().mean(dim=0), 1.0 - self.w_avg_beta)

    def _random_mixing(
        self, ws1: torch.Tensor, ws2: torch.Tensor, generator: torch.Generator | None
    ) -> torch.Tensor:
        """With prob p, cutoff k ~ U{1, ..., L-1}, else k = L (no mixing); one k per batch.

        Drawn on ws's device with tensor ops (no host sync), as the official graph does.
        """
        n, dev = self.num_layers, ws1.device
        coin = torch.rand((), generator=generator, device=dev)
        k = torch.randint(1, n, (), generator=generator, device=dev)
        k = torch.where(coin < self.style_mixing_prob, k, torch.full_like(k, n))
        take_first = torch.arange(n, device=dev) < k  # (L,)
        return torch.where(take_first[None, :, None], ws1, ws2)

    def styles(
        self,
        z: torch.Tensor,
        psi: float = 1.0,
        truncation_cutoff: int | None = None,
        mix_z: torch.Tensor | None = None,
        crossover: int | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """z (B, z_dim) -> ws (B, L, w_dim): mapping, broadcast, mixing, truncation.

        Explicit mixing: ``mix_z`` (B, z_dim) with ``crossover`` k in [0, L] gives layers < k
        the w of z and layers >= k the w of mix_z. Without them, training mode mixes at random
        (probability ``style_mixing_prob``, a fresh z from ``generator``). Truncation (eval
        only): psi on the layers < ``truncation_cutoff`` (default ``self.truncation_cutoff``,
        8 or L if smaller) toward ``w_avg``.
        """
        self._check_z(z)
        psi = check_psi(psi)
        if (mix_z is None) != (crossover is None):
            raise ValueError("explicit style mixing needs both mix_z and crossover (or neither)")
        if mix_z is not None:
            self._check_z(mix_z, "mix_z")
            if len(mix_z) != len(z):
                raise ValueError(f"mix_z must have z's batch size {len(z)}, got {len(mix_z)}")
            check_crossover(crossover, self.num_layers)
        if self.training and psi != 1.0:
            raise ValueError(
                "truncation is off during training (as the official G_style); call .eval() "
                f"to sample with psi={psi}"
            )
        cutoff = self.truncation_cutoff if truncation_cutoff is None else truncation_cutoff
        b, n = len(z), self.num_layers
        mixing = mix_z is not None or (self.training and self.style_mixing_prob > 0)
        if mixing:
            if mix_z is None:
                mix_z = torch.randn(z.shape, generator=generator, device=z.device, dtype=z.dtype)
            w_both = self.mapping(torch.cat([z, mix_z]))  # one pass for both: (2B, w_dim)
            w, w2 = w_both[:b], w_both[b:]
        else:
            w, w2 = self.mapping(z), None  # (B, w_dim)
        if self.training:
            self._update_w_avg(w)  # from the first latents, before mixing (official)
        ws = w[:, None, :].expand(-1, n, -1)  # (B, L, w_dim)
        if w2 is not None:
            ws2 = w2[:, None, :].expand(-1, n, -1)
            ws = mix_styles(ws, ws2, crossover) if crossover is not None else (
                self._random_mixing(ws, ws2, generator))  # fmt: skip
        if psi != 1.0:
            ws = truncate(ws, self.w_avg, psi, cutoff)
        elif truncation_cutoff is not None and not 0 <= truncation_cutoff <= n:
            raise ValueError(f"truncation_cutoff must lie in [0, {n}], got {truncation_cutoff}")
        return ws

    def forward(
        self,
        z: torch.Tensor,
        psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "random",
        mix_z: torch.Tensor | None = None,
        crossover: int | None = None,
        return_ws: bool = False,
        *,
        noise: Sequence[torch.Tensor | None] | None = None,
        noise_layers: Iterable[int] | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """z (B, z_dim) -> images (B, img_channels, R, R) [, ws (B, L, w_dim)].

        See :meth:`styles` for psi, truncation_cutoff, mix_z, crossover and
        :meth:`SynthesisNetwork.forward` for noise_mode, noise and noise_layers. ``generator``
        draws the mixing latent, crossover and random noise (on z's device).
        """
        ws = self.styles(z, psi, truncation_cutoff, mix_z, crossover, generator)
        images = self.synthesis(ws, noise_mode, noise, noise_layers, generator)
        return (images, ws) if return_ws else images


# --------------------------------------------------------------------------------------
# Discriminator: PGGAN's, with the blur
# --------------------------------------------------------------------------------------


class DiscriminatorBlock(nn.Module):
    """D_basic's block at r > 4 px: conv3x3 -> LReLU -> blur -> conv3x3 -> 2x2 mean -> LReLU.

    (B, in_channels, r, r) -> (B, out_channels, r/2, r/2). The bias of the second conv is
    added before the 2x2 mean (the official adds it after; a mean of a constant is the same).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        blur_filter: Sequence[float] | None = BLUR_FILTER,
    ) -> None:
        super().__init__()
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3)
        self.blur = Blur(blur_filter) if blur_filter else None
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3)
        self.downsample = nn.AvgPool2d(2)  # the official 2x2 box downscale2d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.leaky_relu(self.conv0(x), LRELU_SLOPE)  # (B, C_in, r, r)
        if self.blur is not None:
            x = self.blur(x)
        return F.leaky_relu(self.downsample(self.conv1(x)), LRELU_SLOPE)  # (B, C_out, r/2, r/2)


class Discriminator(nn.Module):
    """StyleGAN's D, which is PGGAN's D (``D_paper``) plus a [1, 2, 1] blur before each
    downsampling, at one fixed resolution (no growing, one fromRGB).

    image (B, img_channels, R, R) -> fromRGB 1x1, LReLU -> blocks down to 4x4 -> minibatch
    stddev (group 4, +1 map) -> conv3x3 nf(1), LReLU -> dense nf(0), LReLU -> dense 1 (gain 1)
    -> scores (B,) (logits). Equalised LR everywhere. The batch must be a multiple of
    min(group size, batch) (the minibatch stddev's rule).
    """

    def __init__(
        self,
        resolution: int = 1024,
        img_channels: int = 3,
        fmap_base: int = FMAP_BASE,
        fmap_max: int = FMAP_MAX,
        mbstd_group_size: int = MBSTD_GROUP_SIZE,
        mbstd_num_features: int = 1,
        blur_filter: Sequence[float] | None = BLUR_FILTER,
    ) -> None:
        super().__init__()
        log2 = resolution_log2(resolution)
        self.resolution, self.img_channels = resolution, img_channels

        def nf(stage: int) -> int:
            return fmap_width(stage, fmap_base, fmap_max)

        self.from_rgb = EqualizedConv2d(img_channels, nf(log2 - 1), 1)
        self.blocks = nn.ModuleList(
            DiscriminatorBlock(nf(res - 1), nf(res - 2), blur_filter)
            for res in range(log2, 2, -1)  # R .. 8 px
        )
        self.mbstd = MinibatchStdDev(mbstd_group_size, mbstd_num_features)
        self.conv = EqualizedConv2d(nf(1) + mbstd_num_features, nf(1), 3)
        self.dense0 = EqualizedLinear(nf(1) * 4 * 4, nf(0))
        self.dense1 = EqualizedLinear(nf(0), 1, gain=1.0)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        r, c = self.resolution, self.img_channels
        if (
            not isinstance(images, torch.Tensor)
            or not images.is_floating_point()
            or (images.dim() != 4 or images.shape[1:] != (c, r, r))
        ):
            raise ValueError(
                f"images must be a float tensor (B, {c}, {r}, {r}), got "
                f"{type(images).__name__} {tuple(getattr(images, 'shape', ()))}"
            )
        x = F.leaky_relu(self.from_rgb(images), LRELU_SLOPE)  # (B, nf(log2 R - 1), R, R)
        for block in self.blocks:
            x = block(x)  # halves the size
        x = self.mbstd(x)  # (B, nf(1) + 1, 4, 4)
        x = F.leaky_relu(self.conv(x), LRELU_SLOPE)  # (B, nf(1), 4, 4)
        x = F.leaky_relu(self.dense0(x.flatten(1)), LRELU_SLOPE)  # (B, nf(0))
        return self.dense1(x).squeeze(1)  # (B,)


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


def _check_scores(x, name: str) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor of logits (B,), got {type(x).__name__}")
    if x.dim() != 1:
        raise ValueError(f"{name} must have shape (B,) (one logit per image), got {tuple(x.shape)}")


def generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """Non-saturating logistic loss: mean softplus(-D(G(z))) = -log sigmoid(D(G(z)))."""
    _check_scores(fake_scores, "fake_scores")
    return F.softplus(-fake_scores.float()).mean()


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """Logistic loss: mean softplus(D(fake)) + mean softplus(-D(real)); no penalty."""
    _check_scores(real_scores, "real_scores")
    _check_scores(fake_scores, "fake_scores")
    return F.softplus(fake_scores.float()).mean() + F.softplus(-real_scores.float()).mean()


def discriminator_loss_r1(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor, gamma: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The official ``D_logistic_simplegp``: logistic loss + gamma/2 mean_b ||grad D(real)_b||^2.

    real, fake (B, C, R, R) (``fake`` is detached); returns (loss, r1), both float32 scalars,
    r1 already multiplied by gamma / 2. The real scores come from R1's own forward (float32,
    autocast off, ``ganlab.nn.r1_penalty``), so D runs once on the reals. gamma = 0 skips R1.
    """
    if not gamma >= 0:
        raise ValueError(f"gamma must be >= 0 (10 at 1024 px; r1_gamma(R) below), got {gamma}")
    if gamma > 0:
        r1, real_scores = r1_penalty(discriminator, real, gamma, return_scores=True)
    else:
        real_scores = discriminator(real)
        r1 = real_scores.new_zeros((), dtype=torch.float32)
    fake_scores = discriminator(fake.detach())
    return discriminator_loss(real_scores, fake_scores) + r1, r1
