r"""Conditioning Augmentation (CA): Zhang et al., *StackGAN*, 2017 (Sec. 3.1); reused by AttnGAN.

A sentence embedding :math:`\varphi_t` is high-dimensional (1024-d from char-CNN-RNN) and the
training set has few captions, so the conditioning manifold is sparse. CA does not feed
:math:`\varphi_t` to the generator directly; it draws a *latent condition* from a Gaussian
whose mean and diagonal covariance are functions of the embedding:

.. math::
    [\mu_0, \log\sigma_0^2] = \mathrm{act}(W \varphi_t + b), \qquad
    \hat c_0 = \mu_0 + \sigma_0 \odot \varepsilon, \quad \varepsilon \sim \mathcal N(0, I)

(the *reparameterisation trick*: the randomness sits in :math:`\varepsilon`, so gradients flow
to :math:`\mu_0` and :math:`\sigma_0`). To keep the conditioning manifold smooth, the generator's
loss gains the regulariser

.. math::
    D_{KL}\big(\mathcal N(\mu_0, \mathrm{diag}(\sigma_0^2)) \,\|\, \mathcal N(0, I)\big)
    = \tfrac12 \sum_{j=1}^{c} \big(\sigma_j^2 + \mu_j^2 - 1 - \log\sigma_j^2\big).

Shapes: text embedding (B, text_dim) -> FC (B, 2c) -> mu (B, c), logvar (B, c) -> c (B, c).
The FC output's FIRST c columns are mu, the NEXT c are logvar (a port once sliced them
wrong; ``tests/test_conditioning.py`` pins the split against the FC weights).

Deviations and choices (official values named):

=======================  ==========================================  ===========================
what                     official                                    course
=======================  ==========================================  ===========================
activation after the FC  StackGAN (TF): LeakyReLU(0.2);              ``activation=`` picks;
                         StackGAN-Pytorch: ReLU (forces mu >= 0,     default "leaky_relu"
                         a known deviation); AttnGAN: FC to 4c then
                         GLU, which halves it to 2c
second half of the FC    TF: log sigma (std); PyTorch ports: logvar  logvar = 2 log sigma
KL reduction             official code: mean over ALL B*c elements,  ``kl_divergence``: sum
                         times a weight of 2.0 (both official        over the c dims, mean
                         configs); the paper writes lambda = 1       over the batch (a true KL
                         without a reduction                         per sample)
=======================  ==========================================  ===========================

How the reductions relate: official ``2.0 * mean_{b,j} kl_bj`` equals
``(2.0 / c) * kl_divergence(mu, logvar)``; with c = 128 that is 1/64 of the per-sample KL.
The paper's "lambda = 1" is ambiguous about the reduction; read on the per-sample KL it would
be 64x stronger than what the official code trains with. ``ganlab.models.stackgan`` therefore
weights the *per-dimension* mean (``kl_divergence / c``) by ``KL_WEIGHT = 2.0``, matching the code.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.validation import check_choice, check_tensor

ACTIVATIONS = ("leaky_relu", "relu", "glu")


def kl_divergence(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, diag(exp(logvar))) || N(0, I)): summed over the c dims, averaged over the batch.

    mu, logvar: (B, c) -> scalar. Per element 0.5 * (exp(logvar) + mu^2 - 1 - logvar) >= 0.
    The official StackGAN code takes the mean over all B*c elements instead (= this / c) and
    weights it by 2.0; the paper writes lambda = 1 (see the module docstring).
    """
    check_tensor(mu, "mu (B, c_dim)", ("B", "c_dim"))
    check_tensor(logvar, "logvar (B, c_dim)", tuple(mu.shape), why="the shape of mu")
    kl = 0.5 * (logvar.exp() + mu.pow(2) - 1.0 - logvar)  # (B, c), each >= 0
    return kl.sum(dim=1).mean()  # sum over c, mean over B -> scalar


class ConditioningAugmentation(nn.Module):
    """Text embedding (B, text_dim) -> (c, mu, logvar), each (B, c_dim).

    ``activation``: "leaky_relu" (StackGAN TF, slope 0.2; course default), "relu"
    (StackGAN-Pytorch; forces mu >= 0 and logvar >= 0, a known deviation) or "glu"
    (AttnGAN: the FC goes to 4*c_dim and a GLU halves it to 2*c_dim).
    """

    def __init__(self, text_dim: int, c_dim: int = 128, activation: str = "leaky_relu"):
        super().__init__()
        check_choice(activation, ACTIVATIONS, "activation")
        if text_dim < 1 or c_dim < 1:
            raise ValueError(f"text_dim and c_dim must be >= 1, got {text_dim}, {c_dim}")
        self.text_dim, self.c_dim, self.activation = text_dim, c_dim, activation
        out = 4 * c_dim if activation == "glu" else 2 * c_dim
        self.fc = nn.Linear(text_dim, out)  # (B, text_dim) -> (B, 2c) or (B, 4c) for GLU

    def encode(self, text_embedding: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, text_dim) -> mu (B, c_dim), logvar (B, c_dim); no sampling."""
        check_tensor(text_embedding, "text_embedding", ("B", self.text_dim))
        h = self.fc(text_embedding)  # (B, 2c) or (B, 4c)
        if self.activation == "leaky_relu":
            h = F.leaky_relu(h, 0.2)
        elif self.activation == "relu":
            h = F.relu(h)
        else:
            h = F.glu(h, dim=1)  # (B, 4c) -> first half * sigmoid(second half) -> (B, 2c)
        mu = h[:, : self.c_dim]  # FIRST c_dim columns
        logvar = h[:, self.c_dim :]  # NEXT c_dim columns
        return mu, logvar

    def forward(
        self, text_embedding: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(text_embedding)  # (B, c) each
        eps = torch.randn(
            mu.shape, generator=generator, device=mu.device, dtype=mu.dtype
        )  # (B, c) ~ N(0, I)
        c = mu + torch.exp(0.5 * logvar) * eps  # sigma = exp(logvar / 2)
        return c, mu, logvar

    def extra_repr(self) -> str:
        return f"text_dim={self.text_dim}, c_dim={self.c_dim}, activation={self.activation!r}"
