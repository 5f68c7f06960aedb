r"""Perceptual path length (StyleGAN, Karras et al. 2019, section 4.1).

How smoothly does the image change along a straight path in latent space? Cut the path
between two latents into steps of length epsilon, and measure each step with a perceptual
distance d; a path that crosses a region the generator does not model (features appearing
abruptly) is long. In W (the mapping network's output) with linear interpolation,

.. math::
    l_W = E\left[ \frac{1}{\epsilon^2} d\big(g(\mathrm{lerp}(w_0, w_1; t)),
          g(\mathrm{lerp}(w_0, w_1; t + \epsilon))\big) \right],
    \quad w_i = f(z_i),\ z_i \sim N(0, I),

and in Z with spherical interpolation (z is Gaussian, so its paths follow the sphere),

.. math::
    l_Z = E\left[ \frac{1}{\epsilon^2} d\big(G(\mathrm{slerp}(z_0, z_1; t)),
          G(\mathrm{slerp}(z_0, z_1; t + \epsilon))\big) \right].

d is quadratic in small changes (LPIPS is a squared distance), hence the division by
epsilon^2. **Sampling**: ``full`` draws t ~ U(0, 1); ``end`` puts t at an end of the path.
The paper writes t in {0, 1}; the official code (NVlabs/stylegan,
``metrics/perceptual_path_length.py``) draws ``tf.random_uniform([n], 0.0, 0.0)``, i.e.
t = 0, and the course does the same (z_0 and z_1 are exchangeable, so t = 1 stepping back
measures the same to first order in epsilon). ``end`` looks at the latents the generator
actually sees; ``full`` also at the mid-points, where an entangled W shows long paths.

Protocol, official value -> course default:

- epsilon 1e-4 -> 1e-4; 100,000 samples -> ``num_samples`` (the chapter states its n);
- both images of a pair use the same noise inputs (the official code fixes the noise
  variables); ``synthesis`` must be deterministic, which is checked on the first batch;
- **face crop**: the official code crops FFHQ's 1024 px faces to rows [3H/8, 7H/8) and
  columns [2W/8, 6W/8) (the face, without hair and background) with c = H // 8; images
  larger than 256 px are then box-downsampled by an integer factor to at most 256.
  The course's default ``crop="stylegan"`` is that same crop; pass ``crop=None`` for the
  whole image, or ``(top, bottom, left, right)`` fractions of the side for another box
  (the faces world's chapter states which it uses);
- the distance: LPIPS-VGG16 on [0, 255] pixels -> any ``distance(x, y) -> (N,)`` callable on
  the generator's images (the course's :class:`~ganlab.metrics.perceptual.PerceptualDistance`
  on the face judge);
- in Z the networks receive the unit-length latents that :func:`slerp` returns, as in the
  official code (StyleGAN's mapping network normalises z anyway; a generator that does not
  normalise its input sees latents of an unusual length there);
- outliers: distances below the 1st percentile (``interpolation='lower'``) or above the 99th
  (``'higher'``) are dropped before the mean (:func:`filtered_mean`).

Precision: the two images of a pair differ by about epsilon, so the computation must not
round at the 1e-3 level. The latents are drawn and interpolated in float64 and cast to
``dtype`` for the networks; TF32 matmuls and convolutions (which a GPU may use for float32)
are switched off while the metric runs. Half-precision generators cannot measure PPL.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

EPSILON = 1e-4
NUM_SAMPLES = 100_000  # the official ppl_zfull / ppl_wfull / ppl_wend setting
STYLEGAN_CROP = "stylegan"  # rows [3c, 7c), columns [2c, 6c), c = H // 8
MAX_SIDE = 256  # larger crops are box-downsampled (VGG was built for 224 px)
SPACES = ("z", "w")
SAMPLINGS = ("full", "end")

Images = torch.Tensor
Distance = Callable[[Images, Images], torch.Tensor]


def normalize(v: torch.Tensor) -> torch.Tensor:
    """v / ||v|| along the last dimension."""
    return v / v.pow(2).sum(dim=-1, keepdim=True).sqrt()


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of the directions of a and b (rows), as StyleGAN's code.

    Both are normalised to unit length; with d = a . b, c the unit vector along b - d a
    (the direction towards b, orthogonal to a), the result is the unit vector
    a cos(t arccos d) + c sin(t arccos d): at angle t * angle(a, b) from a, in the a-b
    plane. ``t`` broadcasts against (N, 1). The result has unit length, whatever the
    lengths of a and b.
    """
    a, b = normalize(a), normalize(b)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1.0, 1.0))
    c = normalize(b - d * a)
    return normalize(a * torch.cos(p) + c * torch.sin(p))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """a + (b - a) t; ``t`` (N,) broadcasts over the trailing dimensions of a (N, ...)."""
    t = t.reshape(t.shape + (1,) * (a.ndim - t.ndim))
    return a + (b - a) * t


def crop_images(images: Images, crop=STYLEGAN_CROP) -> Images:
    """The region the distance looks at (see the module docstring), then at most 256 px.

    ``crop``: ``"stylegan"``, ``None`` (whole image) or ``(top, bottom, left, right)``
    fractions of the height / width (rounded down to pixels).
    """
    h, w = images.shape[-2:]
    if crop is None:
        out = images
    elif crop == STYLEGAN_CROP:
        c = h // 8
        out = images[:, :, c * 3 : c * 7, c * 2 : c * 6]
    else:
        try:
            top, bottom, left, right = (float(f) for f in crop)
        except (TypeError, ValueError):
            raise ValueError(
                f'crop must be "stylegan", None or (top, bottom, left, right), got {crop!r}'
            ) from None
        if not (0 <= top < bottom <= 1 and 0 <= left < right <= 1):
            raise ValueError(
                f"crop fractions must satisfy 0 <= top < bottom <= 1 and 0 <= left < right "
                f"<= 1, got {crop!r}"
            )
        rows = slice(int(top * h), int(bottom * h))
        cols = slice(int(left * w), int(right * w))
        out = images[:, :, rows, cols]
    if out.shape[-2] == 0 or out.shape[-1] == 0:
        raise ValueError(f"crop {crop!r} leaves no pixels of a {h} x {w} image")
    if out.shape[-2] > MAX_SIDE:
        factor = out.shape[-2] // MAX_SIDE
        out = F.avg_pool2d(out, factor)  # the official reshape-and-mean box filter
    return out


def filtered_mean(distances, low: float = 1.0, high: float = 99.0) -> float:
    """Mean of the values between the ``low``-th and ``high``-th percentiles (inclusive).

    The lower bound is the percentile rounded down to a data value (numpy's
    ``method='lower'``), the upper bound rounded up (``'higher'``), as the official code.
    """
    d = np.asarray(distances, dtype=np.float64).reshape(-1)
    if d.size == 0 or not np.isfinite(d).all():
        raise ValueError("distances must be a non-empty array of finite values")
    lo = np.percentile(d, low, method="lower")
    hi = np.percentile(d, high, method="higher")
    return float(d[(lo <= d) & (d <= hi)].mean())


@contextlib.contextmanager
def _full_float32():
    """Switch off TF32 (10-bit mantissa) matmuls and convolutions; restore afterwards."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _interpolated_images(z, t, space, sampling_eps, mapping, synthesis, generator, dtype):
    """Images at t and t + epsilon for each pair (z[0::2], z[1::2]): two (B, C, H, W)."""
    z0, z1 = z[0::2], z[1::2]
    if space == "w":
        w = mapping(z.to(dtype))
        w0, w1 = w[0::2].double(), w[1::2].double()
        e0, e1 = lerp(w0, w1, t), lerp(w0, w1, t + sampling_eps)
        pair = torch.cat([e0, e1]).to(w.dtype)
        images = synthesis(pair)
    else:
        e0, e1 = slerp(z0, z1, t[:, None]), slerp(z0, z1, t[:, None] + sampling_eps)
        pair = torch.cat([e0, e1]).to(dtype)
        images = synthesis(mapping(pair)) if mapping is not None else generator(pair)
    n = z0.shape[0]
    return images[:n], images[n:]


@torch.no_grad()
def path_length_samples(
    distance: Distance,
    z_dim: int,
    *,
    mapping: Callable | None = None,
    synthesis: Callable | None = None,
    generator: Callable | None = None,
    space: str = "w",
    sampling: str = "full",
    num_samples: int = NUM_SAMPLES,
    epsilon: float = EPSILON,
    crop=STYLEGAN_CROP,
    batch_size: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
    dtype: torch.dtype = torch.float32,
    check_deterministic: bool = True,
) -> np.ndarray:
    """The ``num_samples`` values d(...) / epsilon^2 (float64, before outlier filtering).

    The generator comes as ``mapping`` (z (B, z_dim) -> w (B, ...)) and ``synthesis``
    (w -> images (B, C, H, W)), StyleGAN's two networks; for ``space="z"`` a single
    ``generator`` (z -> images) may be given instead (then Z is its only latent space).
    All three must be deterministic and in eval mode. ``distance(x, y) -> (B,)`` compares
    the cropped images (:func:`crop_images`).

    Random draws: a ``torch.Generator`` seeded with ``seed`` on the CPU, per batch of B
    pairs: z (2B, z_dim) float64 standard normal (z_0 = rows 0, 2, ..., z_1 = rows 1, 3,
    ...), then for ``sampling="full"`` t (B,) float64 uniform in [0, 1); ``"end"`` uses
    t = 0 and draws no t. Sample size: ``num_samples`` pairs.
    """
    if space not in SPACES:
        raise ValueError(f"space must be one of {SPACES}, got {space!r}")
    if sampling not in SAMPLINGS:
        raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
    if space == "w" and (mapping is None or synthesis is None):
        raise ValueError(
            'space="w" needs mapping= (z -> w) and synthesis= (w -> images); a generator '
            'with no intermediate latent space has only space="z"'
        )
    if space == "z" and not ((mapping is not None and synthesis is not None) or generator):
        raise ValueError('space="z" needs mapping= and synthesis=, or generator= (z -> images)')
    if not (isinstance(num_samples, int) and num_samples >= 1):
        raise ValueError(f"num_samples must be a positive int, got {num_samples!r}")
    if not (isinstance(z_dim, int) and z_dim >= 1):
        raise ValueError(f"z_dim must be a positive int, got {z_dim!r}")
    if not epsilon > 0:
        raise ValueError(f"epsilon must be > 0, got {epsilon!r}")
    rng = torch.Generator().manual_seed(seed)
    out = np.empty(num_samples)
    with _full_float32():
        for start in range(0, num_samples, batch_size):
            b = min(batch_size, num_samples - start)
            z = torch.randn(2 * b, z_dim, generator=rng, dtype=torch.float64)
            if sampling == "full":
                t = torch.rand(b, generator=rng, dtype=torch.float64)
            else:
                t = torch.zeros(b, dtype=torch.float64)
            z, t = z.to(device), t.to(device)
            args = (mapping, synthesis, generator, dtype)
            img0, img1 = _interpolated_images(z, t, space, epsilon, *args)
            if check_deterministic and start == 0:
                again, _ = _interpolated_images(z, t, space, epsilon, *args)
                gap = (again - img0).abs().max().item()
                if gap > 1e-5:
                    raise ValueError(
                        f"the generator gave different images for the same latents (max "
                        f"difference {gap:.3g}): PPL needs the same noise inputs for both "
                        "images of a pair; fix the noise (StyleGAN: randomize_noise=False) and "
                        "call .eval() (or pass check_deterministic=False)"
                    )
            d = distance(crop_images(img0, crop), crop_images(img1, crop))
            if d.shape != (b,):
                raise ValueError(f"distance(x, y) must return (N,) = ({b},), got {tuple(d.shape)}")
            out[start : start + b] = d.double().cpu().numpy() / epsilon**2
    return out


def perceptual_path_length(distance: Distance, z_dim: int, **kwargs) -> float:
    """PPL: :func:`filtered_mean` of :func:`path_length_samples` (same arguments).

    Sample size: ``num_samples`` pairs, of which about 98% remain after the filtering.
    """
    return filtered_mean(path_length_samples(distance, z_dim, **kwargs))
