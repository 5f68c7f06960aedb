r"""Sliced Wasserstein distance on Laplacian-pyramid patches (PGGAN, Karras et al. 2018).

PGGAN's metric needs no pretrained network: it compares the distributions of small image
patches of two sets (real, generated) at every scale. Following the paper (appendix D) and
its official code (tkarras/progressive_growing_of_gans, ``metrics/sliced_wasserstein.py``):

1. **Laplacian pyramid** of each image (Burt & Adelson 1983), with the 5-tap binomial filter
   g = [1, 4, 6, 4, 1] / 16 applied along rows and columns (the 5 x 5 kernel g g^T, as
   OpenCV's ``pyrDown`` / ``pyrUp``), borders mirrored without repeating the edge pixel::

       G_0 = x,   G_{k+1} = (g * G_k)[::2, ::2]                  (pyrDown)
       up(G) = 4 g * (G with zeros between its pixels)           (pyrUp)
       L_k = G_k - up(G_{k+1})   for k < K - 1,    L_{K-1} = G_{K-1}.

   There is one level per resolution from the image size down to 16 px: a 64 px image has
   the levels 64 (finest band), 32 and 16 (the low-pass residual G_2).
2. **Descriptors**: at each level, 128 random 7 x 7 neighbourhoods per image (centres drawn
   uniformly so that the patch lies inside the level; with replacement), each a vector of
   C x 7 x 7 = 147 values for RGB.
3. **Normalisation**, per level and per set: subtract each colour channel's mean and divide
   by its standard deviation, both taken over all the set's descriptors and their 49
   positions (``np.std``: divisor n). Each set is normalised with its OWN statistics, as in
   the official code; so SWD does not see a global change of a channel's mean or contrast
   at one level (and the pixel scale, [-1, 1] or 0..255, does not matter).
4. **Sliced Wasserstein distance** (Rabin et al. 2011) between the two descriptor sets A, B
   (equal sizes M): for each of R = 4 repeats draw 128 random directions v (Gaussian,
   normalised to unit length), project, sort, and average the absolute differences of the
   sorted projections (the exact 1-D Wasserstein-1 distance of the projected sets)::

       SWD(A, B) = (1 / R) sum_r mean_{v in V_r} (1/M) sum_i | sort(A v)_i - sort(B v)_i |.

   That is 4 x 128 = 512 projections, the paper's number.
5. Report **SWD x 10^3** per level (PGGAN's tables: ``SWDx1e3_<res>``) and the average over
   levels. Small at a level = patches of that scale look alike: the finest level sees
   texture and noise, the 16 px level the overall colour layout.

Parameters (official value -> course default): neighbourhood 7 -> 7; neighbourhoods per image
128 -> 128; repeats 4 x directions 128 -> same; coarsest level 16 px -> 16; images 16,384
(2^21 descriptors per level, the paper) -> the chapter's choice (report it: SWD, like FID, is
biased at small samples; compare equal sample sizes and give a real-vs-real baseline).
Deviations: the official code takes uint8 images and draws from numpy's global random
state; here float images of any scale are taken as they are (no rounding to uint8) and all
random draws come from ``np.random.default_rng(seed)`` in a fixed order (see
:func:`sliced_wasserstein_distance`), so a result does not depend on the batch size. The
official code asserts RGB; here any number of channels C gives C x 49-dimensional
descriptors.

Cost: the descriptors of one set take N x 128 x C x 49 x 4 bytes per level (75 kB per
RGB image per level); most of the time goes into sorting the projections (numpy's sort on
the CPU). Measured: 512 vs 512 images of 64 px with the official parameters took 9.9 s of
one CPU core (``time.process_time``).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ganlab.errors import DtypeError

NHOOD_SIZE = 7  # 7 x 7 neighbourhoods
NHOODS_PER_IMAGE = 128
DIR_REPEATS = 4
DIRS_PER_REPEAT = 128  # 4 x 128 = 512 projections
MIN_RESOLUTION = 16  # the coarsest level
SCALE = 1e3  # reported as SWD x 10^3
BINOMIAL = (1.0, 4.0, 6.0, 4.0, 1.0)  # / 16: the 5-tap binomial (Gaussian) filter


def swd_resolutions(size: int) -> list[int]:
    """The pyramid's resolutions, finest first: size, size / 2, ... while >= 16."""
    out = []
    while size >= MIN_RESOLUTION:
        out.append(size)
        size //= 2
    return out


def _binomial_filter(x: torch.Tensor, gain: float) -> torch.Tensor:
    """gain * (g g^T) * x per channel, borders mirrored (scipy 'mirror' = torch 'reflect')."""
    g = torch.tensor(BINOMIAL, dtype=x.dtype, device=x.device) / 16
    kernel = (gain * torch.outer(g, g)).expand(x.shape[1], 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="reflect"), kernel, groups=x.shape[1])


def pyr_down(x: torch.Tensor) -> torch.Tensor:
    """Blur with g g^T and keep every second row and column: (N, C, H, W) -> (N, C, H/2, W/2)."""
    return _binomial_filter(x, 1.0)[:, :, ::2, ::2]


def pyr_up(x: torch.Tensor) -> torch.Tensor:
    """Put zeros between the pixels and blur with 4 g g^T: (N, C, H, W) -> (N, C, 2H, 2W)."""
    n, c, h, w = x.shape
    up = x.new_zeros(n, c, 2 * h, 2 * w)
    up[:, :, ::2, ::2] = x
    return _binomial_filter(up, 4.0)


def laplacian_pyramid(images: torch.Tensor, levels: int) -> list[torch.Tensor]:
    """[L_0, ..., L_{K-1}] of the module docstring, finest first; L_{K-1} is the low-pass G."""
    gauss = [images]
    for _ in range(1, levels):
        gauss.append(pyr_down(gauss[-1]))
    return [g - pyr_up(g_next) for g, g_next in zip(gauss, gauss[1:])] + [gauss[-1]]


def extract_patches(level: torch.Tensor, centres: torch.Tensor, nhood: int = NHOOD_SIZE):
    """Neighbourhoods ``(M, C, nhood, nhood)`` of ``level`` (N, C, S, S).

    ``centres`` (M, 3) int64 rows ``(image, row, column)``; the patch of a centre spans
    rows ``row - nhood // 2 .. row + nhood // 2``.
    """
    offsets = torch.arange(nhood, device=level.device) - nhood // 2
    img = centres[:, 0, None, None]
    rows = (centres[:, 1, None] + offsets)[:, :, None]  # (M, nhood, 1)
    cols = (centres[:, 2, None] + offsets)[:, None, :]  # (M, 1, nhood)
    # advanced indices around a slice: the indexed dims come first -> (M, nhood, nhood, C)
    return level[img, :, rows, cols].permute(0, 3, 1, 2)


def normalize_descriptors(desc: torch.Tensor) -> torch.Tensor:
    """Per-channel standardisation over the whole set, then flatten: (M, C, k, k) -> (M, C k k)."""
    mean = desc.mean(dim=(0, 2, 3), keepdim=True)
    std = desc.std(dim=(0, 2, 3), keepdim=True, correction=0)
    return ((desc - mean) / std).reshape(desc.shape[0], -1)


def random_directions(rng: np.random.Generator, dim: int, count: int) -> torch.Tensor:
    """``count`` random unit vectors in R^dim, as the columns of a (dim, count) float32 tensor."""
    dirs = rng.standard_normal((dim, count))
    dirs /= np.sqrt(np.sum(dirs**2, axis=0, keepdims=True))
    return torch.from_numpy(dirs.astype(np.float32))


def sliced_wasserstein(a: torch.Tensor, b: torch.Tensor, directions) -> float:
    """SWD(A, B) of descriptors (M, D) each, averaged over the given direction sets.

    ``directions``: a list of (D, k) tensors of unit columns, one per repeat.
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(
            f"descriptor sets must both be (M, D) of one shape, got {tuple(a.shape)} and "
            f"{tuple(b.shape)}"
        )
    results = []
    for dirs in directions:
        dirs_t = dirs.to(device=a.device, dtype=a.dtype).T.contiguous()  # (k, D)
        proj_a, proj_b = dirs_t @ a.T, dirs_t @ b.T  # (k, M): one row per direction
        if a.device.type == "cpu":  # numpy's SIMD sort is several times faster on the CPU
            gaps = np.sort(proj_a.numpy(), axis=1) - np.sort(proj_b.numpy(), axis=1)
            results.append(float(np.abs(gaps).mean()))
        else:
            gaps = torch.sort(proj_a, dim=1).values - torch.sort(proj_b, dim=1).values
            results.append(gaps.abs().mean().item())
    return float(np.mean(results))


def _check_set(x, name: str) -> torch.Tensor:
    if not isinstance(x, torch.Tensor):
        raise DtypeError(f"{name} must be a torch.Tensor of images (N, C, H, W)")
    if x.ndim != 4 or x.shape[0] < 1:
        raise ValueError(f"{name} must be images (N >= 1, C, H, W), got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise DtypeError(f"{name} must be floating point (any scale), got dtype {x.dtype}")
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return x


@torch.no_grad()
def sliced_wasserstein_distance(
    images_a: torch.Tensor,
    images_b: torch.Tensor,
    nhoods_per_image: int = NHOODS_PER_IMAGE,
    dir_repeats: int = DIR_REPEATS,
    dirs_per_repeat: int = DIRS_PER_REPEAT,
    seed: int = 0,
    batch: int = 256,
) -> dict[str, float]:
    """PGGAN's SWD x 10^3 between two image sets, per pyramid level and on average.

    Args:
        images_a, images_b: (N, C, S, S) float images (the reals and the fakes), the same N
            and shape; S >= 16 and divisible by 2^(levels - 1).
        nhoods_per_image, dir_repeats, dirs_per_repeat: the official 128, 4, 128.
        seed: all random draws come from ``np.random.default_rng(seed)``, in this order:
            the patch centres of set a (one (N * nhoods_per_image, 2) array of (row, column)
            per level, finest first, ``rng.integers(3, S_level - 3, ...)``), then those of set
            b, then for each level (finest first) ``dir_repeats`` direction sets.
        batch: images per pyramid computation (memory only; the result does not depend on it).

    Returns ``{"SWDx1e3_<S>": ..., "SWDx1e3_<S/2>": ..., ..., "SWDx1e3_16": ...,
    "SWDx1e3_avg": ...}`` (finest first, as the official log). Sample sizes: N images per set,
    N x nhoods_per_image descriptors per level and set.
    """
    a, b = _check_set(images_a, "images_a"), _check_set(images_b, "images_b")
    if a.shape != b.shape:
        raise ValueError(
            f"images_a and images_b must have one shape (the same N: the sorted projections are "
            f"compared one to one), got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    n, c, h, w = a.shape
    resolutions = swd_resolutions(h)
    if h != w or not resolutions or h % 2 ** (len(resolutions) - 1):
        raise ValueError(
            f"SWD needs square images of at least {MIN_RESOLUTION} px whose side halves evenly "
            f"down to the {MIN_RESOLUTION}-{2 * MIN_RESOLUTION - 1} px level, got {h} x {w}"
        )
    for name, v in (("nhoods_per_image", nhoods_per_image), ("dir_repeats", dir_repeats)):
        if not isinstance(v, int) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if not isinstance(dirs_per_repeat, int) or dirs_per_repeat < 1:
        raise ValueError(f"dirs_per_repeat must be a positive int, got {dirs_per_repeat!r}")

    rng = np.random.default_rng(seed)
    half = NHOOD_SIZE // 2
    count = n * nhoods_per_image
    image_of = np.repeat(np.arange(n), nhoods_per_image)[:, None]  # descriptor -> image
    centres = {}
    for key in ("a", "b"):
        centres[key] = [
            torch.from_numpy(
                np.concatenate([image_of, rng.integers(half, res - half, size=(count, 2))], 1)
            )
            for res in resolutions
        ]

    distances = []
    descriptors = {
        key: _descriptors(x, centres[key], nhoods_per_image, batch)
        for key, x in (("a", a), ("b", b))
    }
    for k in range(len(resolutions)):
        da = normalize_descriptors(descriptors["a"][k])
        db = normalize_descriptors(descriptors["b"][k])
        directions = [
            random_directions(rng, da.shape[1], dirs_per_repeat) for _ in range(dir_repeats)
        ]
        distances.append(SCALE * sliced_wasserstein(da, db, directions))
    out = {f"SWDx1e3_{res}": d for res, d in zip(resolutions, distances)}
    out["SWDx1e3_avg"] = float(np.mean(distances))
    return out


def _descriptors(images, centres, per_image: int, batch: int) -> list[torch.Tensor]:
    """Per level, the (N * per_image, C, 7, 7) neighbourhoods at ``centres`` (float32)."""
    levels = len(centres)
    parts: list[list[torch.Tensor]] = [[] for _ in range(levels)]
    for start in range(0, images.shape[0], batch):
        chunk = images[start : start + batch].float()
        rows = slice(start * per_image, (start + len(chunk)) * per_image)
        for k, level in enumerate(laplacian_pyramid(chunk, levels)):
            local = centres[k][rows].clone().to(level.device)
            local[:, 0] -= start  # image index within the chunk
            parts[k].append(extract_patches(level, local))
    return [torch.cat(p) for p in parts]
