r"""Input checks for the whole package: shapes, dtypes, value ranges, labels, captions, masks.

A wrong input rarely fails where it enters a network. A text embedding of width 10 where 12
belongs fails three layers down with a matrix-multiplication message; uint8 pixels where
floats in [-1, 1] belong, or a label of 12 for ten classes, may not fail at all. So every
model, judge, metric and text encoder checks what it receives with the helpers below, and
every error says what was expected and what arrived, in the same words everywhere.

Shapes are tuples: an int is a fixed size, a string a free one, named in the message::

    check_tensor(z, "z", ("B", 100))              # float (B, 100), any B
    check_labels(y, 10, batch=len(z))             # int64 (B,) in 0..9, one label per z

**Value checks and the host.** Checking values (``x.min()``, ``x.max()``) reads the tensor
back to the host. On the CPU that costs nothing; on a GPU it stalls the Python thread until
the device has caught up, which a training step must not do. So value checks take a
``values`` switch: models pass ``values=not self.training`` for images (training data come
from a validated data set) and :func:`values_checkable` for labels; every value check is
skipped while ``torch.compile`` traces.

Errors: :class:`ganlab.errors.DtypeError` for a wrong type or dtype (it is a ``TypeError``
and a ``ValueError``), ``ValueError`` for a wrong shape or value.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Integral

import numpy as np
import torch

from ganlab.errors import DtypeError

PIXEL_TOLERANCE = 0.1
"""Images may leave [-1, 1] by this much (a generator without a final tanh overshoots a
little); pixels in 0..255 or in [0, 1] where [-1, 1] belongs are what the range check catches."""

_KINDS = {
    "float": ("a float", torch.Tensor.is_floating_point),
    "int": (
        "an integer (int64)",
        lambda x: not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool),
    ),
    "bool": ("a bool", lambda x: x.dtype == torch.bool),
}


def describe(x) -> str:
    """What arrived, for an error message: type, shape and dtype when it has them."""
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{type(x).__name__} of shape {tuple(x.shape)} and dtype {x.dtype}"
    return f"{type(x).__name__} {x!r:.60}"


def _shape_text(shape: Sequence) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def values_checkable(x: torch.Tensor, training: bool = False) -> bool:
    """Whether a value check may read ``x`` now: never while torch.compile traces; always
    for a CPU tensor (no device to wait for); on an accelerator only outside training."""
    if torch.compiler.is_compiling():
        return False
    return x.device.type == "cpu" or not training


# ------------------------------------------------------------------ tensors and images


def check_tensor(x, name: str, shape: Sequence, kind: str = "float", why: str = ""):
    """``x`` must be a torch tensor of ``kind`` ("float", "int" or "bool") and ``shape``.

    ``shape`` holds an int for a fixed size and a string for a free one ("B", "T");
    ``why`` explains a size in the message (e.g. "one label per row of z"). Returns ``x``.
    """
    article, ok = _KINDS[kind]
    want = _shape_text(shape) + (f" ({why})" if why else "")
    if not isinstance(x, torch.Tensor):
        raise DtypeError(f"{name} must be a torch.Tensor of shape {want}, got {describe(x)}")
    if not ok(x):
        raise DtypeError(f"{name} must be {article} tensor of shape {want}, got dtype {x.dtype}")
    fits = x.dim() == len(shape) and all(
        isinstance(s, str) or s == n for s, n in zip(shape, x.shape)
    )
    if not fits:
        raise ValueError(f"{name} must have shape {want}, got shape {tuple(x.shape)}")
    return x


def check_range(x: torch.Tensor, name: str = "images", low: float = -1.0, high: float = 1.0):
    """Finite values in ``[low, high]`` (+- ``PIXEL_TOLERANCE``); reads ``x`` back to the host."""
    if x.numel() == 0 or torch.compiler.is_compiling():
        return x
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or inf values")
    lo, hi = float(x.detach().min()), float(x.detach().max())
    if lo < low - PIXEL_TOLERANCE or hi > high + PIXEL_TOLERANCE:
        raise ValueError(
            f"{name} must have values in [{low:g}, {high:g}], got values in [{lo:.3g}, {hi:.3g}]; "
            "pixels in 0..255 map to [-1, 1] by x / 127.5 - 1, pixels in [0, 1] by 2 x - 1"
        )
    return x


def check_images(
    x,
    name: str = "images",
    channels: int | str | None = "C",
    size: int | tuple[int, int] | None = None,
    batch: int | str = "N",
    values: bool = True,
):
    """A float image batch ``(N, C, H, W)`` in [-1, 1]; ``size`` is an int (square) or (H, W).

    ``values=False`` skips the range check (a host sync). Returns ``x``.
    """
    height, width = (size, size) if isinstance(size, int) else (size or ("H", "W"))
    shape = (batch, "C" if channels is None else channels, height, width)
    if isinstance(x, torch.Tensor) and not x.is_floating_point():
        raise DtypeError(
            f"{name} must be a float tensor in [-1, 1] of shape {_shape_text(shape)}, got dtype "
            f"{x.dtype}; for uint8 pixels 0..255 use x.float() / 127.5 - 1"
        )
    check_tensor(x, name, shape)
    return check_range(x, name) if values else x


def check_logits(x, name: str):
    """A discriminator's logits: a float tensor (B,), one per image. Returns ``x``."""
    return check_tensor(x, name, ("B",), why="logits, one per image")


def in_dtype_of(x: torch.Tensor, module: torch.nn.Module) -> torch.Tensor:
    """Floating ``x`` converted to ``module``'s parameter dtype: float64 images (from numpy)
    become float32 for a float32 network instead of failing inside its first layer."""
    return x.to(next(module.parameters()).dtype)


# ---------------------------------------------------- labels, lengths, masks, counts, captions


def check_labels(
    y,
    num_classes: int,
    name: str = "labels",
    batch: int | str = "N",
    values: bool = True,
    why: str = "",
):
    """Integer class labels ``(N,)`` in ``0..num_classes-1``; an int ``batch`` ties N to
    another input (``why`` says which). ``values=False`` skips the range (a host sync)."""
    check_tensor(y, name, (batch,), "int", why)
    return check_indices(y, num_classes, name) if values else y


def check_indices(x: torch.Tensor, n: int, name: str) -> torch.Tensor:
    """Integer indices into ``n`` entries (classes, words of a vocabulary) lie in 0..n-1.

    Reads ``x`` back to the host (skipped while torch.compile traces)."""
    if x.numel() and not torch.compiler.is_compiling():
        lo, hi = int(x.min()), int(x.max())
        if lo < 0 or hi >= n:
            raise ValueError(f"{name} must lie in 0..{n - 1}, got values in {lo}..{hi}")
    return x


def check_lengths(lengths, t: int, name: str = "lengths", batch: int | str = "B", values=True):
    """Caption lengths ``(B,)`` in ``1..t``: each caption has at least one real word and at
    most ``t`` (the padded width). ``values=False`` skips the range (a host sync)."""
    check_tensor(lengths, name, (batch,), "int", "one length per caption")
    if values and lengths.numel() and not torch.compiler.is_compiling():
        lo, hi = int(lengths.min()), int(lengths.max())
        if lo < 1 or hi > t:
            raise ValueError(
                f"{name} must be in [1, {t}] (1..T: an empty caption has no word to match), "
                f"got values in {lo}..{hi}"
            )
    return lengths


def padding_mask(lengths: torch.Tensor, t: int) -> torch.Tensor:
    """lengths (B,) int -> mask (B, T) bool, True at padding positions (``>= length``).

    ``~padding_mask(lengths, t)`` marks the real words. Shapes only: no host sync.
    """
    check_tensor(lengths, "lengths", ("B",), "int", "one length per caption")
    return torch.arange(t, device=lengths.device)[None] >= lengths[:, None]  # (B, T)


def check_count(n, name: str, minimum: int = 1) -> int:
    """A whole number ``>= minimum`` (a number of samples, a length): returns ``int(n)``."""
    if isinstance(n, bool) or not isinstance(n, Integral):
        raise DtypeError(f"{name} must be an integer >= {minimum}, got {describe(n)}")
    if n < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {n}")
    return int(n)


def check_choice(value, choices: Sequence, name: str):
    """``value`` must be one of ``choices`` (an image size, an activation...). Returns it."""
    if value not in choices:
        raise ValueError(f"{name} must be one of {tuple(choices)}, got {value!r}")
    return value


def check_captions(captions) -> list[str]:
    """A caption (str) or a non-empty list of captions -> a list of str."""
    if isinstance(captions, str):
        return [captions]
    if not isinstance(captions, Sequence) or len(captions) == 0:
        raise DtypeError(
            f"expected a caption (str) or a non-empty list of captions, got {describe(captions)}"
        )
    for row, caption in enumerate(captions):
        if not isinstance(caption, str):
            raise DtypeError(
                f"caption {row} is a {type(caption).__name__}, expected str: {caption!r:.60}"
            )
    return list(captions)


# ------------------------------------------------------------------ metrics: numpy arrays


def to_numpy64(x, name: str) -> np.ndarray:
    """A torch tensor / numpy array / nested list as a float64 numpy array (a copy if needed)."""
    if isinstance(x, torch.Tensor):
        if x.is_complex():
            raise DtypeError(f"{name} must be real-valued, got {describe(x)}")
        return x.detach().to("cpu", torch.float64).numpy()
    arr = np.asarray(x)
    if arr.dtype == object or np.iscomplexobj(arr):
        raise DtypeError(f"{name} must be a real numeric array, got {describe(arr)}")
    return arr.astype(np.float64, copy=False)


def check_features(x, name: str, min_rows: int = 2) -> np.ndarray:
    """Features ``(N, D)`` as float64 numpy, finite, with at least ``min_rows`` rows."""
    arr = to_numpy64(x, name)
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D array of features (N samples, D features), got "
            f"{describe(x)}; flatten images or take a judge's .features(x) first"
        )
    if arr.shape[0] < min_rows or arr.shape[1] < 1:
        raise ValueError(
            f"{name} needs at least {min_rows} samples of at least 1 feature, got shape {arr.shape}"
        )
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return arr


def check_same_dim(a: np.ndarray, b: np.ndarray, names: str) -> None:
    """Two feature arrays ``(N_a, D)`` and ``(N_b, D)`` must share D."""
    if a.shape[1] != b.shape[1]:
        raise ValueError(
            f"{names} must have the same feature dimension D, got {a.shape[1]} and {b.shape[1]}"
        )


def label_array(labels, n: int, name: str = "labels", num_classes: int | None = None):
    """Class labels ``(n,)`` (tensor, array or list; whole floats allowed) as int64 numpy."""
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {describe(arr)}")
    if arr.dtype.kind not in "iu":
        if arr.dtype.kind == "b" or not np.all(np.equal(np.mod(arr, 1), 0)):
            raise DtypeError(f"{name} must hold integer class indices, got dtype {arr.dtype}")
    arr = arr.astype(np.int64)
    if num_classes is not None and n and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(
            f"{name} must lie in 0..{num_classes - 1}, got values in [{arr.min()}, {arr.max()}]"
        )
    return arr
