"""Helpers every chapter's checks share: tensor checks with messages for students."""

from __future__ import annotations

import torch

from ganlab.grading.registry import CheckFailed


def shape(t) -> str:
    """``(2, 3)`` for a tensor, ``a list`` for anything else (for messages)."""
    return str(tuple(t.shape)) if isinstance(t, torch.Tensor) else f"a {type(t).__name__}"


def require_tensor(value, what: str) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise CheckFailed(f"{what} should be a torch.Tensor, got {type(value).__name__}")
    return value


def close(a: torch.Tensor, b: torch.Tensor, atol: float = 1e-5, rtol: float = 1e-5) -> bool:
    """Same shape and values within tolerance, compared in float64."""
    return a.shape == b.shape and torch.allclose(
        a.detach().double(), b.detach().double(), atol=atol, rtol=rtol
    )


def require_close(got: torch.Tensor, want: torch.Tensor, what: str, atol=1e-5, rtol=1e-5) -> None:
    """Raise :class:`CheckFailed` naming the shape, NaNs or the largest difference."""
    if got.shape != want.shape:
        raise CheckFailed(f"{what}: expected shape {shape(want)}, got {shape(got)}")
    if not torch.isfinite(got).all():
        raise CheckFailed(f"{what}: expected finite values, got {got.detach().flatten()[:6]}")
    if not close(got, want, atol, rtol):
        err = (got.detach().double() - want.detach().double()).abs().max().item()
        raise CheckFailed(
            f"{what}: values differ from the expected ones (largest difference {err:.3g}); "
            f"expected {want.detach().flatten()[:6].tolist()}, "
            f"got {got.detach().flatten()[:6].tolist()}"
        )
