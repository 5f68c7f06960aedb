r"""Exponential moving average of a generator's weights (Karras et al. 2018 onwards).

After every step, :math:`\theta_{EMA} \leftarrow \beta\,\theta_{EMA} + (1-\beta)\,\theta`.
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
        self.source = source
        self.module = copy.deepcopy(source).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self) -> None:
        ema_p = list(self.module.parameters())
        src_p = [p.detach() for p in self.source.parameters()]
        torch._foreach_lerp_(ema_p, src_p, 1.0 - self.decay)  # one fused kernel, no host sync
        for b_ema, b in zip(self.module.buffers(), self.source.buffers()):
            b_ema.copy_(b)
