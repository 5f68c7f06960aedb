r"""Spectral normalisation helpers (Miyato et al. 2018); SPADE's G and D use it on their convs.

A layer's weight W (a conv's reshaped to (out, in * k * k)) is divided by its largest singular
value, so the layer is 1-Lipschitz:

.. math::
    W_{SN} = W / \sigma(W), \qquad \sigma(W) = \max_{\|h\|=1} \|W h\|_2 \approx u^\top W v,

with :math:`\sigma` estimated by power iteration on vectors kept between steps:
:math:`v \leftarrow W^\top u / \|W^\top u\|`, :math:`u \leftarrow W v / \|W v\|`, one iteration
per forward in training mode (``n_power_iterations=1``, as SPADE's and PyTorch's default); in
eval mode the stored u, v are used as they are. The estimate's error shrinks by about
:math:`(\sigma_2 / \sigma_1)^2` per iteration, so early in training :math:`\sigma(W_{SN})` can
sit a few percent above 1 (measured on a random 8 x 36 conv matrix with
:math:`\sigma_2 / \sigma_1 = 0.94`: 1.062 after PyTorch's 15 initial iterations and one
forward, 1.0007 after 31 forwards, 1.0000 after about 100; power iteration underestimates
sigma, so sigma(W_SN) approaches 1 from above). This module wraps PyTorch's
``torch.nn.utils.parametrizations.spectral_norm`` (the parametrisation API; state-dict keys
``parametrizations.weight.original``, ``..._u``, ``..._v``); it does not reimplement it.

* :func:`apply_spectral_norm` wraps every ``nn.Linear`` and ``nn.Conv*`` / ``nn.ConvTranspose*``
  in a module (the module itself included, so it also takes a single layer) and skips layers
  already wrapped.
* :func:`remove_spectral_norm` undoes it, freezing the CURRENT estimate: each layer's weight
  becomes a plain parameter equal to W / sigma as an eval-mode forward would use it, so the
  network computes the same function afterwards.

Which layers, in the official SPADE code: in G, each SPADE ResBlk's ``conv_0``, ``conv_1`` and
``conv_s`` (not the convs inside the SPADE modulation, not G's first FC/conv or last conv); in
the PatchGAN D, every conv except the first and the last. So call :func:`apply_spectral_norm`
on those layers, not blindly on a whole network. Custom layers (e.g.
:class:`ganlab.nn.EqualizedConv2d`) are not touched.
"""

from __future__ import annotations

from torch import nn
from torch.nn.utils import parametrizations, parametrize

SPECTRAL_NORM_LAYERS = (
    nn.Linear,
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


def has_spectral_norm(layer: nn.Module) -> bool:
    """True when ``layer.weight`` is spectrally normalised by PyTorch's parametrisation."""
    if not parametrize.is_parametrized(layer, "weight"):
        return False
    # PyTorch's class is private (_SpectralNorm); compare by name rather than import it
    return any(type(p).__name__ == "_SpectralNorm" for p in layer.parametrizations.weight)


def apply_spectral_norm(
    module: nn.Module, n_power_iterations: int = 1, eps: float = 1e-12
) -> nn.Module:
    """Wrap every Linear / Conv / ConvTranspose weight in ``module`` (itself included); returns it.

    Layers already spectrally normalised are left as they are (no double wrapping).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"apply_spectral_norm expects an nn.Module, got {type(module).__name__}")
    if n_power_iterations < 1:
        raise ValueError(f"n_power_iterations must be >= 1, got {n_power_iterations}")
    for layer in list(module.modules()):  # a list: wrapping adds submodules while we iterate
        if isinstance(layer, SPECTRAL_NORM_LAYERS) and not has_spectral_norm(layer):
            parametrizations.spectral_norm(
                layer, "weight", n_power_iterations=n_power_iterations, eps=eps
            )
    return module


def remove_spectral_norm(module: nn.Module) -> nn.Module:
    """Replace each spectrally normalised weight by the plain parameter W / sigma; returns module.

    sigma is the layer's current estimate (no extra power iteration is run), so eval-mode
    outputs are unchanged. A weight that carries other parametrisations as well raises
    ``ValueError`` (removing would drop them too).
    """
    if not isinstance(module, nn.Module):
        raise TypeError(f"remove_spectral_norm expects an nn.Module, got {type(module).__name__}")
    for name, layer in list(module.named_modules()):
        if not has_spectral_norm(layer):
            continue
        if len(layer.parametrizations.weight) != 1:
            raise ValueError(
                f"{name or type(layer).__name__}.weight has other parametrisations besides "
                "spectral norm; remove them first"
            )
        training = layer.training
        layer.eval()  # evaluate W / sigma with the stored u, v: no power-iteration step
        parametrize.remove_parametrizations(layer, "weight", leave_parametrized=True)
        layer.train(training)
    return module
