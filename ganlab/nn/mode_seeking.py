r"""Mode seeking (Mao et al. 2019, "Mode Seeking Generative Adversarial Networks for Diverse
Image Synthesis"): a generator term against samples of one condition that look alike.

Draw two latent codes :math:`z_1, z_2` for the SAME condition :math:`c` and compare how far
apart the images are with how far apart the codes are:

.. math:: r = \frac{d_I(G(c, z_1), G(c, z_2))}{d_z(z_1, z_2)}, \qquad
          L_{ms} = \frac{1}{r + \epsilon},

with mean absolute differences for :math:`d_I` and :math:`d_z`. G minimises
:math:`\lambda_{ms} L_{ms}`: a generator that maps different codes to one image (mode collapse
for that condition) pays for it. The paper adds it to conditional GANs, StackGAN++ among them;
it is not in any of the course's papers, so a chapter that uses it states it as a deviation.

Pairs come from a batch whose second half repeats the first half's conditions:
``images[:B/2]`` and ``images[B/2:]`` were drawn for the same conditions with different z.
"""

from __future__ import annotations

import torch

from ganlab.validation import check_tensor

EPS = 1e-5  # keeps the term finite when the two images of a condition coincide


def mode_seeking_loss(images: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) images and (B, Z) codes, rows i and i + B/2 sharing a condition -> the
    float32 scalar 1 / (mean |x_i - x_{i+B/2}| / mean |z_i - z_{i+B/2}| + eps)."""
    check_tensor(images, "images", ("B", "C", "H", "W"))
    check_tensor(z, "z", (len(images), "Z"), why="one code per image")
    if len(images) < 2 or len(images) % 2:
        raise ValueError(
            f"mode seeking pairs the two halves of the batch: need an even batch >= 2, "
            f"got {len(images)}"
        )
    half = len(images) // 2
    x, z = images.float(), z.float()
    ratio = (x[:half] - x[half:]).abs().mean() / (z[:half] - z[half:]).abs().mean()
    return 1.0 / (ratio + EPS)
