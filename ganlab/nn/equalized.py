r"""Equalised learning rate (Karras et al., *PGGAN*, 2018, Sec. 4.1); used by PGGAN and StyleGAN.

He initialisation draws :math:`w \sim \mathcal N(0, c^2)` with the He constant
:math:`c = g / \sqrt{\text{fan\_in}}` (gain :math:`g = \sqrt 2` before a (leaky) ReLU). PGGAN
moves :math:`c` out of the initialisation and into the forward pass: the STORED parameter
:math:`\hat w` is drawn from :math:`\mathcal N(0, 1)` and every forward uses

.. math::
    w = c \, \hat w, \qquad c = \frac{g}{\sqrt{\text{fan\_in}}}.

At initialisation this is the same network. It differs in training: Adam divides each
gradient by its running RMS, so its step on :math:`\hat w` is about the learning rate
:math:`\eta` whatever the gradient's scale. Relative to the parameter's own scale (1) that step
is :math:`\eta` in EVERY layer, so a layer with a large fan-in (small :math:`c`) learns as fast
as one with a small fan-in. With plain He init the step is :math:`\eta` against a weight of
scale :math:`c`, a relative step :math:`\eta / c` that grows with :math:`\sqrt{\text{fan\_in}}`.

StyleGAN adds a learning-rate multiplier :math:`\lambda` (``lr_mul``; 0.01 in its mapping
network): the parameter is drawn from :math:`\mathcal N(0, 1/\lambda^2)` and scaled at run time
by :math:`c\lambda`, the bias by :math:`\lambda`,

.. math::
    w = c\lambda\, \hat w, \quad \hat w \sim \mathcal N(0, \lambda^{-2}); \qquad
    b = \lambda\, \hat b,

so the effective weight still starts with the He scale :math:`c` while Adam's relative step on
it is :math:`\lambda\eta`: the mapping network learns 100x slower than the synthesis network.

The official ``get_weight`` (PGGAN and StyleGAN, TensorFlow) computes
``he_std = gain / sqrt(fan_in)``, ``init_std = 1 / lrmul``, ``runtime_coef = he_std * lrmul``;
fan_in is in_features for a dense layer and in_channels * k * k for a conv. Gains used by the
official models: sqrt(2) for every hidden layer, 1 for toRGB and for StyleGAN's style
projection A. Shapes: :class:`EqualizedLinear` (..., in) -> (..., out), as ``nn.Linear``
(PGGAN's dense layers flatten (B, C, H, W) first; the caller does that);
:class:`EqualizedConv2d` (B, C_in, H, W) -> (B, C_out, H', W').

===================  ==========================================  ===========================
what                 official                                    course
===================  ==========================================  ===========================
bias init            zeros (``apply_bias``), scaled by lrmul at  ``bias_init`` is the
                     run time; StyleGAN2-ADA stores ``bias_init`` EFFECTIVE initial bias: the
                     and multiplies by lrmul                     stored value is bias_init /
                                                                 lr_mul (the same when 0)
conv padding         always 'SAME', odd kernels only             ``padding=None`` = k // 2
                                                                 (SAME for odd k); int to
                                                                 override
===================  ==========================================  ===========================

These layers are not ``nn.Linear`` / ``nn.Conv2d`` subclasses, so
:func:`ganlab.nn.spectral.apply_spectral_norm` leaves them alone (no official model combines
the two).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

HE_GAIN = math.sqrt(2.0)  # the gain for layers followed by a (leaky) ReLU, as the official code


def _check_scale_arguments(gain: float, lr_mul: float) -> None:
    if not gain > 0:
        raise ValueError(f"gain must be > 0 (sqrt(2) before a ReLU, 1 for linear), got {gain}")
    if not lr_mul > 0:
        raise ValueError(f"lr_mul must be > 0 (1, or 0.01 in StyleGAN's mapping), got {lr_mul}")


class EqualizedLinear(nn.Module):
    r"""Dense layer with a run-time He scale: y = x (c lr_mul w_hat)^T + lr_mul b_hat.

    x (..., in_features) -> (..., out_features). The stored ``weight`` (out, in) is drawn from
    N(0, 1 / lr_mul^2); ``scale`` = gain / sqrt(in_features) * lr_mul is applied in
    :meth:`forward`, never written into the parameter.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        *,
        gain: float = HE_GAIN,
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        if in_features < 1 or out_features < 1:
            raise ValueError(
                f"in_features and out_features must be >= 1, got {in_features}, {out_features}"
            )
        _check_scale_arguments(gain, lr_mul)
        self.in_features, self.out_features = in_features, out_features
        self.gain, self.lr_mul = float(gain), float(lr_mul)
        self.scale = self.gain / math.sqrt(in_features) * self.lr_mul  # c * lr_mul
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / self.lr_mul)
        if bias:
            self.bias = nn.Parameter(torch.full((out_features,), float(bias_init) / self.lr_mul))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.linear(x, self.weight * self.scale, bias)  # (..., in) -> (..., out)

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, gain={self.gain:.4g}, lr_mul={self.lr_mul:g}"
        )


class EqualizedConv2d(nn.Module):
    r"""Conv layer with a run-time He scale: y = conv(x, c lr_mul w_hat) + lr_mul b_hat.

    x (B, in_channels, H, W) -> (B, out_channels, H', W'); H' = H for stride 1 and the default
    ``padding=None`` (k // 2, the official 'SAME'). fan_in = in_channels * k * k; the stored
    ``weight`` (out, in, k, k) is drawn from N(0, 1 / lr_mul^2).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        stride: int = 1,
        padding: int | None = None,
        bias: bool = True,
        *,
        gain: float = HE_GAIN,
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
    ) -> None:
        super().__init__()
        if in_channels < 1 or out_channels < 1 or kernel_size < 1 or stride < 1:
            raise ValueError(
                "in_channels, out_channels, kernel_size and stride must be >= 1, got "
                f"{in_channels}, {out_channels}, {kernel_size}, {stride}"
            )
        if padding is None:
            if kernel_size % 2 == 0:
                raise ValueError(
                    f"padding=None means 'SAME' (k // 2), which needs an odd kernel; got "
                    f"kernel_size={kernel_size}: pass padding explicitly"
                )
            padding = kernel_size // 2
        _check_scale_arguments(gain, lr_mul)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding
        self.gain, self.lr_mul = float(gain), float(lr_mul)
        fan_in = in_channels * kernel_size * kernel_size
        self.scale = self.gain / math.sqrt(fan_in) * self.lr_mul  # c * lr_mul
        self.weight = nn.Parameter(
            torch.randn(out_channels, in_channels, kernel_size, kernel_size) / self.lr_mul
        )
        if bias:
            self.bias = nn.Parameter(torch.full((out_channels,), float(bias_init) / self.lr_mul))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bias = None if self.bias is None else self.bias * self.lr_mul
        return F.conv2d(x, self.weight * self.scale, bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}, "
            f"gain={self.gain:.4g}, lr_mul={self.lr_mul:g}"
        )
