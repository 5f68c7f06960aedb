r"""Conditional GAN — Mirza & Osindero, *Conditional Generative Adversarial Nets*, 2014.

A GAN learns :math:`p(x)` with a generator :math:`G(z)` and a discriminator :math:`D(x)`
playing the minimax game

.. math::
    \min_G \max_D \; \mathbb{E}_{x}[\log D(x \mid y)]
                   + \mathbb{E}_{z}[\log(1 - D(G(z \mid y) \mid y))].

CGAN feeds the same extra information :math:`y` (here the digit's one-hot label) to BOTH
players: :math:`G(z \mid y)` must produce a digit of class :math:`y`, and :math:`D(x \mid y)`
judges whether :math:`x` is a real digit *of class* :math:`y`. If only G saw the label, D could
not punish a generator that ignores it; if only D saw it, G could not obey it.

Losses (the course trains with logits and ``binary_cross_entropy_with_logits``)::

    L_D = BCE(D(x|y), 1) + BCE(D(G(z|y)|y), 0)
    L_G = BCE(D(G(z|y)|y), 1)        # non-saturating: maximise log D(G(z|y)) (Goodfellow 2014)

Two models, conditioned the same way:

* ``PaperGenerator`` / ``PaperDiscriminator``: the paper's MLP generator and maxout
  discriminator on MNIST, layer for layer (Section 4.1).
* ``ConvGenerator`` / ``ConvDiscriminator``: a small DCGAN-style variant for sharper digits;
  the label enters G with z, and D as constant feature maps beside the image and again
  beside its features.

Deviations from the paper (no official code exists):

=====================  ============================================  ===========================
what                   paper                                         course default
=====================  ============================================  ===========================
optimiser              SGD, batch 100, lr 0.1 decayed by 1.00004     Adam lr 2e-4, betas
                       to 1e-6, momentum 0.5 -> 0.7                  (0.5, 0.999) (stabler, fast)
D output               sigmoid unit                                  a logit; the sigmoid lives
                                                                     in the numerically stable
                                                                     BCE-with-logits loss
G output               784 sigmoid units in [0, 1]                   the same, rescaled to
                                                                     [-1, 1] (course convention)
z                      100-d, uniform on the unit hypercube          uniform U(-1, 1) (centred)
                       [0, 1]^100                                    for the paper model, N(0, 1)
                                                                     for the conv variant
G loss                 minimax log(1 - D(G(z)))                      non-saturating -log D(G(z))
sampling               G's own weights                               an exponential moving
                                                                     average of G's weights
                                                                     (the loop's EMA, decay
                                                                     0.999 after a warm-up)
=====================  ============================================  ===========================

Traps avoided (FIDELITY.md): a popular reimplementation is really an LSGAN (MSE loss), embeds
the label with ``nn.Embedding`` instead of a one-hot code, and writes ``BatchNorm1d(n, 0.8)``
which silently sets ``eps=0.8``. Here: BCE, one-hot, and no BatchNorm in the paper model.
Paper result (Table 1, Parzen-window log-likelihood on MNIST; quoted from FIDELITY.md's
reading of the paper, not re-measured here): CGAN 132 +- 1.8, unconditional GAN 225 +- 2.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.nn import Maxout
from ganlab.validation import (
    check_choice,
    check_count,
    check_labels,
    check_tensor,
    values_checkable,
)
from ganlab.validation import check_images as check_images_of

NUM_CLASSES = 10
IMAGE_SHAPE = (1, 28, 28)


def one_hot(
    y: torch.Tensor, num_classes: int = NUM_CLASSES, dtype=torch.float32, validate: bool = True
) -> torch.Tensor:
    """Labels (N,) int64 in [0, num_classes) -> one-hot (N, num_classes), with clear errors.

    ``validate=False`` skips the range check, which reads the labels back to the host; the
    models skip it only while training on an accelerator (``values_checkable``).
    """
    check_labels(y, num_classes, values=validate)
    return F.one_hot(y.long(), num_classes).to(dtype)


def check_images(x: torch.Tensor, shape=IMAGE_SHAPE, values: bool = False) -> torch.Tensor:
    """Images must be float (N, *shape), in [-1, 1] (the range read only when ``values``)."""
    return check_images_of(x, channels=shape[0], size=tuple(shape[1:]), values=values)


def _condition(y: torch.Tensor, rows: torch.Tensor, of: str, num_classes: int, training: bool):
    """The one-hot code (N, num_classes) of the labels ``y``, one per row of ``rows`` (z or
    the images, named ``of``), in ``rows``' dtype. The range is read wherever that is cheap."""
    why = f"one label per row of {of}, which has shape {tuple(rows.shape)}"
    check_labels(y, num_classes, "labels y", len(rows), values_checkable(y, training), why)
    return one_hot(y, num_classes, rows.dtype, validate=False)


class PaperGenerator(nn.Module):
    """The paper's MLP generator G(z | y).

    z (N,100) -> Linear 200 + ReLU; y one-hot (N,10) -> Linear 1000 + ReLU;
    concat (N,1200) -> Linear 1200 + ReLU (+ dropout 0.5, as in the paper)
    -> Linear 784 + sigmoid -> (N,1,28,28), rescaled to [-1, 1].
    """

    def __init__(self, z_dim: int = 100, num_classes: int = NUM_CLASSES, dropout: float = 0.5):
        super().__init__()
        self.z_dim, self.num_classes = z_dim, num_classes
        self.z_path = nn.Sequential(nn.Linear(z_dim, 200), nn.ReLU())
        self.y_path = nn.Sequential(nn.Linear(num_classes, 1000), nn.ReLU())
        self.joint = nn.Sequential(
            nn.Linear(1200, 1200), nn.ReLU(), nn.Dropout(dropout), nn.Linear(1200, 784)
        )

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None):
        """z ~ U(-1, 1)^100, centred; the paper draws z from the unit hypercube [0, 1]^100."""
        n = check_count(n, "n (the number of samples)")
        return torch.rand(n, self.z_dim, device=device, generator=generator) * 2 - 1

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_tensor(z, "z", ("N", self.z_dim))
        code = _condition(y, z, "z", self.num_classes, self.training)  # (N, 10)
        h = torch.cat([self.z_path(z), self.y_path(code)], 1)  # (N, 1200)
        x = torch.sigmoid(self.joint(h))  # (N, 784) in [0, 1]
        return (2 * x - 1).view(-1, *IMAGE_SHAPE)  # (N, 1, 28, 28) in [-1, 1]


class PaperDiscriminator(nn.Module):
    """The paper's maxout discriminator D(x | y), returning a logit.

    x (N,784) -> maxout 240 units x 5 pieces; y one-hot -> maxout 50 x 5;
    concat (N,290) -> maxout 240 x 4 -> Linear 1 (the sigmoid is in the loss).
    Dropout 0.5 on every hidden layer's input, as in the paper.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, dropout: float = 0.5):
        super().__init__()
        self.num_classes = num_classes
        self.x_path = nn.Sequential(nn.Dropout(dropout), Maxout(784, 240, 5))
        self.y_path = nn.Sequential(Maxout(num_classes, 50, 5))
        self.joint = nn.Sequential(nn.Dropout(dropout), Maxout(290, 240, 4), nn.Dropout(dropout))
        self.out = nn.Linear(240, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_images(x, values=not self.training)  # the range: a host sync, not in training
        code = _condition(y, x, "the images", self.num_classes, self.training)  # (N, 10)
        h = torch.cat([self.x_path(x.flatten(1)), self.y_path(code)], 1)  # (N, 290)
        return self.out(self.joint(h)).squeeze(1)  # (N,) logits


class ConvGenerator(nn.Module):
    """A DCGAN-style G(z | y) for 28x28 digits; the one-hot label is concatenated with z.

    [z (N,z_dim), y (N,10)] -> Linear -> (N, 2w, 7, 7) -> BN, ReLU
    -> ConvT 4x4 s2 -> (N, w, 14, 14) -> BN, ReLU -> ConvT 4x4 s2 -> (N, 1, 28, 28) -> tanh.
    """

    def __init__(self, z_dim: int = 64, num_classes: int = NUM_CLASSES, width: int = 64):
        super().__init__()
        self.z_dim, self.num_classes, self.width = z_dim, num_classes, width
        self.project = nn.Sequential(
            nn.Linear(z_dim + num_classes, 2 * width * 7 * 7, bias=False),
            nn.Unflatten(1, (2 * width, 7, 7)),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
        )
        self.up = nn.Sequential(
            nn.ConvTranspose2d(2 * width, width, 4, 2, 1, bias=False),  # 7 -> 14
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 1, 4, 2, 1),  # 14 -> 28
            nn.Tanh(),
        )

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None):
        """z ~ N(0, I)."""
        n = check_count(n, "n (the number of samples)")
        return torch.randn(n, self.z_dim, device=device, generator=generator)

    def forward(self, z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_tensor(z, "z", ("N", self.z_dim))
        code = _condition(y, z, "z", self.num_classes, self.training)  # (N, 10)
        h = torch.cat([z, code], dim=1)  # (N, z_dim + 10)
        return self.up(self.project(h))  # (N, 1, 28, 28) in [-1, 1]


class ConvDiscriminator(nn.Module):
    """A DCGAN-style D(x | y): the label enters as 10 constant maps beside the image
    and again beside the flattened features, followed by a joint hidden layer (as the
    paper's joint maxout layer), so that label and image features interact.

    [x (N,1,28,28), y maps (N,10,28,28)] -> Conv 4x4 s2 -> (N, w, 14, 14) -> LReLU 0.2
    -> Conv 4x4 s2 -> (N, 2w, 7, 7) -> BN -> LReLU 0.2 -> flatten, concat y
    -> Linear (N, 4w) -> LReLU 0.2 -> Linear -> logit.
    """

    def __init__(self, num_classes: int = NUM_CLASSES, width: int = 64, dropout: float = 0.3):
        super().__init__()
        self.num_classes, self.width = num_classes, width
        self.features = nn.Sequential(
            nn.Conv2d(1 + num_classes, width, 4, 2, 1),  # 28 -> 14
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Conv2d(width, 2 * width, 4, 2, 1, bias=False),  # 14 -> 7
            nn.BatchNorm2d(2 * width),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Flatten(),
        )
        self.joint = nn.Sequential(
            nn.Linear(2 * width * 7 * 7 + num_classes, 4 * width), nn.LeakyReLU(0.2)
        )
        self.out = nn.Linear(4 * width, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        check_images(x, values=not self.training)  # the range: a host sync, not in training
        code = _condition(y, x, "the images", self.num_classes, self.training)  # (N, 10)
        maps = code[:, :, None, None].expand(-1, -1, *x.shape[2:])  # (N, 10, 28, 28)
        h = self.features(torch.cat([x, maps], dim=1))  # (N, 2w*7*7)
        h = self.joint(torch.cat([h, code], dim=1))  # (N, 4w)
        return self.out(h).squeeze(1)  # (N,) logits


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """L_D = BCE(D(x|y), 1) + BCE(D(G(z|y)|y), 0), each a mean over the batch."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating L_G = BCE(D(G(z|y)|y), 1) = mean softplus(-logit)."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


ARCHITECTURES = {
    "paper": (PaperGenerator, PaperDiscriminator),
    "conv": (ConvGenerator, ConvDiscriminator),
}


def build_cgan(arch: str = "conv", **kwargs) -> tuple[nn.Module, nn.Module]:
    """(G, D) for ``arch`` in {"paper", "conv"}; ``kwargs``: z_dim, width."""
    check_choice(arch, sorted(ARCHITECTURES), "arch")
    g_cls, d_cls = ARCHITECTURES[arch]
    if arch == "paper":
        return g_cls(z_dim=kwargs.get("z_dim", 100)), d_cls()
    width = kwargs.get("width", 64)
    return g_cls(z_dim=kwargs.get("z_dim", 64), width=width), d_cls(width=width)
