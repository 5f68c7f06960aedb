r"""A perceptual distance in the form of LPIPS, on any network's multi-layer features.

LPIPS (Zhang et al. 2018, "The Unreasonable Effectiveness of Deep Features as a Perceptual
Metric") compares two images x, x0 through the activations of L layers of a network. With
f_l(x) the (C_l, H_l, W_l) activation of layer l, and \hat f_l its channel vector divided by
its length at every spatial position,

.. math::
    \hat f_l(x)_{:,h,w} = f_l(x)_{:,h,w} / (\|f_l(x)_{:,h,w}\|_2 + \epsilon),
    \qquad \epsilon = 10^{-10},

    d(x, x_0) = \sum_l \frac{1}{H_l W_l} \sum_{h,w} \sum_c
                w_{l,c} \, (\hat f_l(x)_{c,h,w} - \hat f_l(x_0)_{c,h,w})^2 .

The papers use AlexNet or VGG16 trained on ImageNet, with per-channel weights w_{l,c} >= 0
fitted to human judgments (the "lin" layers). Neither can be downloaded here, so the course
uses its judge's multi-layer features (a face judge's ``multilayer_features``) and, by
default, **uniform weights w_{l,c} = 1**: the "baseline" variant of the LPIPS code
(``lpips=False``: the squared differences are summed over channels). Learned weights can be
passed (``weights=``, one non-negative (C_l,) vector per layer); the course does not fit
any. Each layer then contributes between 0 and 4 (the squared distance of two unit vectors),
so d lies in [0, 4 L].

Why the normalisation: a unit channel vector keeps which features fire at a position and
drops how strongly, so a change of contrast moves d little while a change of content moves
it a lot; the spatial mean makes every layer count equally whatever its resolution.

Calibration (:func:`calibrate_perceptual_distance`): a perceptual distance must rise with the
size of a real change and stay small for a change a person does not notice. Given pairs that
differ by known amounts it reports the Spearman rank correlation of d with the amount, and d
for a one-pixel shift relative to d between unrelated images (where pixel L2 is large).

Measured on the face judge (``ganlab.judges.faces.face_perceptual_distance``: uniform
weights on its four stages; ``perceptual_calibration``, n = 40 test faces at 64 px, stored in
the judge's manifest and re-measured on 6 faces by ``tests/test_judge_faces.py``):

* one continuous factor moved by 10, 25, 50, 75, 100 % of its range (11 factors x 5 amounts x
  40 faces = 2200 pairs): mean d 0.065, 0.21, 0.46, 0.70, 0.92; Spearman's rho of d with the
  amount 0.87 (nose size) to 0.97 (vertical position) per factor, 0.63 pooled over factors
  (the factors differ in how much of the picture they move);
* 1, 2, 3, 4, 6 or 8 factor groups swapped from a face of the same kind (240 pairs): mean d
  0.29 to 2.50, rho 0.65;
* a one-pixel shift: d = 0.32 against 4.83 between different faces, a ratio of 0.066 (pixel
  MSE: 0.080). A shift is cheap beside a different face, but the judge is no more
  shift-tolerant than pixels are: a one-pixel shift weighs as much as moving one factor by
  about a third of its range.

>>> dist = PerceptualDistance(judge.multilayer_features)          # doctest: +SKIP
>>> dist(x, y).shape                                              # doctest: +SKIP
torch.Size([N])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import scipy.stats
import torch
import torch.nn.functional as F

from ganlab.errors import DtypeError
from ganlab.validation import to_numpy64

NORM_EPS = 1e-10  # LPIPS's normalize_tensor: x / (sqrt(sum x^2) + eps)

FeatureFn = Callable[[torch.Tensor], Sequence[torch.Tensor]]


def unit_normalize(f: torch.Tensor, eps: float = NORM_EPS) -> torch.Tensor:
    """Divide each spatial position's channel vector by its length: (N, C, H, W) -> same."""
    return f / (f.pow(2).sum(dim=1, keepdim=True).sqrt() + eps)


def _check_pair(x: torch.Tensor, y: torch.Tensor) -> None:
    for name, t in (("x", x), ("y", y)):
        if not isinstance(t, torch.Tensor):
            raise DtypeError(f"{name} must be a torch.Tensor of images, got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must be images (N, C, H, W), got shape {tuple(t.shape)}")
        if not t.is_floating_point():
            raise DtypeError(f"{name} must be floating point images, got dtype {t.dtype}")
    if x.shape != y.shape:
        raise ValueError(
            f"x and y must be pairs of images of one shape, got {tuple(x.shape)} and "
            f"{tuple(y.shape)}"
        )


class PerceptualDistance:
    """d(x, y) of the module docstring on the features of ``features`` (per pair, shape (N,)).

    Args:
        features: a callable ``images (N, C, H, W) -> [f_1, ..., f_L]``, each f_l a tensor
            (N, C_l, H_l, W_l) (a judge's ``multilayer_features``); a (N, C_l) entry is taken
            as a 1 x 1 map.
        weights: ``None`` for uniform weights w_{l,c} = 1 (the course's choice), or one
            non-negative vector (C_l,) per layer (LPIPS's learned "lin" weights).
        input_size: if given, images are resized (bilinear, antialiased) to this side before
            the features, for a network trained at one size (LPIPS itself takes any size).

    It is differentiable (no ``no_grad`` inside); the metrics that call it switch gradients off.
    :meth:`normalized_features` and :meth:`from_features` split the computation so that
    many pairs among a few images need each image's features only once.
    """

    def __init__(
        self,
        features: FeatureFn,
        weights: Sequence[torch.Tensor] | None = None,
        input_size: int | None = None,
    ):
        if not callable(features):
            raise TypeError(
                "features must be a callable images -> list of (N, C, H, W) feature maps "
                f"(e.g. judge.multilayer_features), got {type(features).__name__}"
            )
        if input_size is not None and (isinstance(input_size, bool) or int(input_size) < 1):
            raise ValueError(f"input_size must be a positive int or None, got {input_size!r}")
        self.features = features
        self.input_size = None if input_size is None else int(input_size)
        self.weights = None
        if weights is not None:
            self.weights = [torch.as_tensor(w, dtype=torch.float32).reshape(-1) for w in weights]
            for i, w in enumerate(self.weights):
                if not torch.isfinite(w).all() or (w < 0).any():
                    raise ValueError(f"weights[{i}] must be finite and >= 0 (LPIPS clamps them)")

    def normalized_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The unit-normalised maps \\hat f_l(x), each (N, C_l, H_l, W_l)."""
        if self.input_size is not None and x.shape[-2:] != (self.input_size, self.input_size):
            size = (self.input_size, self.input_size)
            x = F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)
        maps = self.features(x)
        if isinstance(maps, torch.Tensor) or not isinstance(maps, Sequence) or not maps:
            raise TypeError(
                "features(x) must return a non-empty list of feature maps (N, C, H, W), got "
                f"{type(maps).__name__}; for a single map wrap it in a list"
            )
        if self.weights is not None and len(maps) != len(self.weights):
            raise ValueError(f"{len(self.weights)} weight vectors for {len(maps)} feature layers")
        out = []
        for i, f in enumerate(maps):
            if f.ndim == 2:
                f = f[:, :, None, None]  # a vector is a 1 x 1 map
            if f.ndim != 4 or f.shape[0] != x.shape[0]:
                raise ValueError(
                    f"features(x)[{i}] must have shape (N={x.shape[0]}, C, H, W), got "
                    f"{tuple(f.shape)}"
                )
            if self.weights is not None:
                if self.weights[i].numel() != f.shape[1]:
                    raise ValueError(
                        f"weights[{i}] has {self.weights[i].numel()} entries, layer {i} has "
                        f"{f.shape[1]} channels"
                    )
            out.append(unit_normalize(f))
        return out

    def from_features(self, fx: Sequence[torch.Tensor], fy: Sequence[torch.Tensor]) -> torch.Tensor:
        """d from two lists of normalised maps (as :meth:`normalized_features` returns): (N,)."""
        total = 0.0
        for i, (a, b) in enumerate(zip(fx, fy, strict=True)):
            sq = (a - b).pow(2)  # (N, C, H, W)
            if self.weights is None:
                per_position = sq.sum(dim=1)  # w = 1: sum over channels
            else:
                w = self.weights[i].to(device=sq.device, dtype=sq.dtype)
                per_position = torch.einsum("nchw,c->nhw", sq, w)
            total = total + per_position.mean(dim=(1, 2))  # spatial mean, per image
        return total

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """d(x_i, y_i) for each of N pairs: (N,)."""
        _check_pair(x, y)
        n = x.shape[0]
        both = self.normalized_features(torch.cat([x, y]))  # one pass through the network
        return self.from_features([f[:n] for f in both], [f[n:] for f in both])

    def __repr__(self) -> str:
        weights = "uniform" if self.weights is None else "given"
        name = getattr(self.features, "__qualname__", type(self.features).__name__)
        return f"PerceptualDistance({name}, weights={weights}, input_size={self.input_size})"


# ------------------------------------------------------------------ calibration


def translate_images(x: torch.Tensor, dx: int = 0, dy: int = 0) -> torch.Tensor:
    """Translate images (N, C, H, W) by (dx, dy) pixels, repeating the edge row/column.

    Positive dx moves the content right, positive dy down. Unlike ``torch.roll`` nothing
    wraps around, so the shifted image is what a camera moved by one pixel would see.
    """
    h, w = x.shape[-2:]
    if abs(dx) >= w or abs(dy) >= h:
        raise ValueError(f"shift ({dx}, {dy}) must be smaller than the image ({h} x {w})")
    rows = (torch.arange(h, device=x.device) - dy).clamp(0, h - 1)
    cols = (torch.arange(w, device=x.device) - dx).clamp(0, w - 1)
    return x[..., rows, :][..., cols]


@dataclass(frozen=True)
class Calibration:
    """What :func:`calibrate_perceptual_distance` measured (see its docstring)."""

    spearman: float  # rank correlation of d with the change size, over the pairs
    pairs: int  # sample size of spearman
    shift_distance: float  # mean d(x, x shifted by one pixel), right and down
    unrelated_distance: float  # mean d(x_i, x_{i+1}) over the same images
    shift_ratio: float  # shift_distance / unrelated_distance: near 0 is good
    pixel_shift_ratio: float  # the same ratio for pixel mean squared error
    shift_images: int  # sample size of the shift measurements

    def as_dict(self) -> dict:
        return asdict(self)

    def describe(self) -> str:
        return (
            f"Spearman rho(d, change) = {self.spearman:.3f} (n={self.pairs} pairs); one-pixel "
            f"shift: d = {self.shift_distance:.4g} = {self.shift_ratio:.3f} x d(unrelated) "
            f"= {self.unrelated_distance:.4g} (pixel MSE: {self.pixel_shift_ratio:.3f} x) "
            f"(n={self.shift_images} images)"
        )


def _batched(fn, *tensors: torch.Tensor, batch: int) -> torch.Tensor:
    return torch.cat(
        [fn(*(t[s : s + batch] for t in tensors)) for s in range(0, len(tensors[0]), batch)]
    )


@torch.no_grad()
def calibrate_perceptual_distance(
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    a: torch.Tensor,
    b: torch.Tensor,
    change,
    shift_images: torch.Tensor | None = None,
    batch: int = 256,
) -> Calibration:
    """Does ``distance`` rise with the size of a change, and ignore a one-pixel shift?

    Args:
        distance: ``(x, y) -> (N,)``, e.g. a :class:`PerceptualDistance`.
        a, b: pairs of images (N, C, H, W) that differ by known amounts (for example one
            face drawn twice with one factor moved by ``change[i]``).
        change: (N,) the size of each pair's change (any monotone scale: degrees, steps).
        shift_images: images (M, C, H, W), M >= 2, for the shift test (default: ``a``).

    Returns a :class:`Calibration`: ``spearman`` = Spearman's rho between d(a_i, b_i) and
    change_i (ties get average ranks); ``shift_distance`` = the mean of d(x, shift(x)) over the
    M images and the two shifts (one pixel right, one pixel down, edges repeated);
    ``unrelated_distance`` = mean d(x_i, x_{(i+1) mod M}), the scale of "a different image";
    ``shift_ratio`` = their ratio, and ``pixel_shift_ratio`` the same ratio for the pixel
    mean squared error, for comparison (pixels punish a shift far more than a good
    perceptual distance does). Sample sizes: N pairs; M images.
    """
    _check_pair(a, b)
    size = to_numpy64(change, "change").reshape(-1)
    if size.shape[0] != a.shape[0] or a.shape[0] < 3:
        raise ValueError(
            f"change must hold one size per pair, N = {a.shape[0]} >= 3, got {size.shape[0]}"
        )
    if not np.isfinite(size).all() or np.ptp(size) == 0:
        raise ValueError("change must be finite and not all equal (ranks need a spread)")
    d = to_numpy64(_batched(distance, a, b, batch=batch), "distance(a, b)")
    rho = float(scipy.stats.spearmanr(d, size).statistic)

    x = a if shift_images is None else shift_images
    if x.ndim != 4 or x.shape[0] < 2:
        raise ValueError(f"shift images must be (M >= 2, C, H, W), got shape {tuple(x.shape)}")
    others = torch.roll(x, 1, dims=0)  # x_{i-1}: a different image for every i
    moved = [translate_images(x, dx=1), translate_images(x, dy=1)]
    d_shift = torch.cat([_batched(distance, x, m, batch=batch) for m in moved]).double().mean()
    d_other = _batched(distance, x, others, batch=batch).double().mean()
    mse = lambda p, q: (p.double() - q.double()).pow(2).mean().item()
    pixel_ratio = np.mean([mse(x, m) for m in moved]) / mse(x, others)
    return Calibration(
        spearman=rho,
        pairs=int(a.shape[0]),
        shift_distance=float(d_shift),
        unrelated_distance=float(d_other),
        shift_ratio=float(d_shift / d_other) if d_other > 0 else math.nan,
        pixel_shift_ratio=float(pixel_ratio),
        shift_images=int(x.shape[0]),
    )
