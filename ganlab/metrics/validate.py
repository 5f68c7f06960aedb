"""Input checks shared by the metrics and the judges.

Every metric takes user data (features, images, probabilities, labels). A wrong shape or a
wrong scale rarely crashes a metric: it silently returns a meaningless number. These helpers
turn such mistakes into errors that say what was expected and what arrived.
"""

from __future__ import annotations

import numpy as np
import torch


class DtypeError(TypeError, ValueError):
    """Data of the wrong dtype (for example uint8 pixels where floats in [-1, 1] belong).

    It is both a ``TypeError`` (the usual Python meaning) and a ``ValueError`` (so that a
    single ``except ValueError`` catches every bad-input error of ganlab's metrics).
    """


def _describe(x) -> str:
    shape = tuple(x.shape) if hasattr(x, "shape") else "?"
    return f"{type(x).__name__} of shape {shape} and dtype {getattr(x, 'dtype', '?')}"


def to_numpy64(x, name: str) -> np.ndarray:
    """A torch tensor / numpy array / nested list as a float64 numpy array (a copy if needed)."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise DtypeError(f"{name} must be real-valued, got {_describe(x)}")
        return x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x)
    if arr.dtype == object or np.iscomplexobj(arr):
        raise DtypeError(f"{name} must be a real numeric array, got {_describe(arr)}")
    return arr.astype(np.float64, copy=False)


def check_features(x, name: str, min_rows: int = 2) -> np.ndarray:
    """Features ``(N, D)`` as float64 numpy, finite, with at least ``min_rows`` rows."""
    arr = to_numpy64(x, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of features (N samples, D features), got "
            f"{_describe(x)}; flatten images or take a judge's .features(x) first"
        )
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(
            f"{name} needs at least {min_rows} samples of at least 1 feature, got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def check_same_dim(a: np.ndarray, b: np.ndarray, names: str) -> None:
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{names} must have the same feature dimension D, got {a.shape[1]} and {b.shape[1]}"
        )


def check_images(
    x,
    name: str = "images",
    channels: int | None = None,
    size: tuple[int, int] | None = None,
    low: float = -1.0,
    high: float = 1.0,
    tol: float = 0.1,
) -> torch.Tensor:
    """A float image batch ``(N, C, H, W)`` whose values lie in ``[low, high]`` (+- ``tol``).

    The tolerance lets a generator without a final tanh overshoot a little; pixels in 0..255
    or in [0, 1] where [-1, 1] is expected are what it catches.
    """
    if not isinstance(x, torch.Tensor):
        raise DtypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    want = f"(N, {channels if channels else 'C'}, {size[0] if size else 'H'}, "
    want += f"{size[1] if size else 'W'})"
    if x.ndim != 4:
        raise ValueError(f"{name} must have shape {want}, got shape {tuple(x.shape)}")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(f"{name} must have shape {want}, got shape {tuple(x.shape)}")
    if size is not None and tuple(x.shape[2:]) != tuple(size):
        raise ValueError(f"{name} must have shape {want}, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise DtypeError(
            f"{name} must be floating point with values in [{low:g}, {high:g}], got dtype "
            f"{x.dtype}; for uint8 pixels 0..255 use x.float() / 127.5 - 1"
        )
    if x.numel() == 0:
        return x
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values")
    lo, hi = x.min().item(), x.max().item()
    if lo < low - tol or hi > high + tol:
        raise ValueError(
            f"{name} must have values in [{low:g}, {high:g}], got [{lo:.3g}, {hi:.3g}]; "
            "pixels in 0..255 map to [-1, 1] by x / 127.5 - 1, pixels in [0, 1] by 2 x - 1"
        )
    return x


def check_labels(labels, n: int, name: str = "labels", num_classes: int | None = None):
    """Integer class labels ``(n,)`` as an int64 numpy array."""
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {_describe(arr)}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "b" or not np.all(np.equal(np.mod(arr, 1), 0)):
            raise DtypeError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if num_classes is not None and n and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in 0..{num_classes - 1}, got values in [{arr.min()}, {arr.max()}]"
        )
    return arr
