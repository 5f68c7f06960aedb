r"""AttnGAN: Xu et al., *AttnGAN: Fine-Grained Text to Image Generation with Attentional
Generative Adversarial Networks*, CVPR 2018.

StackGAN conditions every stage on ONE sentence vector, so a word such as "red" cannot steer
the pixels of the crown only. AttnGAN keeps the sentence vector for the first sketch and
then lets every pixel of the later stages *look up the words* it should draw:

.. math::
    h_0 = F_0(z, F^{ca}(\bar e)), \qquad
    h_i = F_i(h_{i-1}, F^{attn}_i(e, h_{i-1})), \qquad
    \hat x_i = G_i(h_i), \quad i = 1, 2

with :math:`\bar e` the sentence vector, :math:`e` (D x T) the word features (both from the
frozen DAMSM text encoder), :math:`F^{ca}` Conditioning Augmentation and, for pixel j and
word i of stage i's features (the attention, Eq. 2; ``ganlab.nn.attention``),

.. math::
    e' = U e, \quad
    \beta_{j,i} = \frac{\exp(h_j^\top e'_i)}{\sum_k \exp(h_j^\top e'_k)}, \quad
    c_j = \sum_i \beta_{j,i} e'_i .

The word-context map :math:`c` is concatenated with :math:`h` and refined by residual blocks
and an upsample block; :math:`\beta` (one map per word) is what the chapter shows.

Losses (the official code's form, which the course follows; FIDELITY 4.6-4.7)::

    L_Di = ( BCE(D_i(x_i), 1) + BCE(D_i(x_i, e_bar), 1) ) / 2
         + ( BCE(D_i(x^_i), 0) + BCE(D_i(x^_i, e_bar), 0) + BCE(D_i(x_w, e_bar), 0) ) / 3
    L_G  = sum_i [ BCE(D_i(x^_i), 1) + BCE(D_i(x^_i, e_bar), 1) ]
         + lambda * L_DAMSM(x^_last, caption) + KL(N(mu, sigma^2) || N(0, I)) / c

``D_i(x)`` is the unconditional logit ("a real image?"), ``D_i(x, e_bar)`` the conditional one
("a real image of this caption?"), ``x_w`` a real image with a mismatched caption. The DAMSM
term (``ganlab.text.damsm``: word level + sentence level, both directions) runs the FROZEN
DAMSM image encoder on the last stage's image; the caller computes it, so the models here do
not hold the encoders. For sampling, keep an exponential moving average of G's weights
(``ganlab.train.ema.EMA(generator, decay=EMA_DECAY)``).

Shapes (official sizes; ``ngf`` = gf_dim = 32, ``ndf`` = df_dim = 64, D = nef = 256)::

    CA          e_bar (B, D) -> FC (B, 4c) -> GLU (B, 2c) -> mu, logvar (B, c) -> c (B, c), c = 100
    InitStage   [c, z] (B, c + 100) -> FC (B, ngf*16*4*4*2) -> BN -> GLU -> (B, ngf*16, 4, 4)
                -> 4 x [nearest x2, conv3x3, BN, GLU] (each halves channels) -> (B, ngf, 64, 64)
    AttentionStage  h (B, ngf, S, S), words (B, D, T) -> context (B, ngf, S, S)
                -> [h, context] (B, 2 ngf, S, S) -> 2 GLU ResBlocks
                -> nearest x2, conv3x3, BN, GLU -> (B, ngf, 2S, 2S)
    ImageHead   (B, ngf, S, S) -> conv3x3 -> (B, 3, S, S), then tanh      S = 64, 128, 256
    D_i         (B, 3, S, S) -> 4 stride-2 convs -> (B, 8 ndf, S/16, S/16) -> i more stride-2
                convs (8 ndf -> 16 ndf -> 32 ndf) -> i conv3x3 back to (B, 8 ndf, 4, 4);
                unconditional head: conv 4x4 stride 4 -> (B,);
                conditional head: e_bar replicated (B, D, 4, 4), concatenated -> conv3x3, BN,
                LReLU -> conv 4x4 stride 4 -> (B,)

Sizes are generic so that tests run tiny: base size s0 in {8, 16, 32, 64} (then 2 s0, 4 s0);
InitStage has ``init_width`` channels at 4x4 (official ngf*16 = 512) and halves them per
upsample block, the last block landing on ngf; ``init_width=None`` starts at ngf * s0/4, which
is the official 512 at s0 = 64 but only 64 at s0 = 8 (the shipped laptop model's width).

Deviations from the paper and the official code (taoxugit/AttnGAN):

=======================  ==========================================  =========================
what                     paper / official                            course
=======================  ==========================================  =========================
D loss                   paper (Eq. 5): uncond and cond terms with   the code: (real_u +
                         1/2 each, no mismatched pairs; code: the    real_c)/2 + (fake_u +
                         form above with wrong pairs (image i,       fake_c + wrong_c)/3
                         caption i+1)
G loss                   paper (Eq. 4): 1/2 on each term; code:      the code: plain sum
                         plain sum over uncond + cond
D output                 code: sigmoid + ``nn.BCELoss``              logits + BCE with logits
KL term                  code: mean over all B*c elements, weight    ``kl_divergence / c_dim``
                         1 (CA from StackGAN; the paper's Eq. 3      times ``KL_WEIGHT = 1``
                         is L_G + lambda L_DAMSM)                    (= the code; the
                                                                     chapter's ``--kl-weight``)
lambda (DAMSM in L_G)    5 CUB (bird_attn2.yml), 50 COCO; the code   ``LAMBDA_DAMSM = 5``
                         multiplies word AND sentence terms          (``--lambda-damsm``)
attention mask           ``mask.repeat(queryL, 1)`` mislays the      each caption's own mask;
                         mask for B > 1 (issue #93); an all-masked   all-masked rows give 0
                         row gives NaN                               (``ganlab.nn.attention``)
AttentionStage input     receives the CA code c but ignores it       not passed
init                     orthogonal conv/linear weights, BN          the same
                         N(1, 0.02) (``weights_init``)               (``init_weights``)
G EMA                    avg_p = 0.999 avg_p + 0.001 p, parameters   ``EMA`` with decay 0.999,
                         only, no warm-up                            warm-up, BN buffers copied
image sizes              64, 128, 256                                s0 in {8, 16, 32, 64}, 2s0,
                                                                     4s0 (the chapter's
                                                                     ``--base-size``)
stages                   3 (TREE.BRANCH_NUM; 1 and 2 are options     1, 2 or 3 (the chapter's
                         of the code)                                ``--num-stages``; every
                                                                     profile: 3)
G's 4x4 width            ngf*16 = 512 (then halved to ngf at 64)     ``init_width`` (None:
                                                                     ngf * s0/4, which is 64
                                                                     at s0 = 8; the cpu
                                                                     profile keeps 64: 512
                                                                     measured level, in the
                                                                     chapter's ``PROFILES``
                                                                     comment)
D's regulariser          none                                        optional lazy R1
                                                                     (Mescheder et al. 2018) on
                                                                     each D_i's real pairs,
                                                                     both logits, every 16
                                                                     steps scaled by 16
                                                                     (``--r1-gamma``,
                                                                     ``--r1-every``; the
                                                                     profiles' value and what
                                                                     it measured: the chapter's
                                                                     ``PROFILES`` comment)
first-stage residuals    none: InitStage is FC + upsample blocks;    optional bottleneck
                         D_i's 4x4 features go to the heads          residuals (StackGAN TF
                                                                     code's Stage-I, chapter
                                                                     3's): G's 4x4 and 8x8
                                                                     maps, every D_i's 4x4
                                                                     features (``--residual``)
image skip               none: each stage draws its image from h_i   optional: StyleGAN2's
                                                                     skip generator, stage i's
                                                                     pre-tanh image adds stage
                                                                     i-1's, upsampled
                                                                     (``--image-skip``)
D's variety feature      none                                        optional minibatch std
                                                                     map (PGGAN, groups of 4)
                                                                     on every D_i's 4x4
                                                                     features
                                                                     (``--minibatch-std``)
G's diversity term       none                                        optional mode seeking
                                                                     (Mao et al. 2019) on the
                                                                     last image, half the batch
                                                                     repeating the other half's
                                                                     captions (``--lambda-ms``;
                                                                     ``ganlab.nn.mode_seeking``)
learning rate            2e-4 for G and every D_i, constant          optional: linear decay to
                                                                     0 from a given step
                                                                     (``--lr-decay-start``;
                                                                     every profile: constant)
precision                float32                                     bf16 autocast on CUDA, and
                                                                     on a CPU with native bf16
                                                                     given ``--cpu-bf16``
=======================  ==========================================  =========================

R = 2 residual blocks per attention stage (``R_NUM``), c = 100, z = 100. Optimiser (not set
here): Adam lr 2e-4, betas (0.5, 0.999), batch 20 for CUB. Paper's numbers, quoted and not
re-measured (they need Inception-v3, the paper's DAMSM encoders and real photographs):
Inception score CUB 4.36 +- 0.03, COCO 25.89 +- 0.47; R-precision CUB 67.82, COCO 85.47
(these two recalled in FIDELITY.md and marked there as unverified). The
course's R-precision is measured with its own DAMSM encoders on the birds world and is not
comparable with them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nn.attention import WordAttention
from ganlab.nn.bottleneck import BottleneckResidual
from ganlab.nn.conditioning import ConditioningAugmentation, kl_divergence
from ganlab.nn.glu import GLU
from ganlab.nn.minibatch_std import MinibatchStdDev
from ganlab.validation import check_choice, check_count, check_images, check_logits, check_tensor

BASE_SIZES = (8, 16, 32, 64)
"""First-stage image sizes the models accept; stage i works at base_size * 2**i."""
LAMBDA_DAMSM = 5.0
"""Weight of the DAMSM term in G's loss: 5 for CUB (bird_attn2.yml), 50 for COCO."""
KL_WEIGHT = 1.0
"""Weight of the CA's KL, applied to the KL averaged over the c dims (the official scale)."""
EMA_DECAY = 0.999
"""Decay of the generator's weight average used for sampling (official trainer)."""


# --------------------------------------------------------------------------------------
# Blocks
# --------------------------------------------------------------------------------------


def init_weights(module: nn.Module) -> None:
    """The official ``weights_init``: orthogonal conv and linear weights (gain 1), biases 0,
    BatchNorm scale N(1, 0.02) and shift 0. Use with ``model.apply(init_weights)``."""
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)):
        nn.init.orthogonal_(module.weight, 1.0)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    """3x3 conv, stride 1, padding 1, no bias (as the official code)."""
    return nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=False)


def up_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """(B, in, H, W) -> nearest x2 -> conv3x3 to 2*out -> BN -> GLU -> (B, out, 2H, 2W)."""
    return nn.Sequential(
        nn.Upsample(scale_factor=2, mode="nearest"),
        conv3x3(in_channels, 2 * out_channels),
        nn.BatchNorm2d(2 * out_channels),
        GLU(),  # 2*out -> out
    )


def down_block(in_channels: int, out_channels: int, batch_norm: bool = True) -> nn.Sequential:
    """(B, in, H, W) -> conv 4x4 stride 2 -> [BN] -> LeakyReLU(0.2) -> (B, out, H/2, W/2)."""
    layers: list[nn.Module] = [nn.Conv2d(in_channels, out_channels, 4, 2, 1, bias=False)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(out_channels))
    layers.append(nn.LeakyReLU(0.2))
    return nn.Sequential(*layers)


def block3x3_lrelu(in_channels: int, out_channels: int) -> nn.Sequential:
    """(B, in, H, W) -> conv3x3 -> BN -> LeakyReLU(0.2) -> (B, out, H, W)."""
    return nn.Sequential(
        conv3x3(in_channels, out_channels), nn.BatchNorm2d(out_channels), nn.LeakyReLU(0.2)
    )


class ResBlock(nn.Module):
    """x + [conv3x3 (C -> 2C), BN, GLU (-> C), conv3x3 (C -> C), BN](x); no activation after
    the sum (the official order). (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, channels: int):
        super().__init__()
        self.block = nn.Sequential(
            conv3x3(channels, 2 * channels),
            nn.BatchNorm2d(2 * channels),
            GLU(),  # 2C -> C
            conv3x3(channels, channels),
            nn.BatchNorm2d(channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x)  # (B, C, H, W)


# --------------------------------------------------------------------------------------
# Validation helpers
# --------------------------------------------------------------------------------------


def _n_halvings(base_size: int) -> int:
    """log2(base_size / 4): upsample blocks from 4x4 to base_size (4 for 64)."""
    return int(math.log2(check_choice(base_size, BASE_SIZES, "base_size"))) - 2


# --------------------------------------------------------------------------------------
# Generator
# --------------------------------------------------------------------------------------


class InitStage(nn.Module):
    """F_0: [c, z] (B, c_dim + z_dim) -> h_0 (B, ngf, s0, s0).

    FC -> BN -> GLU to (B, width, 4, 4), then log2(s0/4) GLU upsample blocks, each halving
    the channels, the last landing on ngf (official: width ngf*16 = 512 for s0 = 64).
    ``width=None``: ngf * s0/4, so that halving alone lands on ngf (the official width at
    s0 = 64; at s0 = 8 it is only ngf*2). ``residual=True`` (a course option, not AttnGAN's):
    a ``BottleneckResidual`` with ReLU on the 4x4 map and on the first upsample block's 8x8
    map, as the StackGAN TF code's default Stage-I network (chapter 3's ``residual1``).
    """

    def __init__(
        self,
        c_dim: int = 100,
        z_dim: int = 100,
        ngf: int = 32,
        base_size: int = 64,
        width: int | None = None,
        residual: bool = False,
    ):
        super().__init__()
        n_up = _n_halvings(base_size)
        self.c_dim, self.z_dim, self.ngf, self.base_size = c_dim, z_dim, ngf, base_size
        self.width = ngf * 2**n_up if width is None else width  # channels at 4x4
        if self.width < ngf or self.width % 2 ** (n_up - 1):  # n_up >= 1 (s0 >= 8)
            raise ValueError(
                f"InitStage width (channels at 4x4) must be >= ngf ({ngf}) and divisible by "
                f"2**{n_up - 1} (one halving per upsample block), got {self.width}"
            )
        self.fc = nn.Sequential(
            nn.Linear(c_dim + z_dim, 2 * self.width * 4 * 4, bias=False),
            nn.BatchNorm1d(2 * self.width * 4 * 4),
            GLU(),  # -> (B, width*16)
        )
        widths = [self.width // 2**i for i in range(n_up)] + [ngf]  # 512, 256, 128, 64, 32
        blocks = [up_block(a, b) for a, b in zip(widths, widths[1:])]
        self.residual = bool(residual)
        if residual:  # x + branch(x) -> ReLU at 4x4 (the FC's map) and 8x8 (up block 1's)
            blocks.insert(0, BottleneckResidual(widths[0], nn.ReLU()))
            blocks.insert(2, BottleneckResidual(widths[1], nn.ReLU()))
        self.upsample = nn.Sequential(*blocks)

    def forward(self, c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        h = self.fc(torch.cat([c, z], dim=1))  # official order: [c, z] -> (B, width*16)
        h = h.view(-1, self.width, 4, 4)  # (B, width, 4, 4)
        return self.upsample(h)  # (B, ngf, s0, s0)


class AttentionStage(nn.Module):
    """F_i with F^attn_i: h (B, ngf, S, S), words (B, D, T), mask (B, T) ->
    h_i (B, ngf, 2S, 2S), attention (B, T, S, S)."""

    def __init__(self, ngf: int = 32, word_dim: int = 256, num_residual: int = 2):
        super().__init__()
        if num_residual < 0:
            raise ValueError(f"num_residual must be >= 0, got {num_residual}")
        self.attention = WordAttention(ngf, word_dim)
        self.residual = nn.Sequential(*(ResBlock(2 * ngf) for _ in range(num_residual)))
        self.upsample = up_block(2 * ngf, ngf)

    def forward(
        self, h: torch.Tensor, words: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        context, attention = self.attention(h, words, mask)  # (B, ngf, S, S), (B, T, S, S)
        h = torch.cat([h, context], dim=1)  # (B, 2 ngf, S, S)
        h = self.residual(h)  # same shape
        return self.upsample(h), attention  # (B, ngf, 2S, 2S)


class ImageHead(nn.Module):
    """G_i: (B, ngf, S, S) -> conv3x3 -> the image's logits (B, 3, S, S); the generator takes
    tanh of them. ``skip`` (``image_skip``): the previous stage's logits, upsampled, added."""

    def __init__(self, ngf: int = 32):
        super().__init__()
        self.conv = conv3x3(ngf, 3)

    def forward(self, h: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        logits = self.conv(h)  # (B, 3, S, S)
        return logits if skip is None else logits + skip


def upsample_logits(logits: torch.Tensor) -> torch.Tensor:
    """(B, 3, S, S) -> (B, 3, 2S, 2S), bilinear: the image skip's path (``image_skip``)."""
    return F.interpolate(logits, scale_factor=2, mode="bilinear", align_corners=False)


class Generator(nn.Module):
    """AttnGAN's G: (z, sentence, words, mask) -> (images, attention maps, mu, logvar).

    ``num_stages`` in 1..3: images at s0, 2 s0, 4 s0 (official 64, 128, 256); stage i >= 1
    attends to the words. ``text_dim`` is D of the DAMSM encoders (256), ``ngf`` the
    official gf_dim (32), ``num_residual`` R_NUM (2), ``init_width`` the channels of the
    4x4 map (official gf_dim*16 = 512; None: ngf * s0/4, see :class:`InitStage`),
    ``residual`` the first stage's bottleneck residuals (a course option; :class:`InitStage`).
    ``image_skip=True`` (a course option, StyleGAN2's skip generator): stage i's image is
    tanh(conv(h_i) + up(pre-tanh image of stage i-1)), so each stage draws a correction of the
    previous stage's image, upsampled, rather than a new image.
    """

    def __init__(
        self,
        text_dim: int = 256,
        c_dim: int = 100,
        z_dim: int = 100,
        ngf: int = 32,
        base_size: int = 64,
        num_stages: int = 3,
        num_residual: int = 2,
        init_width: int | None = None,
        residual: bool = False,
        image_skip: bool = False,
    ):
        super().__init__()
        check_choice(num_stages, (1, 2, 3), "num_stages")
        if ngf < 1:
            raise ValueError(f"ngf must be >= 1, got {ngf}")
        self.text_dim, self.c_dim, self.z_dim, self.ngf = text_dim, c_dim, z_dim, ngf
        self.base_size, self.num_stages = base_size, num_stages
        self.image_skip = bool(image_skip)
        self.image_sizes = [base_size * 2**i for i in range(num_stages)]
        self.ca = ConditioningAugmentation(text_dim, c_dim, activation="glu")
        self.init_stage = InitStage(c_dim, z_dim, ngf, base_size, init_width, residual)
        self.stages = nn.ModuleList(
            AttentionStage(ngf, text_dim, num_residual) for _ in range(num_stages - 1)
        )
        self.heads = nn.ModuleList(ImageHead(ngf) for _ in range(num_stages))
        self.apply(init_weights)

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None):
        """z ~ N(0, I), (n, z_dim)."""
        n = check_count(n, "n (the number of samples)")
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    def forward(
        self,
        z: torch.Tensor,
        sentence: torch.Tensor,
        words: torch.Tensor,
        mask: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> tuple[list[torch.Tensor], list[torch.Tensor], torch.Tensor, torch.Tensor]:
        """z (B, z_dim), sentence (B, D), words (B, D, T), mask (B, T) bool True at padding
        (``ganlab.nn.attention.padding_mask(lengths, T)``) ->
        images [(B, 3, s0, s0), (B, 3, 2 s0, 2 s0), ...], attention maps [(B, T, s0, s0),
        (B, T, 2 s0, 2 s0)] (one per attention stage), mu (B, c), logvar (B, c).

        ``generator`` draws CA's eps (reproducible samples).
        """
        check_tensor(sentence, "sentence", ("B", self.text_dim))
        b, why = len(sentence), "one row per sentence"
        check_tensor(z, "z", (b, self.z_dim), why=why)
        check_tensor(words, "words", (b, self.text_dim, "T"), why=why)
        c, mu, logvar = self.ca(sentence, generator)  # (B, c_dim) each
        h = self.init_stage(c, z)  # (B, ngf, s0, s0)
        images, attention_maps = self.draw(h, words, mask)
        return images, attention_maps, mu, logvar

    def draw(
        self, h: torch.Tensor, words: torch.Tensor, mask: torch.Tensor | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """The stages after F_0: h_0 (B, ngf, s0, s0) -> (images, attention maps) as
        :meth:`forward` returns them."""
        logits = self.heads[0](h)  # (B, 3, s0, s0), before tanh
        images, attention_maps = [torch.tanh(logits)], []
        for stage, head in zip(self.stages, self.heads[1:]):
            h, attention = stage(h, words, mask)  # (B, ngf, 2S, 2S), (B, T, S, S)
            skip = upsample_logits(logits) if self.image_skip else None  # (B, 3, 2S, 2S)
            logits = head(h, skip)
            images.append(torch.tanh(logits))
            attention_maps.append(attention)
        return images, attention_maps


# --------------------------------------------------------------------------------------
# Discriminators
# --------------------------------------------------------------------------------------


class Discriminator(nn.Module):
    """D_i for images of ``image_size`` = base_size * 2**i: (image, sentence) ->
    (uncond_logits (B,), cond_logits (B,)).

    log2(s0/4) stride-2 convs (the first without BN) to (B, 8 ndf, 4, 4) at s0, then i more
    stride-2 convs (8 ndf -> 16 ndf -> 32 ndf) and i conv3x3 back down to 8 ndf: deeper with
    the size, as the official D_NET64/128/256. Two heads on the (B, 8 ndf, 4, 4) features:
    unconditional (conv 4x4 stride 4) and conditional (sentence replicated to 4x4,
    concatenated, conv3x3 + BN + LReLU, conv 4x4 stride 4).

    Course options, not AttnGAN's: ``residual=True`` passes the last layer's (BN) output
    through a ``BottleneckResidual`` whose LeakyReLU follows the add (the StackGAN TF code's
    D0, chapter 3's ``residual1``); ``minibatch_std=True`` appends PGGAN's minibatch standard
    deviation map (groups of 4) to the 4x4 features both heads read: (B, 8 ndf + 1, 4, 4).
    """

    def __init__(
        self,
        image_size: int = 64,
        base_size: int = 64,
        ndf: int = 64,
        text_dim: int = 256,
        residual: bool = False,
        minibatch_std: bool = False,
    ):
        super().__init__()
        n_down = _n_halvings(base_size)
        sizes = tuple(base_size * 2**i for i in range(3))
        if image_size not in sizes:
            raise ValueError(
                f"image_size must be one of {sizes} for base_size {base_size}, got {image_size!r}"
            )
        if ndf < 1:
            raise ValueError(f"ndf must be >= 1, got {ndf}")
        self.stage = sizes.index(image_size)
        self.image_size, self.ndf, self.text_dim = image_size, ndf, text_dim
        widths = [3] + [8 * ndf // 2 ** (n_down - 1 - i) for i in range(n_down)]  # 3, ndf..8ndf
        layers = [
            down_block(a, b, batch_norm=i > 0) for i, (a, b) in enumerate(zip(widths, widths[1:]))
        ]  # (B, 8 ndf, S / 2**n_down, ...)
        wide = [8 * ndf * 2**i for i in range(self.stage + 1)]  # 8ndf, 16ndf, 32ndf
        layers += [down_block(a, b) for a, b in zip(wide, wide[1:])]  # -> (B, wide[-1], 4, 4)
        layers += [block3x3_lrelu(a, b) for a, b in zip(wide[::-1], wide[::-1][1:])]  # -> 8ndf
        self.residual, self.minibatch_std = bool(residual), bool(minibatch_std)
        if residual:  # the last layer's LeakyReLU follows the bottleneck branch's add
            layers[-1][-1] = BottleneckResidual(8 * ndf, nn.LeakyReLU(0.2))
        if minibatch_std:
            layers.append(MinibatchStdDev(group_size=4))  # (B, 8 ndf + 1, 4, 4)
        self.encode = nn.Sequential(*layers)  # (B, 3, S, S) -> (B, 8 ndf [+ 1], 4, 4)
        feat = 8 * ndf + self.minibatch_std
        self.uncond_head = nn.Conv2d(feat, 1, 4, 4)
        self.joint = block3x3_lrelu(feat + text_dim, 8 * ndf)
        self.cond_head = nn.Conv2d(8 * ndf, 1, 4, 4)
        self.apply(init_weights)

    def features(self, image: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) -> (B, 8 ndf [+ 1 with ``minibatch_std``], 4, 4); compute once per
        image batch."""
        # the range check reads the images back to the host: outside training only
        check_images(image, channels=3, size=self.image_size, batch="B", values=not self.training)
        return self.encode(image)

    def uncond_logits(self, features: torch.Tensor) -> torch.Tensor:
        """(B, 8 ndf, 4, 4) -> (B,) logits of "a real image"."""
        return self.uncond_head(features).flatten()

    def cond_logits(self, features: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """(B, 8 ndf, 4, 4), sentence (B, D) -> (B,) logits of "a real image of this text"."""
        check_tensor(sentence, "sentence", (len(features), self.text_dim), why="one row per image")
        maps = sentence[:, :, None, None].expand(-1, -1, 4, 4)  # (B, D, 4, 4)
        h = self.joint(torch.cat([features, maps], dim=1))  # (B, 8 ndf, 4, 4)
        return self.cond_head(h).flatten()

    def wrong_logits(self, features: torch.Tensor, sentence: torch.Tensor) -> torch.Tensor:
        """Mismatched pairs as the official code builds them: image i with caption i+1,
        (B-1,) conditional logits."""
        if len(features) < 2:
            raise ValueError("wrong pairs need a batch of at least 2 images")
        return self.cond_logits(features[:-1], sentence[1:])

    def forward(self, image: torch.Tensor, sentence: torch.Tensor, wrong: bool = False):
        """-> (uncond_logits (B,), cond_logits (B,)); with ``wrong=True`` a third item, the
        (B-1,) conditional logits of the mismatched pairs (``wrong_logits``), from the same
        features."""
        h = self.features(image)  # (B, 8 ndf, 4, 4)
        out = (self.uncond_logits(h), self.cond_logits(h, sentence))  # (B,), (B,)
        return (*out, self.wrong_logits(h, sentence)) if wrong else out


def build_discriminators(
    base_size: int = 64,
    num_stages: int = 3,
    ndf: int = 64,
    text_dim: int = 256,
    residual: bool = False,
    minibatch_std: bool = False,
) -> nn.ModuleList:
    """One Discriminator per generator stage: sizes base_size * 2**i, i < num_stages."""
    check_choice(num_stages, (1, 2, 3), "num_stages")
    return nn.ModuleList(
        Discriminator(base_size * 2**i, base_size, ndf, text_dim, residual, minibatch_std)
        for i in range(num_stages)
    )


# --------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------


def _bce(logits: torch.Tensor, target: float) -> torch.Tensor:
    return F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, target))


def discriminator_loss(
    real_u: torch.Tensor,
    real_c: torch.Tensor,
    fake_u: torch.Tensor,
    fake_c: torch.Tensor,
    wrong_c: torch.Tensor,
) -> torch.Tensor:
    """One D_i's loss (official): (BCE(real_u,1) + BCE(real_c,1)) / 2
    + (BCE(fake_u,0) + BCE(fake_c,0) + BCE(wrong_c,0)) / 3, each BCE a mean over its batch.

    u: unconditional logits, c: conditional ones; ``wrong_c`` from ``D.wrong_logits(real
    features, sentence)`` (B-1 pairs). Fakes are detached by the caller.
    """
    named = dict(real_u=real_u, real_c=real_c, fake_u=fake_u, fake_c=fake_c, wrong_c=wrong_c)
    for name, x in named.items():
        check_logits(x, name)
    real = (_bce(real_u, 1.0) + _bce(real_c, 1.0)) / 2
    return real + (_bce(fake_u, 0.0) + _bce(fake_c, 0.0) + _bce(wrong_c, 0.0)) / 3


def generator_loss(
    stage_logits: Sequence[tuple[torch.Tensor, torch.Tensor]],
    mu: torch.Tensor,
    logvar: torch.Tensor,
    damsm_term: torch.Tensor | None = None,
    lambda_damsm: float = LAMBDA_DAMSM,
    kl_weight: float = KL_WEIGHT,
) -> torch.Tensor:
    """sum_i [BCE(fake_u_i, 1) + BCE(fake_c_i, 1)] + lambda * DAMSM + kl_weight * KL / c.

    ``stage_logits``: one (uncond, cond) pair of logits per stage, from D_i on G's image i.
    ``damsm_term``: a scalar the caller computed on the LAST stage's image with the frozen
    DAMSM encoders, ``damsm_loss(...)["total"]`` (word + sentence, both directions; the
    official code weights both by lambda). KL / c is ``kl_divergence`` (summed over the c
    dims, mean over the batch) divided by c: the official mean over all elements.
    """
    if len(stage_logits) == 0:
        raise ValueError("stage_logits must hold one (uncond, cond) pair per stage, got none")
    loss = mu.new_zeros(())
    for i, pair in enumerate(stage_logits):
        if len(pair) != 2:
            raise ValueError(f"stage_logits[{i}] must be an (uncond, cond) pair of logits")
        check_logits(pair[0], f"stage_logits[{i}][0] (unconditional)")
        check_logits(pair[1], f"stage_logits[{i}][1] (conditional)")
        loss = loss + _bce(pair[0], 1.0) + _bce(pair[1], 1.0)  # non-saturating
    if damsm_term is not None:
        if not isinstance(damsm_term, torch.Tensor) or damsm_term.numel() != 1:
            raise ValueError("damsm_term must be a scalar tensor (damsm_loss(...)['total'])")
        loss = loss + lambda_damsm * damsm_term.reshape(())
    return loss + kl_weight * kl_divergence(mu, logvar) / mu.shape[1]
