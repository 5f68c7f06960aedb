r"""StackGAN: Zhang et al., *StackGAN: Text to Photo-realistic Image Synthesis with Stacked
Generative Adversarial Networks*, ICCV 2017.

One GAN cannot jump from a sentence to a sharp 256x256 image, so StackGAN splits the job:
**Stage-I** sketches the shape and colours at low resolution (64x64) from the text and noise;
**Stage-II** reads the Stage-I image *and the text again* and paints a 4x larger image with
the details and corrections Stage-I missed.

Conditioning Augmentation (``ganlab.nn.conditioning``) turns the sentence embedding
:math:`\varphi_t` into a random latent condition
:math:`\hat c = \mu(\varphi_t) + \sigma(\varphi_t) \odot \varepsilon`,
:math:`\varepsilon \sim N(0, I)`, regularised towards :math:`N(0, I)` by a KL term.
Each stage has its own CA.

Losses (matching-aware D of GAN-INT-CLS; ``w`` is a real image with a mismatched caption)::

    Stage-I   L_D0 = BCE(D0(x, phi_t), 1)
                     + ( BCE(D0(x_w, phi_t), 0) + BCE(D0(G0(z, c0), phi_t), 0) ) / 2
              L_G0 = BCE(D0(G0(z, c0), phi_t), 1) + lambda * KL(N(mu0, sigma0^2) || N(0, I))
    Stage-II  the same with s0 = G0(z, c0) (frozen, detached) and G(s0, c):
              L_D  = BCE(D(x, phi_t), 1)
                     + ( BCE(D(x_w, phi_t), 0) + BCE(D(G(s0, c), phi_t), 0) ) / 2
              L_G  = BCE(D(G(s0, c), phi_t), 1) + lambda * KL(N(mu, sigma^2) || N(0, I))

The paper writes the minimax form (D maximises log-likelihoods, G minimises log(1 - D)) and
trains with the non-saturating G loss above, as both official codes do. ``phi_t`` inside D is
a *compressed* embedding (c_dim wide), not the raw 1024-d one (see the table).

Shapes (official sizes; everything scales with ``image_size``, ``ngf``, ``ndf``)::

    StageIGenerator    text (B, 1024) -> CA c0 (B, 128); [z (B, 100), c0] -> FC -> (B, ngf*8, 4, 4)
                       -> 4 x [nearest x2, conv3x3, BN, ReLU] -> (B, ngf/2, 64, 64) -> conv3x3, tanh
                       -> (B, 3, 64, 64)                                       (ngf = gf_dim = 128)
    StageIDiscriminator (B, 3, 64, 64) -> 4 stride-2 convs -> (B, ndf*8, 4, 4); condition (B, 128)
                       replicated to (B, 128, 4, 4), concatenated -> conv3x3, BN, LReLU
                       -> conv 4x4 -> (B,) logits                                    (ndf = 64)
    StageIIGenerator   Stage-I image (B, 3, 64, 64), detached -> encoder -> (B, ngf*4, 16, 16);
                       fresh CA c (B, 128) replicated to 16x16, concatenated -> conv3x3, BN, ReLU
                       -> R residual blocks -> 4 upsample blocks -> (B, ngf/4, 256, 256)
                       -> conv3x3, tanh -> (B, 3, 256, 256)
    StageIIDiscriminator (B, 3, 256, 256) -> 6 stride-2 convs -> (B, ndf*32, 4, 4) -> 2 conv3x3
                       -> (B, ndf*8, 4, 4) -> conditional logits (B,) and unconditional logits (B,)

Deviations from the paper and the official code (TF: hanzhanggit/StackGAN; PyTorch port:
hanzhanggit/StackGAN-Pytorch):

=========================  =============================================  =======================
what                       paper / official                               course default
=========================  =============================================  =======================
KL weight lambda           paper: 1; both official configs: 2.0 on the    ``KL_WEIGHT = 2.0`` on
                           KL averaged over all B*c elements              the per-dim mean KL
                                                                          (= code);
                                                                          ``PAPER_KL_WEIGHT = 1``
CA activation              TF: LeakyReLU(0.2); port: ReLU (mu >= 0)       LeakyReLU(0.2)
Stage-I residual branches  TF (default network): a bottleneck residual    port's by default;
                           (``ganlab.nn.BottleneckResidual``) on G0's     ``residual=True``
                           4x4 and 8x8 maps and on D0's 4x4 features;     (``--stage1-residual``)
                           port: none                                     the TF code's (cpu,
                                                                          smoke profiles)
D output                   port: sigmoid + ``nn.BCELoss``; TF: logits     a logit + BCE with
                           + sigmoid cross-entropy with logits            logits (stable)
D's condition              TF: D's own FC(text) + LeakyReLU(0.2);         port: pass
                           port: G's CA mean ``mu.detach()``              ``mu.detach()``;
                                                                          ``text_dim=`` gives TF
wrong pairs                TF: a separately sampled real image;           caller's choice;
                           port: image i with caption i+1                 ``wrong_pairs`` = port
Stage-II D                 port adds unconditional logits; D loss         both logits returned;
                           (real+u_real)/2 + (fake+wrong+u_fake)/3,       the port's losses when
                           G loss cond + uncond                           uncond ones are given
frozen Stage-I             port: requires_grad False but left in train    requires_grad False
                           mode (BN batch stats, running stats drift)     AND kept in eval mode
image sizes                64 -> 256 (Stage-II: 4x)                       s1 in {16, 32, 64},
                                                                          Stage-II 4 * s1 (gpu
                                                                          profile) or 2 * s1
                                                                          (``scale=2``; cpu:
                                                                          32 -> 64 px, smoke:
                                                                          16 -> 32 px)
Stage-II output            tanh(conv(h)): a new image from the 16x16      the same by default
                           code                                           (gpu profile);
                                                                          ``refine_sketch``
                                                                          (cpu, smoke profiles):
                                                                          tanh(atanh(up(s0))
                                                                          + conv(h)), a
                                                                          correction of the
                                                                          upsampled sketch
D's regulariser            none                                           none by default (gpu
                                                                          profile); cpu, smoke:
                                                                          Stage-II's D gets R1
                                                                          on its real pairs
                                                                          (both logits, gamma
                                                                          1), lazily every 16
                                                                          steps (``--r1-gamma``
                                                                          ``--r1-every``)
Stage-II code size M_g     16 for a 64 px sketch (a quarter of its side)  a quarter by default
                                                                          (gpu); ``code_size``
                                                                          s1/2 or s1 reads the
                                                                          sketch on a finer
                                                                          grid (one stride-2
                                                                          conv fewer per
                                                                          halving, one up block
                                                                          fewer per doubling);
                                                                          cpu, smoke: 16, the
                                                                          paper's 16x16 (cpu:
                                                                          half the 32 px
                                                                          sketch; smoke: all
                                                                          of its 16 px one)
Stage-II G's loss          adversarial + KL                               plus lambda_rec L1 of
                                                                          Stage-II redrawing
                                                                          real birds from their
                                                                          s1 drawings (the
                                                                          chapter's recipe; cpu,
                                                                          smoke: 10; gpu: 0)
training images            CUB photos, a square of side 2r around the     gpu: the world's whole
                           bird's box, r = 0.75 max(w, h) (``get_imgs``)  scene; cpu, smoke:
                                                                          tight crops before
                                                                          plain backgrounds
                                                                          (the birds study)
=========================  =============================================  =======================

Residual blocks: 4 (``num_residual``; the paper uses 2 for COCO). Optimiser (set by the
chapter, ``ganlab/chapters/stackgan.py``): Adam lr 2e-4, betas (0.5, 0.999), batch 64, as
the official code. Two training settings of the official code are NOT implemented, and the
shipped weights were trained without them:

* **learning-rate schedule**: the official code halves both learning rates every 50 to 100
  epochs (``lr_decay_step``, depending on the config); the course trains at a constant 2e-4
  (the cpu profile's shipped runs are 6,000 Stage-I steps and a Stage-II picked at 100 of 600
  steps, of batch 64: about 38 and 4 epochs of 10,000 birds, shorter than the first halving
  would be);
* **generator EMA**: none in StackGAN's code; the course's loop keeps an exponential moving
  average of G's weights (decay 0.999, after a warm-up) and samples from it.

Paper's Inception scores (quoted, not re-measured: they need Inception-v3 and real
photographs): CUB 3.70 +- .04, Oxford-102 3.20 +- .01, COCO 8.45 +- .03.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nn.bottleneck import BottleneckResidual
from ganlab.nn.conditioning import ConditioningAugmentation, kl_divergence
from ganlab.validation import check_choice, check_count, check_images, check_logits, check_tensor

KL_WEIGHT = 2.0
"""The course's KL weight (both official configs), applied to the KL averaged over the c dims."""
PAPER_KL_WEIGHT = 1.0
"""The paper's lambda (Eq. 6), stated without a reduction."""
STAGE1_SIZES = (16, 32, 64)
"""Stage-I image sizes the models accept; Stage-II works at 4x these (the paper) or 2x."""
STAGE2_SCALES = (2, 4)
"""Stage-II's size over Stage-I's: 4 in the paper (64 -> 256); 2, a course option for sketches
too small to grow 4x (16 -> 32 px on the laptop)."""
SKETCH_CLAMP = 0.99
"""``refine_sketch``: the upsampled sketch is clamped to +-0.99 before its atanh (finite)."""


# --------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------


def init_weights(module: nn.Module) -> None:
    """DCGAN init, as the official code: conv/linear weights N(0, 0.02), biases 0,
    BatchNorm scale N(1, 0.02) and shift 0. Use with ``model.apply(init_weights)``."""
    if isinstance(module, (nn.Conv2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 conv, stride 1, padding 1, no bias (a BatchNorm always follows or tanh ends)."""
    return nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """(B, in, H, W) -> nearest x2 -> conv3x3 -> BN -> ReLU -> (B, out, 2H, 2W)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv3x3(in_channels, out_channels),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def down_block(in_channels: int, out_channels: int, batch_norm: bool = True) -> nn.Sequential:
    """(B, in, H, W) -> conv 4x4 stride 2 -> [BN] -> LeakyReLU(0.2) -> (B, out, H/2, W/2)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


class ResidualBlock(nn.Module):
    """x -> conv3x3 -> BN -> ReLU -> conv3x3 -> BN, + x, then ReLU (the official order).

    (B, C, H, W) -> (B, C, H, W). Attribute names ``conv1, bn1, conv2, bn2`` (the exercise's).
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = conv3x3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.bn1(self.conv1(x)))  # (B, C, H, W)
        h = self.bn2(self.conv2(h))  # no ReLU before the add
        return F.relu(h + x)  # skip connection, then ReLU


class ConditionalLogits(nn.Module):
    """D's head: (B, ndf*8, 4, 4) features + condition (B, c_dim) -> (B,) logits.

    The condition is replicated to (B, c_dim, 4, 4) and concatenated with the features;
    conv3x3 + BN + LReLU(0.2) mixes them; a 4x4 conv (stride 4) gives one logit per image.
    """

    def __init__(self, channels: int, c_dim: int):
        super().__init__()
        self.c_dim = c_dim
        self.joint = nn.Sequential(
            conv3x3(channels + c_dim, channels), nn.BatchNorm2d(channels), nn.LeakyReLU(0.2)
        )
        self.out = nn.Conv2d(channels, 1, 4, 4)

    def forward(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        maps = condition[:, :, None, None].expand(-1, -1, *features.shape[2:])  # (B, c, 4, 4)
        h = self.joint(torch.cat([features, maps], dim=1))  # (B, ndf*8, 4, 4)
        return self.out(h).flatten()  # (B, 1, 1, 1) -> (B,)


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _log2_size(image_size: int, allowed: tuple[int, ...], what: str) -> int:
    return int(math.log2(check_choice(image_size, allowed, what)))


# --------------------------------------------------------------------------------------
# Stage-I
# --------------------------------------------------------------------------------------


class StageIGenerator(nn.Module):
    """G0: (text embedding, z) -> a low-resolution image, plus CA's (mu, logvar).

    ``ngf`` is the official gf_dim: the 4x4 map has ngf*8 channels (1024 for 128), halved by
    each of the log2(image_size/4) upsample blocks. ``use_ca=False`` is the paper's "no CA"
    ablation (Table 2): the condition is the compressed embedding mu itself, with no sampling.
    ``residual=True`` is the TF code's default network: a ``BottleneckResidual`` on the FC's
    4x4 map and after the first upsample block (whose BN output enters it, ReLU after the add).
    """

    def __init__(
        self,
        text_dim: int,
        c_dim: int = 128,
        z_dim: int = 100,
        ngf: int = 128,
        image_size: int = 64,
        ca_activation: str = "leaky_relu",
        use_ca: bool = True,
        residual: bool = False,
    ):
        super().__init__()
        n_up = _log2_size(image_size, STAGE1_SIZES, "image_size") - 2  # 4x4 -> image_size
        if ngf < 1 or (ngf * 8) % 2**n_up:
            raise ValueError(
                f"ngf*8 must be divisible by 2**{n_up} (one halving per upsample block), "
                f"got ngf={ngf}"
            )
        self.text_dim, self.c_dim, self.z_dim = text_dim, c_dim, z_dim
        self.ngf, self.image_size, self.use_ca = ngf, image_size, use_ca
        self.residual = residual
        self.ca = ConditioningAugmentation(text_dim, c_dim, ca_activation)
        self.fc = nn.Sequential(  # [z, c] (B, z+c) -> (B, ngf*8*4*4)
            nn.Linear(z_dim + c_dim, ngf * 8 * 4 * 4, bias=False),
            nn.BatchNorm1d(ngf * 8 * 4 * 4),
            nn.Identity() if residual else nn.ReLU(),  # residual: the block's ReLU follows
        )
        widths = [ngf * 8 // 2**i for i in range(n_up + 1)]  # 1024, 512, 256, 128, 64
        blocks = [up_block(a, b) for a, b in zip(widths, widths[1:])]
        if residual:  # TF code: BN output -> bottleneck branch added -> ReLU, at 4x4 and 8x8
            blocks[0][-1] = BottleneckResidual(widths[1], nn.ReLU())  # replaces up 1's ReLU
            blocks.insert(0, BottleneckResidual(widths[0], nn.ReLU()))  # the FC's 4x4 map
        self.upsample = nn.Sequential(*blocks)
        self.to_image = nn.Sequential(conv3x3(widths[-1], 3), nn.Tanh())
        self.apply(init_weights)

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None):
        """z ~ N(0, I), (n, z_dim)."""
        n = check_count(n, "n (the number of samples)")
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    def forward(
        self,
        text_embedding: torch.Tensor,
        z: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> image (B, 3, s1, s1) in [-1, 1], mu (B, c_dim), logvar (B, c_dim).

        ``generator`` draws CA's eps (reproducible samples); z is given by the caller.
        Without CA (``use_ca=False``, the paper's ablation) c = mu: the same FC, no noise.
        """
        c, mu, logvar = self.ca(text_embedding, generator)  # (B, c_dim) each
        if not self.use_ca:
            c = mu  # deterministic condition; the recipe drops the KL term too
        check_tensor(z, "z", (len(c), self.z_dim), why="one row per text embedding")
        h = self.fc(torch.cat([z, c], dim=1))  # (B, ngf*8*16)
        h = h.view(-1, self.ngf * 8, 4, 4)  # (B, ngf*8, 4, 4)
        h = self.upsample(h)  # (B, ngf*8 / 2**n_up, s1, s1)
        return self.to_image(h), mu, logvar  # (B, 3, s1, s1)


class _ConditionalDiscriminator(nn.Module):
    """Shared by both stages: condition handling, ``features`` / ``cond_logits``."""

    def _setup_condition(self, c_dim: int, text_dim: int | None) -> None:
        self.c_dim, self.text_dim = c_dim, text_dim
        # TF: D compresses the raw embedding itself; port: D receives G's mu.detach().
        self.compress = (
            None
            if text_dim is None
            else nn.Sequential(nn.Linear(text_dim, c_dim), nn.LeakyReLU(0.2))
        )

    def condition(self, condition: torch.Tensor, batch: int | str = "B") -> torch.Tensor:
        """(B, c_dim), or (B, text_dim) -> FC + LReLU -> (B, c_dim) when built with text_dim.

        An int ``batch`` is the number of images the condition must have rows for."""
        why = "one row per image" if isinstance(batch, int) else ""
        if self.compress is None:
            name = "condition (e.g. the generator's mu.detach())"
            return check_tensor(condition, name, (batch, self.c_dim), why=why)
        check_tensor(condition, "condition (the text embedding)", (batch, self.text_dim), why=why)
        return self.compress(condition)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, ndf*8, 4, 4); compute once, reuse for real and wrong pairs."""
        # the range check reads the images back to the host: outside training only
        check_images(image, channels=3, size=self.image_size, batch="B", values=not self.training)
        return self.encode(image)

    def cond_logits(self, features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """(B, ndf*8, 4, 4), condition -> (B,) logits of "real image matching this text"."""
        cond = self.condition(condition, batch=len(features))
        return self.get_cond_logits(features, cond)


class StageIDiscriminator(_ConditionalDiscriminator):
    """D0: (image (B, 3, s1, s1), condition) -> (B,) conditional logits.

    log2(s1/4) stride-2 convs (4 for 64x64; the first without BN) reach (B, ndf*8, 4, 4).
    ``condition`` is a compressed embedding (B, c_dim): by default the generator's CA mean
    ``mu.detach()`` (PyTorch port); with ``text_dim`` given, D compresses the raw text embedding
    itself with FC + LeakyReLU(0.2) (TF code) and ``condition`` is (B, text_dim).
    ``residual=True`` (TF code's default network): the last conv's BN output goes through a
    ``BottleneckResidual`` whose LeakyReLU follows the add.
    """

    def __init__(
        self,
        c_dim: int = 128,
        ndf: int = 64,
        image_size: int = 64,
        text_dim: int | None = None,
        residual: bool = False,
    ):
        super().__init__()
        n_down = _log2_size(image_size, STAGE1_SIZES, "image_size") - 2  # image_size -> 4x4
        self.ndf, self.image_size = ndf, image_size
        if ndf < 1 or (ndf * 8) % 2 ** (n_down - 1):
            raise ValueError(f"ndf*8 must be divisible by 2**{n_down - 1}, got ndf={ndf}")
        self._setup_condition(c_dim, text_dim)
        widths = [3] + [ndf * 8 // 2 ** (n_down - 1 - i) for i in range(n_down)]  # 3, 64..512
        blocks = [
            down_block(a, b, batch_norm=i > 0) for i, (a, b) in enumerate(zip(widths, widths[1:]))
        ]
        if residual:  # TF code: the last conv's BN output -> bottleneck branch added -> LReLU
            blocks[-1][-1] = BottleneckResidual(ndf * 8, nn.LeakyReLU(0.2))
        self.encode = nn.Sequential(*blocks)  # (B, 3, s1, s1) -> (B, ndf*8, 4, 4)
        self.get_cond_logits = ConditionalLogits(ndf * 8, c_dim)
        self.apply(init_weights)

    def forward(self, image: torch.Tensor, condition: torch.Tensor, wrong: bool = False):
        """-> (B,) logits; with ``wrong=True`` also the (B-1,) logits of the mismatched pairs
        (``wrong_pairs``: image i, condition i+1), from the same features."""
        h = self.features(image)  # (B, ndf*8, 4, 4)
        logits = self.cond_logits(h, condition)  # (B,)
        return (logits, self.cond_logits(*wrong_pairs(h, condition))) if wrong else logits


# --------------------------------------------------------------------------------------
# Stage-II
# --------------------------------------------------------------------------------------


class StageIIGenerator(nn.Module):
    """G: (text embedding, z) -> (Stage-I image, Stage-II image at 4x or 2x, mu, logvar).

    ``stage1`` is frozen (``requires_grad`` False, kept in eval mode even by ``train()``) and
    its image detached. The Stage-II CA is its own module and draws a FRESH sample.
    ``ngf`` is the official gf_dim (128): the 16x16 code has ngf*4 channels.

    ``refine_sketch`` (a course deviation, off by default as in the paper): the last conv's
    output is a correction added, before the tanh, to the Stage-I image upsampled (4x, or 2x
    with ``scale=2``), so
    Stage-II starts from the sketch and learns what to change::

        image = tanh(atanh(up(s0)) + conv(h))        instead of   tanh(conv(h))

    At the laptop's sizes (16 px sketches, ngf 16) the official path squeezes the sketch to a
    4x4 code and regrows 64 px through 4 channels: Stage-II becomes a whole new generator
    from a 4x4 code, and it collapsed in every cpu run (judge FD 1355.5 on the tight, plain
    world, n = 500). With the refinement it keeps the sketch's bird and varies (per-caption
    diversity 24.6, Stage-I 17.3), but paints checkerboard patches over it while D wins:
    judge FD 2014.4 (ngf 16, 2,000 steps) and 542.2 (ngf 64, 1,745 steps) against 87.2 for
    Stage-I upsampled (n = 1,000). Holding D back with a lazy R1 (gamma 1, every 16 steps;
    ngf 16, 2,000 steps) keeps the game balanced (D(x) 0.54, D(G) 0.32 at the end, against
    0.94 / 0.004 without it) and brings the FD to 139.4: bird silhouettes with vertical
    stripes, still behind Stage-I (shipped before the 2x ones); with ngf 64 on top of the
    R1 the bodies are smoother, the stripes stay and the FD is 211.1 (n = 1,000). The
    stripes are the world's wing bars painted over the whole body: the judge read 0.55 of
    that Stage-II's birds as striped-winged, against 0.39 of real ones (n = 500,
    lecture 3, section 7). A finer code (``code_size`` 8) draws the wings' shapes but more
    stripes (0.67) and scores FD 154.2 (n = 1,000). Grown 2x instead (``scale=2``, 16 -> 32
    px) at half the paper's rate (1e-4), Stage-II beat Stage-I: FD 79.4 against 87.2 (n =
    1,000); at 2e-4 it scored 85.9, its FD swinging between snapshots. It still added no
    detail: fed real 16 px birds it scored 81.4, against 96.7 for them upsampled. Reading the
    sketch on a 16x16 code (``code_size`` = s1) while the chapter's recipe also has G redraw
    real birds from their 16 px drawings (an L1 term, ``lambda_rec`` 10) brings it to FD 61.3
    (n = 1,000) and 34.6 on real 16 px birds. On a 32 px sketch from the TF code's Stage-I
    (FD 36.1), the same recipe grown 2x to 64 px at 2e-4 passes the sketch through: 35.8 at
    its best snapshot (n = 1,000); it learns to redraw real 32 px birds (16.8 against 20.0
    upsampled by step 500) but moves its own Stage-I's sketches away from real birds. On (with
    the R1, 2x, the 16x16 code and the L1) in the laptop profiles (cpu, smoke); the gpu profile
    keeps the paper's path. Every attempt: ``book/figures/stackgan_stage2_runs.json`` (printed
    by lecture 3).

    ``scale`` is Stage-II's size over Stage-I's: 4 in the paper. 2 (a course option) grows a
    32 px sketch to 64 px (16 to 32 in smoke), one upsample block fewer, as AttnGAN's stages
    double.

    ``code_size`` is the paper's M_g, the side of the sketch's code: 16 for a 64 px sketch,
    a quarter of it (the default). At 16 px a quarter is 4x4; ``code_size`` s1/2 or s1 keeps
    the code finer (the encoder halves the size fewer times, and one up block fewer per
    halving regrows it), a course option for small sketches.
    """

    def __init__(
        self,
        stage1: StageIGenerator,
        ngf: int = 128,
        num_residual: int = 4,
        c_dim: int | None = None,
        ca_activation: str = "leaky_relu",
        refine_sketch: bool = False,
        code_size: int | None = None,
        scale: int = 4,
    ):
        super().__init__()
        if not isinstance(stage1, StageIGenerator):
            raise TypeError(f"stage1 must be a StageIGenerator, got {type(stage1).__name__}")
        if ngf < 4 or ngf % 4:
            raise ValueError(f"ngf must be a multiple of 4 (the last block has ngf/4), got {ngf}")
        if num_residual < 0:
            raise ValueError(f"num_residual must be >= 0, got {num_residual}")
        check_choice(scale, STAGE2_SCALES, "scale (Stage-II's size over Stage-I's)")
        s1 = stage1.image_size
        self.code_size = s1 // 4 if code_size is None else code_size  # M_g (paper: 16 of 64)
        if self.code_size not in (s1 // 4, s1 // 2, s1):
            raise ValueError(
                f"code_size (M_g) must be the sketch's side s1 = {s1}, s1/2 or s1/4 (the "
                f"paper's), got {code_size}"
            )
        halvings = int(math.log2(s1 // self.code_size))  # 2 in the paper: 64 -> 16
        self.stage1 = stage1.requires_grad_(False).eval()  # frozen
        self.text_dim, self.z_dim = stage1.text_dim, stage1.z_dim
        self.c_dim = stage1.c_dim if c_dim is None else c_dim
        self.ngf, self.num_residual, self.refine_sketch = ngf, num_residual, bool(refine_sketch)
        self.scale, self.stage1_size, self.image_size = scale, s1, scale * s1
        self.ca = ConditioningAugmentation(self.text_dim, self.c_dim, ca_activation)

        def widen(a: int, b: int, halve: bool) -> nn.Conv2d:  # conv 4x4 stride 2, or 3x3
            return nn.Conv2d(a, b, 4, 2, 1, bias=False) if halve else conv3x3(a, b)

        self.encoder = nn.Sequential(  # (B, 3, s1, s1) -> (B, ngf*4, M_g, M_g)
            conv3x3(3, ngf),
            nn.ReLU(),
            widen(ngf, ngf * 2, halvings >= 1),
            nn.BatchNorm2d(ngf * 2),
            nn.ReLU(),
            widen(ngf * 2, ngf * 4, halvings >= 2),
            nn.BatchNorm2d(ngf * 4),
            nn.ReLU(),
        )
        self.joint = nn.Sequential(  # [image code, c maps] -> (B, ngf*4, M_g, M_g)
            conv3x3(ngf * 4 + self.c_dim, ngf * 4), nn.BatchNorm2d(ngf * 4), nn.ReLU()
        )
        self.residual = nn.Sequential(*(ResidualBlock(ngf * 4) for _ in range(num_residual)))
        n_up = halvings + int(math.log2(scale))  # 4 in the paper: 16 -> 256
        widths = [ngf * 4 // 2**k for k in range(n_up + 1)]  # paper: 4, 2, 1, 1/2, 1/4 x ngf
        self.upsample = nn.Sequential(*(up_block(a, b) for a, b in zip(widths, widths[1:])))
        self.to_image = nn.Sequential(conv3x3(widths[-1], 3), nn.Tanh())
        for name, child in self.named_children():
            if name != "stage1":  # never re-initialise the trained Stage-I
                child.apply(init_weights)

    def train(self, mode: bool = True) -> StageIIGenerator:
        super().train(mode)
        self.stage1.eval()  # frozen: BN keeps its running statistics
        return self

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None):
        """z ~ N(0, I), (n, z_dim), fed to Stage-I."""
        return self.stage1.sample_z(n, device, generator)

    def forward(
        self,
        text_embedding: torch.Tensor,
        z: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """-> stage1_image (B, 3, s1, s1), image (B, 3, S, S), mu, logvar (B, c_dim); S is
        ``scale * s1`` (4 * s1 in the paper).

        ``generator`` draws both CAs' eps (Stage-I's first, then Stage-II's fresh one).
        """
        with torch.no_grad():
            stage1_image, _, _ = self.stage1(text_embedding, z, generator)
        stage1_image = stage1_image.detach()  # (B, 3, s1, s1); no gradient into Stage-I
        image, mu, logvar = self.refine(stage1_image, text_embedding, generator)
        return stage1_image, image, mu, logvar

    def refine(
        self,
        stage1_image: torch.Tensor,
        text_embedding: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stage-II alone: a sketch (B, 3, s1, s1) in [-1, 1] and its text -> image (B, 3, S,
        S), mu, logvar. ``forward`` feeds it Stage-I's sketch; any other sketch works too
        (``ganlab.experiments.stage2_on_real`` feeds it real birds drawn at s1)."""
        check_tensor(stage1_image, "stage1_image", ("B", 3, self.stage1_size, self.stage1_size))
        code = self.encoder(stage1_image)  # (B, ngf*4, M_g, M_g); M_g = s1/4 in the paper
        c, mu, logvar = self.ca(text_embedding, generator)  # a fresh sample, (B, c_dim)
        maps = c[:, :, None, None].expand(-1, -1, *code.shape[2:])  # (B, c_dim, M_g, M_g)
        h = self.joint(torch.cat([code, maps], dim=1))  # (B, ngf*4, M_g, M_g)
        h = self.residual(h)  # same shape
        h = self.upsample(h)  # (B, ngf/4, S, S) in the paper (ngf/2 for M_g = s1/2 or scale 2)
        if not self.refine_sketch:
            return self.to_image(h), mu, logvar  # image (B, 3, S, S)
        sketch = F.interpolate(
            stage1_image, scale_factor=self.scale, mode="bilinear", align_corners=False
        )  # (B, 3, S, S)
        sketch = torch.atanh(sketch.clamp(-SKETCH_CLAMP, SKETCH_CLAMP))
        return torch.tanh(sketch + self.to_image[0](h)), mu, logvar  # sketch + a correction


class StageIIDiscriminator(_ConditionalDiscriminator):
    """D: (image (B, 3, S, S), condition) -> (cond_logits (B,), uncond_logits (B,)).

    S = 4 * s1 in {64, 128, 256} (or 2 * s1, from 32): log2(S/4) stride-2 convs (6 for 256) to
    (B, ndf*32, 4, 4),
    then conv3x3 + BN + LReLU twice to (B, ndf*8, 4, 4). The unconditional head (a 4x4 conv
    on the features alone: "is it real at all?") is the PyTorch port's addition; the paper
    and the TF code have only the conditional one. ``condition`` as in StageIDiscriminator.
    """

    def __init__(
        self, c_dim: int = 128, ndf: int = 64, image_size: int = 256, text_dim: int | None = None
    ):
        super().__init__()
        sizes = tuple(sorted({k * s for k in STAGE2_SCALES for s in STAGE1_SIZES}))
        n_down = _log2_size(image_size, sizes, "image_size") - 2  # 6 for 256
        if ndf < 1 or (ndf * 32) % 2 ** (n_down - 1):
            raise ValueError(f"ndf*32 must be divisible by 2**{n_down - 1}, got ndf={ndf}")
        self.ndf, self.image_size = ndf, image_size
        self._setup_condition(c_dim, text_dim)
        widths = [3] + [ndf * 32 // 2 ** (n_down - 1 - i) for i in range(n_down)]  # 3, 64..2048
        down = [
            down_block(a, b, batch_norm=i > 0) for i, (a, b) in enumerate(zip(widths, widths[1:]))
        ]
        self.encode = nn.Sequential(
            *down,  # (B, ndf*32, 4, 4)
            conv3x3(ndf * 32, ndf * 16),
            nn.BatchNorm2d(ndf * 16),
            nn.LeakyReLU(0.2),
            conv3x3(ndf * 16, ndf * 8),
            nn.BatchNorm2d(ndf * 8),
            nn.LeakyReLU(0.2),  # (B, ndf*8, 4, 4)
        )
        self.get_cond_logits = ConditionalLogits(ndf * 8, c_dim)
        self.get_uncond_logits = nn.Conv2d(ndf * 8, 1, 4, 4)
        self.apply(init_weights)

    def uncond_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, ndf*8, 4, 4) -> (B,) logits of "real image", ignoring the text."""
        return self.get_uncond_logits(features).flatten()

    def forward(self, image: torch.Tensor, condition: torch.Tensor, wrong: bool = False):
        """-> (cond_logits (B,), uncond_logits (B,)); with ``wrong=True`` a third item, the
        (B-1,) conditional logits of the mismatched pairs (``wrong_pairs``)."""
        h = self.features(image)  # (B, ndf*8, 4, 4)
        out = (self.cond_logits(h, condition), self.uncond_logits(h))  # (B,), (B,)
        return (*out, self.cond_logits(*wrong_pairs(h, condition))) if wrong else out


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def wrong_pairs(
    features: torch.Tensor, condition: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mismatched (image, text) pairs as the PyTorch port builds them: image i with the
    condition of i+1, (B-1) pairs. (The TF code samples separate real "wrong" images.)"""
    if len(features) < 2 or len(features) != len(condition):
        raise ValueError(
            "wrong_pairs needs a batch of at least 2 images with one condition each, got "
            f"{len(features)} images and {len(condition)} conditions"
        )
    return features[:-1], condition[1:]


def discriminator_loss(
    real_logits: torch.Tensor,
    wrong_logits: torch.Tensor,
    fake_logits: torch.Tensor,
    real_uncond: torch.Tensor | None = None,
    fake_uncond: torch.Tensor | None = None,
) -> torch.Tensor:
    """Matching-aware D loss: BCE(real, 1) + (BCE(wrong, 0) + BCE(fake, 0)) / 2.

    With the unconditional logits of Stage-II's D (both or neither), the PyTorch port's
    ``(BCE(real,1) + BCE(real_u,1)) / 2 + (BCE(fake,0) + BCE(wrong,0) + BCE(fake_u,0)) / 3``.
    Each BCE is a mean over its own batch (wrong pairs may be one fewer).
    """
    for x, name in ((real_logits, "real_logits"), (wrong_logits, "wrong_logits")):
        check_logits(x, name)
    check_logits(fake_logits, "fake_logits")
    real, wrong, fake = _bce(real_logits, 1.0), _bce(wrong_logits, 0.0), _bce(fake_logits, 0.0)
    if real_uncond is None and fake_uncond is None:
        return real + (wrong + fake) / 2
    if real_uncond is None or fake_uncond is None:
        raise ValueError("give both real_uncond and fake_uncond, or neither")
    check_logits(real_uncond, "real_uncond")
    check_logits(fake_uncond, "fake_uncond")
    real_u, fake_u = _bce(real_uncond, 1.0), _bce(fake_uncond, 0.0)
    return (real + real_u) / 2 + (fake + wrong + fake_u) / 3


def generator_loss(
    fake_logits: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    kl_weight: float = KL_WEIGHT,
    fake_uncond: torch.Tensor | None = None,
) -> torch.Tensor:
    """BCE(fake, 1) [+ BCE(fake_uncond, 1)] + kl_weight * KL / c_dim.

    ``KL / c_dim`` is ``kl_divergence`` (summed over dims, mean over batch) divided by c_dim:
    the official code's mean over all elements, so ``kl_weight = KL_WEIGHT = 2.0`` is the
    official setting. The paper's lambda = 1 (``PAPER_KL_WEIGHT``) gives no reduction; on this
    scale it is ``kl_weight=1.0``.
    """
    check_logits(fake_logits, "fake_logits")
    loss = _bce(fake_logits, 1.0)  # non-saturating
    if fake_uncond is not None:
        check_logits(fake_uncond, "fake_uncond")
        loss = loss + _bce(fake_uncond, 1.0)  # the port adds, no averaging
    return loss + kl_weight * kl_divergence(mu, logvar) / mu.shape[1]
