r"""Exponential moving average of a generator's weights (Karras et al. 2018 onwards).

After every step, :math:`\theta_{EMA} \leftarrow \beta_t\,\theta_{EMA} + (1-\beta_t)\,\theta`
with :math:`\beta_t = \min(\beta, (1 + t) / (10 + t))`: the warm-up keeps a short run's average
from remembering the random initial weights (0.999^1000 would still give them 37%).
Samples from the averaged generator are smoother than from the raw one, because the raw
weights keep oscillating in the adversarial game. Buffers (BatchNorm statistics) are copied.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class EMA:
    """Keeps ``self.module``, an averaged copy of ``source``; ``update()`` after each step."""

    def __init__(self, source: nn.Module, decay: float = 0.999) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must lie in [0, 1), got {decay}")
        self.decay = decay
        self.updates = 0
        self.source = source
        self.module = copy.deepcopy(source).eval().requires_grad_(False)

    def current_decay(self) -> float:
        return min(self.decay, (1 + self.updates) / (10 + self.updates))

    @torch.no_grad()
    def update(self) -> None:
        ema_p = list(self.module.parameters())
        src_p = [p.detach() for p in self.source.parameters()]
        weight = 1.0 - self.current_decay()
        torch._foreach_lerp_(ema_p, src_p, weight)  # one fused kernel, no host sync
        self.updates += 1
        for b_ema, b in zip(self.module.buffers(), self.source.buffers()):
            b_ema.copy_(b)


@torch.no_grad()
def recalibrate_batchnorm(module: nn.Module, batches, keep: nn.Module | None = None) -> nn.Module:
    """Re-estimate BatchNorm statistics for ``module`` as it is now ("standing statistics").

    The EMA copy averages the weights but its BatchNorm buffers are the raw generator's
    running statistics, which do not match the averaged weights; in eval mode that gives
    washed-out, low-diversity samples. This resets every BatchNorm's statistics, runs
    ``module(*args)`` for each ``args`` in ``batches`` in train mode with a cumulative
    average (``momentum=None``), and returns the module in eval mode. The BatchNorms inside
    ``keep`` (a frozen sub-module, such as StackGAN's Stage-I) keep their statistics.
    """
    kept = set() if keep is None else {id(m) for m in keep.modules()}
    norms = [
        m
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm) and id(m) not in kept
    ]
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average over the batches below
    module.train()
    if keep is not None:
        keep.eval()
    count = 0
    for args in batches:
        module(*args)
        count += 1
    if norms and count == 0:
        raise ValueError("recalibrate_batchnorm needs at least one batch")
    for m, momentum in zip(norms, momenta, strict=True):
        m.momentum = momentum
    return module.eval()
