r"""Discriminator regularisers: WGAN-GP with PGGAN's drift term, and R1 (StyleGAN, StarGAN v2).

All are terms ADDED to the discriminator's loss; each returns a float32 scalar that can be
backpropagated into D's parameters (the input gradient is taken with ``create_graph=True``).

**WGAN-GP** (Gulrajani et al. 2017; PGGAN's loss, lambda = 10). For each sample draw
:math:`\epsilon_b \sim U[0, 1)` (one per sample, shared by its pixels) and interpolate
:math:`\hat x_b = x_b + \epsilon_b (\tilde x_b - x_b)` between the real :math:`x` and the fake
:math:`\tilde x`; then

.. math:: L_{GP} = \lambda\, \mathbb E_b \big[(\|\nabla_{\hat x} D(\hat x)_b\|_2 - 1)^2\big].

**Drift** (PGGAN Sec. A.1): :math:`L_{drift} = \epsilon_{drift}\, \mathbb E[D(x)^2]` on the real
scores, :math:`\epsilon_{drift} = 0.001`, keeps the critic's output from drifting far from 0.
It takes the scores D's loss already computed (no second forward).

**R1** (Mescheder et al. 2018), on REAL images only:

.. math:: R_1 = \frac{\gamma}{2}\, \mathbb E_b \big[\|\nabla_x D(x)_b\|_2^2\big].

StyleGAN (``r1_penalty * (r1_gamma * 0.5)``, mean over the batch; gamma 10 at 1024 px) and
StarGAN v2 (``0.5 * grad.pow(2).view(B, -1).sum(1).mean(0)`` times ``lambda_reg`` = 1) compute
the same quantity: :math:`\gamma` here is StyleGAN's ``r1_gamma`` and StarGAN v2's
``lambda_reg``.

Precision: under ``torch.autocast`` a bf16 input gradient is too coarse for a squared norm, so
every penalty runs D with autocast DISABLED (on the CPU and on the input's device) on a float32
copy of its input, and returns float32, as the official codes take these gradients in fp32.
D's parameters should be float32 (autocast's usual setting) for this to be fp32 end to end.

Gradients: the input gradient is that of ``D(x).sum()``: for a D that treats samples
independently this is each sample's own gradient; with minibatch-stddev the samples interact
and, as in the official code, the cross-sample terms are included.

**Lazy regularisation** (StyleGAN2, Sec. 3.1): evaluate R1 only every k steps (k = 16 for D)
and multiply it by k so that its average strength is unchanged. StyleGAN2 takes the penalty's
step as a SEPARATE optimiser step, so D's optimiser steps k + 1 times per k minibatches; to keep
the same dynamics per minibatch it rescales Adam by :math:`c = k / (k + 1)`: lr -> c lr,
beta -> beta^c (:func:`lazy_regularisation_adam`). When the penalty is added to the loss of an
ordinary step instead, only the factor k applies.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import torch

Discriminator = Callable[[torch.Tensor], torch.Tensor]  # x (B, ...) -> scores (B, ...)


def _check_images(name: str, x: torch.Tensor) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point() or x.dim() < 2:
        raise TypeError(
            f"{name} must be a float tensor (B, ...), got {type(x).__name__} "
            f"{getattr(x, 'dtype', '')} {tuple(getattr(x, 'shape', ()))}"
        )


@contextlib.contextmanager
def _autocast_off(device_type: str):
    """Disable autocast on the CPU and on ``device_type`` (e.g. "cuda") inside the block."""
    with contextlib.ExitStack() as stack:
        for kind in {"cpu", device_type}:
            stack.enter_context(torch.autocast(device_type=kind, enabled=False))
        yield


def input_gradients(
    discriminator: Discriminator, x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(scores, grad) of D at a float32 copy of x, autocast off; grad = d sum(D(x)) / dx.

    x (B, ...) -> scores: D's output in float32; grad (B, ...) float32, built with
    ``create_graph=True`` so a penalty on it backpropagates into D's parameters.
    """
    _check_images("x", x)
    with _autocast_off(x.device.type):
        x32 = x.detach().float().requires_grad_(True)
        scores = discriminator(x32)
        if not isinstance(scores, torch.Tensor):
            raise TypeError(
                "the discriminator passed to a penalty must return one tensor of scores, got "
                f"{type(scores).__name__}; wrap it (e.g. lambda x: D(x, y)[0])"
            )
        scores = scores.float()
        (grad,) = torch.autograd.grad(scores.sum(), x32, create_graph=True)
    return scores, grad


def wgan_gp_penalty(
    discriminator: Discriminator,
    real: torch.Tensor,
    fake: torch.Tensor,
    weight: float = 10.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """lambda * mean_b (||grad D(x_hat)_b||_2 - 1)^2 at per-sample interpolates; float32 scalar.

    real, fake (B, ...) of the same shape (``fake`` is detached: the penalty trains D only);
    epsilon (B, 1, ..., 1) ~ U[0, 1) from ``generator`` (on the inputs' device) if given.
    A conditional D is passed as a closure, e.g. ``lambda x: D(x, labels)``.
    """
    _check_images("real", real)
    _check_images("fake", fake)
    if real.shape != fake.shape:
        raise ValueError(
            f"real and fake must have the same shape, got {tuple(real.shape)} and "
            f"{tuple(fake.shape)}"
        )
    real32, fake32 = real.detach().float(), fake.detach().float()
    eps_shape = (len(real),) + (1,) * (real.dim() - 1)  # one epsilon per sample
    eps = torch.rand(eps_shape, generator=generator, device=real.device, dtype=torch.float32)
    interpolates = real32 + eps * (fake32 - real32)  # x_hat = lerp(real, fake, eps)
    _, grad = input_gradients(discriminator, interpolates)
    norms = grad.flatten(1).norm(2, dim=1)  # (B,) ||grad_b||_2
    return weight * (norms - 1.0).pow(2).mean()


def drift_penalty(real_scores: torch.Tensor, weight: float = 0.001) -> torch.Tensor:
    """PGGAN's drift term: weight * mean(D(real)^2), in float32; real_scores (B, ...)."""
    if not isinstance(real_scores, torch.Tensor) or not real_scores.is_floating_point():
        raise TypeError(
            f"real_scores must be a float tensor, got {type(real_scores).__name__} "
            f"{getattr(real_scores, 'dtype', '')}"
        )
    return weight * real_scores.float().pow(2).mean()


def check_r1_gamma(gamma: float) -> None:
    """A recipe's R1 weight: a number >= 0 (0: no R1)."""
    if isinstance(gamma, bool) or not gamma >= 0:
        raise ValueError(f"r1_gamma must be >= 0, got {gamma!r}")


def check_lazy_r1(gamma: float, every: int) -> None:
    """A recipe's lazy R1: ``gamma`` >= 0 (0: no R1) and ``every`` an int >= 1 (steps)."""
    check_r1_gamma(gamma)
    if isinstance(every, bool) or not (isinstance(every, int) and every >= 1):
        raise ValueError(f"r1_every must be an int >= 1 (steps), got {every!r}")


def lazy_r1_config(gamma: float, every: int) -> dict:
    """A lazy R1 for a run's config: recorded only when on (the papers' runs have none)."""
    return {"r1_gamma": gamma, "r1_every": every} if gamma else {}


def r1_penalty(
    discriminator: Discriminator,
    real: torch.Tensor,
    gamma: float = 1.0,
    *,
    return_scores: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """gamma / 2 * mean_b ||grad_x D(x)_b||_2^2 on the reals; float32 scalar.

    real (B, ...). ``gamma``: StyleGAN's r1_gamma (10 at 1024 px) or StarGAN v2's lambda_reg
    (1). With ``return_scores=True`` returns (penalty, scores): the fp32 real scores of the
    same forward, so a loss that needs D(real) anyway (StarGAN v2 shares it) does not run D
    twice.
    """
    _check_images("real", real)
    scores, grad = input_gradients(discriminator, real)
    penalty = 0.5 * gamma * grad.pow(2).flatten(1).sum(dim=1).mean()
    return (penalty, scores) if return_scores else penalty


def lazy_regularisation_adam(
    lr: float, betas: tuple[float, float], interval: int
) -> tuple[float, tuple[float, float]]:
    """StyleGAN2's Adam settings when a penalty runs every ``interval`` = k steps.

    For a penalty taken as its own optimiser step every k minibatches: c = k / (k + 1); returns
    (c * lr, (beta1 ** c, beta2 ** c)). Multiply the penalty itself by k on the steps where it
    runs. k must be >= 2 (k = 1, a penalty every step, needs no lazy settings).
    """
    if not isinstance(interval, int) or interval < 2:
        raise ValueError(
            f"interval must be an int >= 2 (a penalty every k steps); got {interval!r}. "
            "With a penalty at every step keep lr and betas as they are"
        )
    c = interval / (interval + 1)
    return lr * c, (betas[0] ** c, betas[1] ** c)
