r"""StarGAN v2: Choi, Uh, Yoo & Ha, *StarGAN v2: Diverse Image Synthesis for Multiple Domains*,
CVPR 2020.

One generator translates an image x into ANY of K domains (cat, dog, wild) and, within a
domain, into many styles. The domain and the style travel together in a style code s:

.. math::
    \tilde s = F_{\tilde y}(z) \quad \text{(latent-guided)}, \qquad
    \tilde s = E_{\tilde y}(x_{ref}) \quad \text{(reference-guided)}, \qquad
    \hat x = G(x, \tilde s)

:math:`F` (mapping network) and :math:`E` (style encoder) have one output head per domain;
the subscript picks the head of domain :math:`\tilde y`. The discriminator :math:`D` is
multi-task: one real/fake logit per domain, and only :math:`D_y` is used for an image of
domain y.

Losses (paper Sec. 2.2, Eq. 1-5; the form below is the official solver's)::

    L_adv = E[log D_y(x)] + E[log(1 - D_y~(G(x, s~)))]    non-saturating, BCE with logits
    L_sty = E[ |s~ - E_y~(G(x, s~))|_1 ]                  style reconstruction
    L_ds  = E[ |G(x, s~_1) - G(x, s~_2)|_1 ]              diversity sensitive, s~_i = F_y~(z_i)
    L_cyc = E[ |x - G(G(x, s~), s^)|_1 ],  s^ = E_y(x)    cycle through the SOURCE style
    R_1   = 1/2 E[ |grad_x D_y(x)|_2^2 ]                  on reals only (appendix, gamma 1)

    min_{G,F,E} max_D  L_adv + l_sty L_sty - l_ds L_ds + l_cyc L_cyc    (D: + l_reg R_1)

``|.|_1`` is the mean absolute difference (``torch.mean(torch.abs(...))``), the second image
of the diversity term is DETACHED (official), and l_ds decays linearly to 0 over ``ds_iter``
steps (:func:`lambda_ds_at`). Each iteration (:func:`train_step`, the official ``Solver.train``)
takes two D steps, with latent- then reference-guided fakes, then a latent-guided step of
G, F and E together and a reference-guided step of G alone, then the EMA of G, F and E.

Shapes (official AFHQ: S = 256, K = 3, ``dim_in`` = 2**14 / S = 64, cap 512)::

    ResBlk       x (B, C, H, W) -> [(sc(x) + res(x)) / sqrt 2] (B, C', H/2 or H, ...)
                 res: [IN] LReLU conv3x3 [avg-pool] [IN] LReLU conv3x3 (C -> C'), sc: [1x1] [pool]
    AdainResBlk  x (B, C, H, W), s (B, 64) -> (B, C', 2H or H, ...)
                 res: AdaIN(s) LReLU [nearest x2] conv3x3 AdaIN(s) LReLU conv3x3, sc: [x2] [1x1]
    G   x (B, 3, 256, 256) -> conv3x3 (B, 64, 256, 256)
        -> 4 down ResBlks + IN (B, 128, 128^2) (B, 256, 64^2) (B, 512, 32^2) (B, 512, 16^2)
        -> 2 bottleneck ResBlks + IN (B, 512, 16, 16)
        -> 2 bottleneck AdainResBlks (B, 512, 16, 16) -> 4 up AdainResBlks (mirror) (B, 64, 256^2)
        -> IN (affine) + LReLU + conv1x1 -> (B, 3, 256, 256)  (no tanh: the output is unbounded)
    F   z (B, 16) -> 4 x [FC 512, ReLU] -> K heads of 3 x [FC 512, ReLU] + FC 64
        -> (B, K, 64) -> row y -> s (B, 64)
    E   x (B, 3, 256, 256) -> conv3x3 (B, 64, ...) -> 6 down ResBlks (64, 128, 256, 512, 512,
        512, 512 channels) -> (B, 512, 4, 4) -> LReLU, conv4x4 (B, 512, 1, 1), LReLU
        -> K linear heads (B, K, 64) -> row y -> s (B, 64)
    D   the same trunk as E -> conv1x1 (B, K, 1, 1) -> (B, K) -> column y -> logits (B,)

Parameter counts (official code, counted on the meta device; CelebA-HQ matches the
``Number of parameters`` log quoted in clovaai/stargan-v2 issue #29): CelebA-HQ (K = 2,
w_hpf 1, one extra down/up block) G 43,467,395, F 2,438,272, E 20,916,928, D 20,852,290;
AFHQ (K = 3, w_hpf 0) G 33,892,995, F 3,259,072, E 20,949,760, D 20,852,803. The classes
here give exactly these numbers (``tests/test_stargan_v2_model.py``).

Deviations from the paper and the official code (clovaai/stargan-v2):

=====================  ===========================================  ==========================
what                   official                                     course
=====================  ===========================================  ==========================
image size             256 (CelebA-HQ, AFHQ)                        any power of 2 >= 16, set
                                                                    by the chapter's configs
channel widths         ``dim_in = 2**14 // S``, each next width     ``dim_in`` and
                       ``min(2 w, 512)``; the cap spares the first  ``max_conv_dim`` arguments;
                       width, so at 32 px EVERY layer is 512 wide   the cap applies to the
                       (G 28,740,099, E 18,466,496, D 18,369,539    first width too (same
                       params, K = 3)                               nets for S >= 32)
batch size             8 (``main.py``); 4 trains badly (maintainer  8 (``BATCH_SIZE``);
                       in issue #40: "use batch_size >= 8";         :func:`train_step` warns
                       issue #101)                                  below it
``w_hpf`` high-pass    ``w_hpf`` 1 for CelebA-HQ: face-landmark     left out (no landmark
                       (FAN) masks add high-passed encoder          network); ``repeat_num``
                       features to the decoder, one more down/up    rebuilds its layout for
                       block; 0 for AFHQ                            the parameter count
iterations             100k, ``ds_iter`` 100k                       the chapter's config;
                                                                    ``ds_iter`` = its length
lambda_ds decay        ``lambda_ds -= l0 / ds_iter`` while > 0      ``l0 max(0, 1 - t /
                       (float drift may end one step negative)      ds_iter)``
lambda_ds              1 CelebA-HQ (``main.py`` default), 2 AFHQ    1; ``LossWeights.afhq()``
                                                                    for 2
F hidden width         512 hard-coded (``--hidden_dim`` unused)     ``hidden_dim``, 512
from_rgb               conv3x3 (FIDELITY: "conv")                   conv3x3; to_rgb 1x1
EMA (G, F, E)          ``lerp(p, p_ema, 0.999)`` from step 1,       ``ganlab.train.ema.EMA``
                       copies taken BEFORE He init (PyTorch         0.999 with warm-up
                       default init)                                min(beta, (1+t)/(10+t)),
                                                                    copies of the He-init nets
idle nets in a step    gradients computed, then not stepped (D in   frozen
                       G steps, F and E in the reference G step)    (``requires_grad``): the
                                                                    same updates, less work
R1 precision           whatever the forward runs in                 fp32, autocast off
                                                                    (``ganlab.nn.r1_penalty``)
loss parts             ``.item()`` floats (a host sync each)        detached 0-d tensors
loss arithmetic        the forward's dtype                          float32 (bf16 autocast on
                                                                    CUDA: logits, L1 terms)
label range check      none: a bad label fails in the indexing      on CPU tensors only (no
                       (IndexError; a device assert on CUDA)        GPU host sync in a step)
G, F, E for synthesis  three nets, three EMA copies                 also :class:`Translator`
                                                                    (G, F, E in one module:
                                                                    the course loop averages
                                                                    and exports it)
domain labels y        LongTensor (B,)                              LongTensor (B,) or an int
=====================  ===========================================  ==========================

Optimisers (:func:`build_optimizers`, as the official solver): Adam, lr 1e-4 for G, E and D,
1e-6 for F, betas (0, 0.99), weight decay 1e-4 (coupled L2, ``torch.optim.Adam``). Init: He
normal (fan_in, ReLU gain) on every conv and linear weight, biases 0 (:func:`he_init`).

Paper / official results (latent FID / LPIPS, reference FID / LPIPS; README of the official
code, 10 outputs per source for every source != target pair, FID against the target
domain's training images, LPIPS among the 10): CelebA-HQ 13.73 / 0.4515, 23.84 / 0.3880;
AFHQ 16.18 / 0.4501, 19.78 / 0.4315 (``PAPER_RESULTS``, :func:`evaluation_pairs`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nn.normalization import AdaIN
from ganlab.nn.penalties import r1_penalty
from ganlab.train.ema import EMA

LATENT_DIM = 16
"""Size of z (``--latent_dim``)."""
STYLE_DIM = 64
"""Size of the style code s (``--style_dim``)."""
HIDDEN_DIM = 512
"""Width of the mapping network's layers (hard-coded 512 in the official model)."""
MAX_CONV_DIM = 512
"""Official cap on the conv widths."""
BATCH_SIZE = 8
"""Official batch size; the maintainers report batch 4 as unstable (issues #40, #101)."""
LR = 1e-4
"""Adam learning rate of G, E and D (``--lr``)."""
F_LR = 1e-6
"""Adam learning rate of the mapping network F (``--f_lr``): 100x smaller."""
BETAS = (0.0, 0.99)
"""Adam betas (``--beta1``, ``--beta2``)."""
WEIGHT_DECAY = 1e-4
"""Adam's (coupled, L2) weight decay on every net (``--weight_decay``)."""
EMA_BETA = 0.999
"""Decay of the moving averages of G, F and E used for evaluation."""
DS_ITER = 100_000
"""Official number of steps over which lambda_ds decays to 0 (= ``--total_iters``)."""
TOTAL_ITERS = 100_000
"""Official training length in iterations."""
LAMBDA_DS = {"celeba_hq": 1.0, "afhq": 2.0}
"""Initial diversity-sensitive weight per dataset (official README's training commands)."""
NUM_OUTS_PER_DOMAIN = 10
"""Evaluation: outputs per source image and target domain (``--num_outs_per_domain``)."""
PAPER_RESULTS = {
    "celeba_hq": {
        "latent_fid": 13.73,
        "latent_lpips": 0.4515,
        "reference_fid": 23.84,
        "reference_lpips": 0.3880,
    },
    "afhq": {
        "latent_fid": 16.18,
        "latent_lpips": 0.4501,
        "reference_fid": 19.78,
        "reference_lpips": 0.4315,
    },
}
"""The official README's FID / LPIPS of the released models (the paper's Table 2/3 protocol)."""

NET_NAMES = ("generator", "mapping_network", "style_encoder", "discriminator")
"""The four trained nets, by the official names (the paper's G, F, E, D)."""
EMA_NET_NAMES = ("generator", "mapping_network", "style_encoder")
"""The nets with an EMA copy (not D)."""


# --------------------------------------------------------------------------------------
# Init and checks
# --------------------------------------------------------------------------------------


def he_init(module: nn.Module) -> None:
    """The official ``he_init``: conv and linear weights N(0, 2 / fan_in), biases 0.

    Use with ``net.apply(he_init)``; InstanceNorm's affine parameters keep (1, 0).
    """
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.kaiming_normal_(module.weight, mode="fan_in", nonlinearity="relu")
        if module.bias is not None:
            nn.init.zeros_(module.bias)


def official_dim_in(img_size: int) -> int:
    """The official first width, ``2**14 // img_size``: 64 at 256 px, 512 at 32 px."""
    return 2**14 // _check_img_size(img_size)


def _check_img_size(img_size: int) -> int:
    ok = isinstance(img_size, int) and img_size >= 16 and img_size & (img_size - 1) == 0
    if not ok:
        raise ValueError(f"img_size must be a power of 2 >= 16 (16, 32, ...), got {img_size!r}")
    return img_size


def _widths(img_size: int, dim_in: int | None, max_conv_dim: int, n: int) -> list[int]:
    """[w_0, ..., w_n]: w_0 = min(dim_in, cap) (official dim_in: 2**14 // S),
    w_{i+1} = min(2 w_i, cap)."""
    if dim_in is None:
        dim_in = official_dim_in(img_size)
    if not (isinstance(dim_in, int) and dim_in >= 1):
        raise ValueError(f"dim_in must be an int >= 1 or None (2**14 // S), got {dim_in!r}")
    if not (isinstance(max_conv_dim, int) and max_conv_dim >= 1):
        raise ValueError(f"max_conv_dim must be an int >= 1, got {max_conv_dim!r}")
    widths = [min(dim_in, max_conv_dim)]
    for _ in range(n):
        widths.append(min(2 * widths[-1], max_conv_dim))
    return widths


def _check_images(x, size: int, name: str = "x") -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor (B, 3, {size}, {size}), got {type(x).__name__} "
            f"{getattr(x, 'dtype', '')}"
        )
    if x.dim() != 4 or tuple(x.shape[1:]) != (3, size, size):
        raise ValueError(f"{name} must have shape (B, 3, {size}, {size}), got {tuple(x.shape)}")


def _check_vectors(v, batch: int | None, dim: int, name: str) -> None:
    if not isinstance(v, torch.Tensor) or not v.is_floating_point():
        raise TypeError(f"{name} must be a float tensor (B, {dim}), got {type(v).__name__}")
    if v.dim() != 2 or v.shape[1] != dim or (batch is not None and len(v) != batch):
        want = "B" if batch is None else str(batch)
        raise ValueError(f"{name} must have shape ({want}, {dim}), got {tuple(v.shape)}")


def domain_labels(y, batch: int, num_domains: int, check_range: bool = True) -> torch.Tensor:
    """y: an int (every sample in that domain) or an integer tensor (B,) -> LongTensor (B,).

    ``check_range`` reads the values (a host sync on a GPU); the nets skip it for GPU tensors
    in training mode, the losses check once per call.
    """
    if isinstance(y, bool) or not isinstance(y, (int, torch.Tensor)):
        raise TypeError(f"domain labels y must be an int or a LongTensor (B,), got {type(y)}")
    if isinstance(y, int):
        if not 0 <= y < num_domains:
            raise ValueError(f"domain index must be in [0, {num_domains}), got {y}")
        return torch.full((batch,), y, dtype=torch.long)
    if y.is_floating_point() or y.is_complex() or y.dtype == torch.bool:
        raise TypeError(f"domain labels y must be an integer tensor (B,), got dtype {y.dtype}")
    if y.dim() != 1 or len(y) != batch:
        raise ValueError(f"domain labels y must have shape ({batch},), got {tuple(y.shape)}")
    if check_range and y.numel() and not torch.compiler.is_compiling():
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= num_domains:
            raise ValueError(
                f"domain indices must be in [0, {num_domains}), got values in [{lo}, {hi}]"
            )
    return y.long()


def _pick(out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """out (B, K, ...) , y (B,) -> out[b, y_b] (B, ...): the head of each sample's domain."""
    return out[torch.arange(len(out), device=out.device), y.to(out.device)]


# --------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------


class ResBlk(nn.Module):
    """Pre-activation residual block of the encoder, E and D (official ``ResBlk``).

    x (B, dim_in, H, W) -> (B, dim_out, H', W'), H' = H/2 with ``downsample`` else H:

        res(x) = conv3x3(LReLU([IN](pool(conv3x3(LReLU([IN](x)))))))   (pool only if downsample)
        sc(x)  = pool(conv1x1(x))       (the 1x1, without bias, only if dim_in != dim_out)
        out    = (sc(x) + res(x)) / sqrt(2)

    ``normalize``: affine InstanceNorm (the generator's encoder; E and D have none). The
    first conv keeps dim_in channels, the second changes them.
    """

    def __init__(
        self, dim_in: int, dim_out: int, normalize: bool = False, downsample: bool = False
    ) -> None:
        super().__init__()
        self.normalize, self.downsample = normalize, downsample
        self.learned_sc = dim_in != dim_out
        self.actv = nn.LeakyReLU(0.2)
        self.conv1 = nn.Conv2d(dim_in, dim_in, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        if normalize:
            self.norm1 = nn.InstanceNorm2d(dim_in, affine=True)
            self.norm2 = nn.InstanceNorm2d(dim_in, affine=True)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.learned_sc:
            x = self.conv1x1(x)  # (B, dim_out, H, W)
        return F.avg_pool2d(x, 2) if self.downsample else x

    def residual(self, x: torch.Tensor) -> torch.Tensor:
        if self.normalize:
            x = self.norm1(x)
        x = self.conv1(self.actv(x))  # (B, dim_in, H, W)
        if self.downsample:
            x = F.avg_pool2d(x, 2)  # (B, dim_in, H/2, W/2)
        if self.normalize:
            x = self.norm2(x)
        return self.conv2(self.actv(x))  # (B, dim_out, H', W')

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (self.shortcut(x) + self.residual(x)) / math.sqrt(2)  # unit variance


class AdainResBlk(nn.Module):
    """Decoder block with AdaIN (official ``AdainResBlk`` with ``w_hpf = 0``).

    x (B, dim_in, H, W), s (B, style_dim) -> (B, dim_out, H', W'), H' = 2H with ``upsample``:

        res(x, s) = conv3x3(LReLU(AdaIN_2(up(conv3x3(LReLU(AdaIN_1(x, s)))), s)))
        sc(x)     = conv1x1(up(x))      (nearest x2 if upsample; 1x1 without bias if dims change)
        out       = (sc(x) + res(x, s)) / sqrt(2)

    AdaIN (``ganlab.nn.AdaIN.stargan_v2``): ``(1 + gamma) * IN(x) + beta`` with
    ``[gamma, beta] = fc(s)``, IN without affine parameters, eps 1e-5. Here the first conv
    changes the channels (unlike ResBlk). The official ``w_hpf > 0`` variant returns the
    residual alone (the high-pass skip replaces the shortcut); it is for CelebA-HQ only and
    left out.
    """

    def __init__(
        self, dim_in: int, dim_out: int, style_dim: int = STYLE_DIM, upsample: bool = False
    ) -> None:
        super().__init__()
        self.upsample = upsample
        self.learned_sc = dim_in != dim_out
        self.actv = nn.LeakyReLU(0.2)
        self.conv1 = nn.Conv2d(dim_in, dim_out, 3, 1, 1)
        self.conv2 = nn.Conv2d(dim_out, dim_out, 3, 1, 1)
        self.norm1 = AdaIN.stargan_v2(dim_in, style_dim)
        self.norm2 = AdaIN.stargan_v2(dim_out, style_dim)
        if self.learned_sc:
            self.conv1x1 = nn.Conv2d(dim_in, dim_out, 1, 1, 0, bias=False)

    def shortcut(self, x: torch.Tensor) -> torch.Tensor:
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")  # (B, dim_in, 2H, 2W)
        return self.conv1x1(x) if self.learned_sc else x

    def residual(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        x = self.actv(self.norm1(x, s))  # (B, dim_in, H, W)
        if self.upsample:
            x = F.interpolate(x, scale_factor=2, mode="nearest")
        x = self.conv1(x)  # (B, dim_out, H', W')
        x = self.actv(self.norm2(x, s))
        return self.conv2(x)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        return (self.shortcut(x) + self.residual(x, s)) / math.sqrt(2)


# --------------------------------------------------------------------------------------
# Networks
# --------------------------------------------------------------------------------------


class Generator(nn.Module):
    """G(x, s): image (B, 3, S, S), style (B, style_dim) -> image (B, 3, S, S), unbounded.

    ``repeat_num`` down/up blocks (official log2(S) - 4, i.e. to S/16; the CelebA-HQ model,
    with its high-pass path, has one more: pass log2(S) - 3 for its layout), then 2
    bottleneck blocks on each side. Widths (``dim_in``, ``max_conv_dim``): see the module's
    deviations table; at small S pass them explicitly.
    """

    def __init__(
        self,
        img_size: int = 256,
        style_dim: int = STYLE_DIM,
        dim_in: int | None = None,
        max_conv_dim: int = MAX_CONV_DIM,
        repeat_num: int | None = None,
    ) -> None:
        super().__init__()
        _check_img_size(img_size)
        levels = int(math.log2(img_size))
        if repeat_num is None:
            repeat_num = levels - 4
        if not (isinstance(repeat_num, int) and 0 <= repeat_num <= levels - 2):
            raise ValueError(
                f"repeat_num must be an int in [0, {levels - 2}] for {img_size} px (the "
                f"official {levels - 4} halves down to S/16), got {repeat_num!r}"
            )
        self.img_size, self.style_dim, self.repeat_num = img_size, style_dim, repeat_num
        widths = _widths(img_size, dim_in, max_conv_dim, repeat_num)  # e.g. 64 .. 512
        self.widths = widths
        self.from_rgb = nn.Conv2d(3, widths[0], 3, 1, 1)
        encode: list[nn.Module] = []
        decode: list[nn.Module] = []
        for a, b in zip(widths, widths[1:]):  # down / up blocks, mirrored
            encode.append(ResBlk(a, b, normalize=True, downsample=True))
            decode.insert(0, AdainResBlk(b, a, style_dim, upsample=True))
        for _ in range(2):  # bottleneck, at S / 2**repeat_num
            encode.append(ResBlk(widths[-1], widths[-1], normalize=True))
            decode.insert(0, AdainResBlk(widths[-1], widths[-1], style_dim))
        self.encode = nn.ModuleList(encode)
        self.decode = nn.ModuleList(decode)
        self.to_rgb = nn.Sequential(
            nn.InstanceNorm2d(widths[0], affine=True),
            nn.LeakyReLU(0.2),
            nn.Conv2d(widths[0], 3, 1, 1, 0),
        )
        self.apply(he_init)

    def forward(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        _check_images(x, self.img_size)
        _check_vectors(s, len(x), self.style_dim, "style s")
        h = self.from_rgb(x)  # (B, w_0, S, S)
        for block in self.encode:
            h = block(h)  # down to (B, w_n, S / 2**n, ...), then 2 bottlenecks
        for block in self.decode:
            h = block(h, s)  # 2 bottlenecks, then up to (B, w_0, S, S)
        return self.to_rgb(h)  # (B, 3, S, S)


class MappingNetwork(nn.Module):
    """F_y(z): z (B, latent_dim), y (B,) or int -> s (B, style_dim).

    4 shared FC + ReLU (latent_dim -> hidden, hidden -> hidden x 3), then one head per
    domain (3 x [FC hidden, ReLU] + FC to style_dim); every head runs and the row of domain
    y_b is returned, as the official code does.
    """

    def __init__(
        self,
        latent_dim: int = LATENT_DIM,
        style_dim: int = STYLE_DIM,
        num_domains: int = 2,
        hidden_dim: int = HIDDEN_DIM,
    ) -> None:
        super().__init__()
        if num_domains < 1:
            raise ValueError(f"num_domains must be >= 1, got {num_domains}")
        self.latent_dim, self.style_dim, self.num_domains = latent_dim, style_dim, num_domains
        layers: list[nn.Module] = [nn.Linear(latent_dim, hidden_dim), nn.ReLU()]
        for _ in range(3):
            layers += [nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        self.shared = nn.Sequential(*layers)
        self.unshared = nn.ModuleList(
            nn.Sequential(
                nn.Linear(hidden_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, hidden_dim),
                nn.ReLU(),
                nn.Linear(hidden_dim, style_dim),
            )
            for _ in range(num_domains)
        )
        self.apply(he_init)

    def all_styles(self, z: torch.Tensor) -> torch.Tensor:
        """z (B, latent_dim) -> every head's style (B, K, style_dim)."""
        _check_vectors(z, None, self.latent_dim, "z")
        h = self.shared(z)  # (B, hidden)
        return torch.stack([head(h) for head in self.unshared], dim=1)  # (B, K, style_dim)

    def forward(self, z: torch.Tensor, y) -> torch.Tensor:
        out = self.all_styles(z)  # (B, K, style_dim)
        y = domain_labels(y, len(z), self.num_domains, _range_check(self, y))
        return _pick(out, y)  # (B, style_dim)


def _range_check(module: nn.Module, y) -> bool:
    """Check label values unless that costs a GPU sync during training."""
    return not (isinstance(y, torch.Tensor) and y.device.type != "cpu" and module.training)


def _trunk(img_size: int, dim_in: int | None, max_conv_dim: int) -> tuple[nn.Sequential, int]:
    """E's and D's shared trunk: (B, 3, S, S) -> (B, w, 1, 1); returns (trunk, w).

    conv3x3 -> log2(S) - 2 down ResBlks (no norm) to 4x4 -> LReLU, conv4x4 (valid), LReLU.
    """
    widths = _widths(img_size, dim_in, max_conv_dim, int(math.log2(img_size)) - 2)
    blocks: list[nn.Module] = [nn.Conv2d(3, widths[0], 3, 1, 1)]
    blocks += [ResBlk(a, b, downsample=True) for a, b in zip(widths, widths[1:])]  # -> 4x4
    blocks += [nn.LeakyReLU(0.2), nn.Conv2d(widths[-1], widths[-1], 4, 1, 0), nn.LeakyReLU(0.2)]
    return nn.Sequential(*blocks), widths[-1]


class StyleEncoder(nn.Module):
    """E_y(x): image (B, 3, S, S), y (B,) or int -> s (B, style_dim).

    The trunk (:func:`_trunk`) to a (B, w) feature, then one linear head per domain; the
    row of domain y_b is returned.
    """

    def __init__(
        self,
        img_size: int = 256,
        style_dim: int = STYLE_DIM,
        num_domains: int = 2,
        dim_in: int | None = None,
        max_conv_dim: int = MAX_CONV_DIM,
    ) -> None:
        super().__init__()
        _check_img_size(img_size)
        if num_domains < 1:
            raise ValueError(f"num_domains must be >= 1, got {num_domains}")
        self.img_size, self.style_dim, self.num_domains = img_size, style_dim, num_domains
        self.shared, width = _trunk(img_size, dim_in, max_conv_dim)
        self.unshared = nn.ModuleList(nn.Linear(width, style_dim) for _ in range(num_domains))
        self.apply(he_init)

    def all_styles(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, S, S) -> every head's style (B, K, style_dim)."""
        _check_images(x, self.img_size)
        h = self.shared(x).flatten(1)  # (B, w)
        return torch.stack([head(h) for head in self.unshared], dim=1)  # (B, K, style_dim)

    def forward(self, x: torch.Tensor, y) -> torch.Tensor:
        out = self.all_styles(x)
        y = domain_labels(y, len(x), self.num_domains, _range_check(self, y))
        return _pick(out, y)  # (B, style_dim)


class Discriminator(nn.Module):
    """D_y(x): image (B, 3, S, S), y (B,) or int -> logits (B,) of "a real image of domain y".

    The same trunk as E, then conv1x1 to K logits (multi-task: one real/fake output per
    domain); only the output of each sample's domain is used.
    """

    def __init__(
        self,
        img_size: int = 256,
        num_domains: int = 2,
        dim_in: int | None = None,
        max_conv_dim: int = MAX_CONV_DIM,
    ) -> None:
        super().__init__()
        _check_img_size(img_size)
        if num_domains < 1:
            raise ValueError(f"num_domains must be >= 1, got {num_domains}")
        self.img_size, self.num_domains = img_size, num_domains
        trunk, width = _trunk(img_size, dim_in, max_conv_dim)
        self.main = nn.Sequential(*trunk, nn.Conv2d(width, num_domains, 1, 1, 0))
        self.apply(he_init)

    def all_logits(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, 3, S, S) -> (B, K): every domain's logit."""
        _check_images(x, self.img_size)
        return self.main(x).flatten(1)  # (B, K, 1, 1) -> (B, K)

    def forward(self, x: torch.Tensor, y) -> torch.Tensor:
        out = self.all_logits(x)
        y = domain_labels(y, len(x), self.num_domains, _range_check(self, y))
        return _pick(out, y)  # (B,)


# --------------------------------------------------------------------------------------
# The four nets, their EMA copies and optimisers
# --------------------------------------------------------------------------------------


class StarGANv2(nn.Module):
    """G, F, E, D (``generator``, ``mapping_network``, ``style_encoder``, ``discriminator``;
    also as ``.G``, ``.F``, ``.E``, ``.D``) and the EMA copies of G, F, E.

    ``ema[name]`` is a ``ganlab.train.ema.EMA`` whose ``.module`` is registered here as
    ``<name>_ema``, so ``.to(device)`` and ``state_dict()`` include the averaged nets;
    :meth:`update_ema` after every iteration. Sizes: see the classes; ``dim_in`` and
    ``max_conv_dim`` apply to G, E and D alike.
    """

    def __init__(
        self,
        img_size: int = 256,
        num_domains: int = 2,
        latent_dim: int = LATENT_DIM,
        style_dim: int = STYLE_DIM,
        hidden_dim: int = HIDDEN_DIM,
        dim_in: int | None = None,
        max_conv_dim: int = MAX_CONV_DIM,
        repeat_num: int | None = None,
        ema_beta: float = EMA_BETA,
    ) -> None:
        super().__init__()
        self.img_size, self.num_domains = img_size, num_domains
        self.latent_dim, self.style_dim = latent_dim, style_dim
        widths = dict(dim_in=dim_in, max_conv_dim=max_conv_dim)
        self.generator = Generator(img_size, style_dim, repeat_num=repeat_num, **widths)
        self.mapping_network = MappingNetwork(latent_dim, style_dim, num_domains, hidden_dim)
        self.style_encoder = StyleEncoder(img_size, style_dim, num_domains, **widths)
        self.discriminator = Discriminator(img_size, num_domains, **widths)
        self.ema = {name: EMA(getattr(self, name), ema_beta) for name in EMA_NET_NAMES}
        for name, ema in self.ema.items():
            self.add_module(f"{name}_ema", ema.module)

    G = property(lambda self: self.generator)
    F = property(lambda self: self.mapping_network)
    E = property(lambda self: self.style_encoder)
    D = property(lambda self: self.discriminator)

    def nets(self) -> dict[str, nn.Module]:
        """The four trained nets by their official names."""
        return {name: getattr(self, name) for name in NET_NAMES}

    def ema_nets(self) -> dict[str, nn.Module]:
        """The averaged G, F, E (for evaluation and sampling)."""
        return {name: ema.module for name, ema in self.ema.items()}

    def update_ema(self) -> None:
        for ema in self.ema.values():
            ema.update()

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None):
        """z ~ N(0, I), (n, latent_dim)."""
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    @torch.no_grad()
    def translate(
        self,
        x: torch.Tensor,
        y_trg,
        *,
        z: torch.Tensor | None = None,
        x_ref: torch.Tensor | None = None,
        ema: bool = True,
    ) -> torch.Tensor:
        """x (B, 3, S, S) into domain ``y_trg`` with the style F_y(z) (latent-guided) or
        E_y(x_ref) (reference-guided); exactly one of ``z`` (B, latent_dim), ``x_ref``
        (B, 3, S, S). Uses the EMA nets unless ``ema=False``. -> (B, 3, S, S)."""
        if (z is None) == (x_ref is None):
            raise ValueError("translate needs exactly one of z (latent-guided) or x_ref")
        nets = self.ema_nets() if ema else self.nets()
        if z is not None:
            s = nets["mapping_network"](z, y_trg)  # (B, style_dim)
        else:
            s = nets["style_encoder"](x_ref, y_trg)
        return nets["generator"](x, s)


class Translator(nn.Module):
    """What a trained StarGAN v2 keeps for synthesis: G, F and E (``generator``,
    ``mapping_network``, ``style_encoder``) in one module, without D.

    The course's training loop averages (EMA) and exports this one module, so the averaged
    G, F and E travel together and a weights file rebuilds all three. Same sizes and
    arguments as :class:`StarGANv2`.
    """

    def __init__(
        self,
        img_size: int = 256,
        num_domains: int = 2,
        latent_dim: int = LATENT_DIM,
        style_dim: int = STYLE_DIM,
        hidden_dim: int = HIDDEN_DIM,
        dim_in: int | None = None,
        max_conv_dim: int = MAX_CONV_DIM,
        repeat_num: int | None = None,
    ) -> None:
        super().__init__()
        self.img_size, self.num_domains = img_size, num_domains
        self.latent_dim, self.style_dim = latent_dim, style_dim
        widths = dict(dim_in=dim_in, max_conv_dim=max_conv_dim)
        self.generator = Generator(img_size, style_dim, repeat_num=repeat_num, **widths)
        self.mapping_network = MappingNetwork(latent_dim, style_dim, num_domains, hidden_dim)
        self.style_encoder = StyleEncoder(img_size, style_dim, num_domains, **widths)

    G = property(lambda self: self.generator)
    F = property(lambda self: self.mapping_network)
    E = property(lambda self: self.style_encoder)

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None):
        """z ~ N(0, I), (n, latent_dim)."""
        return torch.randn(n, self.latent_dim, device=device, generator=generator)

    def style(self, y, *, z: torch.Tensor | None = None, x_ref: torch.Tensor | None = None):
        """s = F_y(z) (latent-guided) or E_y(x_ref) (reference-guided) -> (B, style_dim);
        exactly one of ``z`` (B, latent_dim), ``x_ref`` (B, 3, S, S)."""
        if (z is None) == (x_ref is None):
            raise ValueError("style needs exactly one of z (latent-guided) or x_ref (reference)")
        return self.mapping_network(z, y) if z is not None else self.style_encoder(x_ref, y)

    def forward(
        self,
        x: torch.Tensor,
        y,
        *,
        z: torch.Tensor | None = None,
        x_ref: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """x (B, 3, S, S) into domain ``y`` (int or (B,)) with the style of ``z`` or of
        ``x_ref`` (see :meth:`style`) -> G(x, s) (B, 3, S, S), unbounded."""
        return self.generator(x, self.style(y, z=z, x_ref=x_ref))


def build_optimizers(
    model: StarGANv2 | Mapping[str, nn.Module],
    lr: float = LR,
    f_lr: float = F_LR,
    betas: tuple[float, float] = BETAS,
    weight_decay: float = WEIGHT_DECAY,
) -> dict[str, torch.optim.Adam]:
    """One Adam per net, keyed by the official names, as the official solver builds them:
    lr ``f_lr`` (1e-6) for the mapping network, ``lr`` (1e-4) for the others; betas
    (0, 0.99); weight decay 1e-4 (coupled L2)."""
    nets = model.nets() if isinstance(model, StarGANv2) else dict(model)
    missing = [n for n in NET_NAMES if n not in nets]
    if missing:
        raise ValueError(f"build_optimizers needs the nets {NET_NAMES}; missing {missing}")
    return {
        name: torch.optim.Adam(
            nets[name].parameters(),
            lr=f_lr if name == "mapping_network" else lr,
            betas=betas,
            weight_decay=weight_decay,
        )
        for name in NET_NAMES
    }


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LossWeights:
    """The lambdas of the objective (official ``main.py`` defaults; AFHQ uses lambda_ds 2).

    ``lambda_ds`` is the CURRENT diversity weight: pass ``lambda_ds_at(step, initial)``.
    """

    lambda_reg: float = 1.0
    lambda_sty: float = 1.0
    lambda_ds: float = 1.0
    lambda_cyc: float = 1.0

    @classmethod
    def afhq(cls) -> LossWeights:
        """The AFHQ training command's weights (lambda_ds 2)."""
        return cls(lambda_ds=LAMBDA_DS["afhq"])


def lambda_ds_at(step: int, initial: float = 1.0, ds_iter: int = DS_ITER) -> float:
    """The diversity weight at iteration ``step`` (0-based): initial * max(0, 1 - step / ds_iter).

    Linear from ``initial`` at step 0 to 0 at ``ds_iter`` and after (the official code
    subtracts initial / ds_iter after every iteration while the weight is > 0).
    """
    if not (isinstance(ds_iter, int) and ds_iter >= 1):
        raise ValueError(f"ds_iter must be an int >= 1, got {ds_iter!r}")
    if step < 0:
        raise ValueError(f"step must be >= 0, got {step}")
    return initial * max(0.0, 1.0 - step / ds_iter)


def adv_loss(logits: torch.Tensor, target: int) -> torch.Tensor:
    """Non-saturating adversarial loss: BCE with logits against all-``target`` (1 or 0) labels,
    mean over the batch; = softplus(-l) for 1, softplus(l) for 0."""
    if target not in (0, 1):
        raise ValueError(f"target must be 1 (real) or 0 (fake), got {target!r}")
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, float(target)))


def _net(nets, name: str) -> nn.Module:
    net = nets.get(name) if isinstance(nets, Mapping) else getattr(nets, name, None)
    if net is None:
        raise ValueError(f"nets must provide {name!r} (a StarGANv2 or a dict of the four nets)")
    return net


def _num_domains(nets) -> int:
    return _net(nets, "discriminator").num_domains


def _labels(y, batch: int, k: int) -> torch.Tensor:
    """The losses' label check: values are read only on the CPU (no GPU host sync)."""
    on_cpu = not isinstance(y, torch.Tensor) or y.device.type == "cpu"
    return domain_labels(y, batch, k, check_range=on_cpu)


def compute_d_loss(
    nets,
    args: LossWeights | None,
    x_real: torch.Tensor,
    y_org,
    y_trg,
    z_trg: torch.Tensor | None = None,
    x_ref: torch.Tensor | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """D's loss with latent-guided (``z_trg``) or reference-guided (``x_ref``) fakes.

    loss = BCE(D_y_org(x_real), 1) + BCE(D_y_trg(G(x_real, s~)), 0) + lambda_reg R1(x_real),
    s~ = F_y_trg(z_trg) or E_y_trg(x_ref), made under ``no_grad`` (only D is trained).
    R1 = 1/2 mean_b |grad_x D_y(x)_b|^2 from the SAME real forward (``ganlab.nn.r1_penalty``,
    fp32). -> (loss, {"real", "fake", "reg"}: detached parts, reg unweighted as officially).
    x_real, x_ref (B, 3, S, S); y_org, y_trg (B,) or int; z_trg (B, latent_dim).
    """
    if (z_trg is None) == (x_ref is None):
        raise ValueError("compute_d_loss needs exactly one of z_trg (latent) or x_ref (reference)")
    args = LossWeights() if args is None else args
    G, D = _net(nets, "generator"), _net(nets, "discriminator")
    k, batch = _num_domains(nets), len(x_real)
    y_org, y_trg = _labels(y_org, batch, k), _labels(y_trg, batch, k)
    # real images: one forward gives both the logits and the R1 input gradient
    loss_reg, out = r1_penalty(lambda x: D(x, y_org), x_real, 1.0, return_scores=True)
    loss_real = adv_loss(out, 1)
    # fake images
    with torch.no_grad():
        if z_trg is not None:
            s_trg = _net(nets, "mapping_network")(z_trg, y_trg)  # (B, style_dim)
        else:
            s_trg = _net(nets, "style_encoder")(x_ref, y_trg)
        x_fake = G(x_real, s_trg)  # (B, 3, S, S)
    loss_fake = adv_loss(D(x_fake, y_trg).float(), 0)
    loss = loss_real + loss_fake + args.lambda_reg * loss_reg
    parts = {"real": loss_real, "fake": loss_fake, "reg": loss_reg}
    return loss, {name: v.detach() for name, v in parts.items()}


def compute_g_loss(
    nets,
    args: LossWeights | None,
    x_real: torch.Tensor,
    y_org,
    y_trg,
    z_trgs: Sequence[torch.Tensor] | None = None,
    x_refs: Sequence[torch.Tensor] | None = None,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The G/F/E objective with two latents ``z_trgs`` = (z1, z2) or two references
    ``x_refs`` = (x_ref, x_ref2) of domain y_trg:

        s1, s2 = F_y_trg(z1), F_y_trg(z2)     (or E_y_trg(x_ref), E_y_trg(x_ref2))
        x_fake = G(x_real, s1)
        adv = BCE(D_y_trg(x_fake), 1)                        non-saturating
        sty = mean |E_y_trg(x_fake) - s1|                    style reconstruction
        ds  = mean |x_fake - G(x_real, s2).detach()|         diversity sensitive
        cyc = mean |G(x_fake, E_y_org(x_real)) - x_real|     cycle, the SOURCE's style
        loss = adv + lambda_sty sty - lambda_ds ds + lambda_cyc cyc

    -> (loss, {"adv", "sty", "ds", "cyc"}: detached, unweighted parts).
    """
    if (z_trgs is None) == (x_refs is None):
        raise ValueError("compute_g_loss needs exactly one of z_trgs (latent) or x_refs (ref)")
    pair = z_trgs if z_trgs is not None else x_refs
    if isinstance(pair, torch.Tensor):
        raise TypeError("z_trgs / x_refs must be a pair (z1, z2) / (x_ref, x_ref2), not a tensor")
    if len(pair) != 2:
        raise ValueError(f"z_trgs / x_refs must be a pair (two target styles), got {len(pair)}")
    args = LossWeights() if args is None else args
    G, E, D = (_net(nets, n) for n in ("generator", "style_encoder", "discriminator"))
    k, batch = _num_domains(nets), len(x_real)
    y_org, y_trg = _labels(y_org, batch, k), _labels(y_trg, batch, k)
    style_net = _net(nets, "mapping_network") if z_trgs is not None else E
    s_trg = style_net(pair[0], y_trg)  # (B, style_dim): F_y_trg(z1) or E_y_trg(x_ref)
    # adversarial
    x_fake = G(x_real, s_trg)  # (B, 3, S, S)
    loss_adv = adv_loss(D(x_fake, y_trg).float(), 1)
    # style reconstruction
    loss_sty = torch.mean(torch.abs(E(x_fake, y_trg).float() - s_trg.float()))
    # diversity sensitive: the second image is a fixed target (the official code detaches
    # it; making it without a graph is the same and cheaper)
    with torch.no_grad():
        x_fake2 = G(x_real, style_net(pair[1], y_trg))  # (B, 3, S, S)
    loss_ds = torch.mean(torch.abs(x_fake.float() - x_fake2.float()))
    # cycle consistency, back with the source's own style
    s_org = E(x_real, y_org)  # (B, style_dim)
    x_rec = G(x_fake, s_org)
    loss_cyc = torch.mean(torch.abs(x_rec.float() - x_real.float()))
    loss = (
        loss_adv
        + args.lambda_sty * loss_sty
        - args.lambda_ds * loss_ds
        + args.lambda_cyc * loss_cyc
    )
    parts = {"adv": loss_adv, "sty": loss_sty, "ds": loss_ds, "cyc": loss_cyc}
    return loss, {name: v.detach() for name, v in parts.items()}


# --------------------------------------------------------------------------------------
# One iteration, as the official Solver.train
# --------------------------------------------------------------------------------------


def check_batch_size(batch: int, minimum: int = BATCH_SIZE) -> None:
    """Warn (UserWarning) below the official batch 8: at 4 the maintainers saw unstable
    training and worse results (clovaai/stargan-v2 issues #40, #101)."""
    if batch < minimum:
        warnings.warn(
            f"StarGAN v2 batch size {batch} < {minimum}: the official batch is 8 and the "
            "maintainers report batch 4 as unstable (clovaai/stargan-v2 #40, #101)",
            UserWarning,
            stacklevel=3,
        )


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """requires_grad False on the modules' parameters inside the block, then restored."""
    params = [p for m in modules for p in m.parameters()]
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad_(False)
    try:
        yield
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad_(flag)


def _zero_grad(optimizers: Mapping[str, torch.optim.Optimizer]) -> None:
    for opt in optimizers.values():
        opt.zero_grad(set_to_none=True)


def train_step(
    model: StarGANv2,
    optimizers: Mapping[str, torch.optim.Optimizer],
    args: LossWeights,
    x_real: torch.Tensor,
    y_org: torch.Tensor,
    x_ref: torch.Tensor,
    x_ref2: torch.Tensor,
    y_trg: torch.Tensor,
    z_trg: torch.Tensor,
    z_trg2: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """One official iteration; ``optimizers`` from :func:`build_optimizers`.

    Inputs (B = batch): sources x_real (B, 3, S, S) of domains y_org (B,); two references
    x_ref, x_ref2 (B, 3, S, S) of domains y_trg (B,) (the same domain per row, random, may
    equal y_org); two latents z_trg, z_trg2 (B, latent_dim). ``args.lambda_ds`` is the
    current weight (:func:`lambda_ds_at`). Steps:

    1. D with latent-guided fakes; 2. D with reference-guided fakes;
    3. G, F, E on the latent-guided objective; 4. G alone on the reference-guided one;
    5. EMA of G, F, E.

    Every optimiser's gradients are cleared before each backward (official
    ``_reset_grad``); nets that a step does not update are frozen during it, so they get no
    gradients (the official code computes and discards them). Returns the detached loss
    parts keyed "D/latent_real", ..., "G/ref_cyc", and "G/lambda_ds".
    """
    _check_images(x_real, model.img_size, "x_real")
    batch = len(x_real)
    for name, x in (("x_ref", x_ref), ("x_ref2", x_ref2)):
        _check_images(x, model.img_size, name)
        if len(x) != batch:
            raise ValueError(f"{name} must have the batch size of x_real ({batch}), got {len(x)}")
    _check_vectors(z_trg, batch, model.latent_dim, "z_trg")
    _check_vectors(z_trg2, batch, model.latent_dim, "z_trg2")
    check_batch_size(batch)
    G, F_, E, D = model.generator, model.mapping_network, model.style_encoder, model.discriminator
    logs: dict[str, torch.Tensor] = {}

    with frozen(G, F_, E):  # 1-2: D only (the fakes are made under no_grad anyway)
        for mode, guide in (("latent", dict(z_trg=z_trg)), ("ref", dict(x_ref=x_ref))):
            d_loss, parts = compute_d_loss(model, args, x_real, y_org, y_trg, **guide)
            _zero_grad(optimizers)
            d_loss.backward()
            optimizers["discriminator"].step()
            logs.update({f"D/{mode}_{k}": v for k, v in parts.items()})

    with frozen(D):  # 3: G, F, E on the latent-guided objective
        g_loss, parts = compute_g_loss(model, args, x_real, y_org, y_trg, z_trgs=(z_trg, z_trg2))
        _zero_grad(optimizers)
        g_loss.backward()
        for name in ("generator", "mapping_network", "style_encoder"):
            optimizers[name].step()
        logs.update({f"G/latent_{k}": v for k, v in parts.items()})

    with frozen(D, F_, E):  # 4: G alone on the reference-guided objective
        g_loss, parts = compute_g_loss(model, args, x_real, y_org, y_trg, x_refs=(x_ref, x_ref2))
        _zero_grad(optimizers)
        g_loss.backward()
        optimizers["generator"].step()
        logs.update({f"G/ref_{k}": v for k, v in parts.items()})

    model.update_ema()  # 5
    logs["G/lambda_ds"] = torch.tensor(float(args.lambda_ds))
    return logs


# --------------------------------------------------------------------------------------
# Evaluation protocol
# --------------------------------------------------------------------------------------


def evaluation_pairs(num_domains: int) -> list[tuple[int, int]]:
    """Every (source, target) domain pair with source != target, as the official
    ``calculate_metrics`` visits them: K (K - 1) pairs. For each, every source test image
    gets ``NUM_OUTS_PER_DOMAIN`` outputs (10 latents, or 10 references from the target's
    test images); FID compares the outputs with the target's training images, LPIPS is the
    mean pairwise distance among an input's 10 outputs."""
    if num_domains < 2:
        raise ValueError(f"translation needs at least 2 domains, got {num_domains}")
    return [(s, t) for t in range(num_domains) for s in range(num_domains) if s != t]
