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


# ------------------------------------------------------------------ training steps
class GradientCounter:
    """Counts the gradients that reach a generator's outputs during a training step.

    A check wraps its small generator's ``forward`` so that every output that requires a
    gradient registers a hook here; the reference step fixes how many gradients G's outputs
    should receive (those of G's own loss). More means D's loss reached G: the fakes D trains
    on were not cut from G's graph.
    """

    def __init__(self):
        self.count = 0

    def watch(self, out):
        tensors = out if isinstance(out, list | tuple) else [out]
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.requires_grad:
                t.register_hook(self._hit)
        return out

    def _hit(self, grad):
        self.count += 1
        return grad


def _losses(result, what: str) -> tuple[float, float]:
    if not (isinstance(result, tuple | list) and len(result) == 2):
        raise CheckFailed(f"{what} should return two numbers, (loss_d, loss_g); got {result!r:.80}")
    out = []
    for name, value in zip(("loss_d", "loss_g"), result, strict=True):
        if isinstance(value, torch.Tensor):
            if value.numel() != 1:
                raise CheckFailed(f"{name} should be one number, got shape {shape(value)}")
            value = value.detach().item()
        if not isinstance(value, int | float):
            raise CheckFailed(f"{name} should be a number or a scalar tensor, got {value!r:.60}")
        out.append(float(value))
    return out[0], out[1]


def _differing(models_a: dict, models_b: dict, atol: float) -> list[str]:
    names = []
    for name, a in models_a.items():
        b = models_b[name]
        for (pname, p), q in zip(a.named_parameters(), b.parameters(), strict=True):
            if not torch.allclose(p.detach(), q.detach(), atol=atol, rtol=1e-6):
                names.append(f"{name}.{pname}")
    return names


def compare_training_steps(
    student_step,
    reference_step,
    make_case,
    *,
    sizes=(6, 5),
    steps: int = 2,
    what: str = "train_step",
    d_names: tuple[str, ...] = ("D",),
    atol: float = 1e-7,
) -> None:
    """Run ``student_step`` and ``reference_step`` on identical small models and compare.

    ``make_case(batch_size, seed)`` returns ``(models, calls, counter)``: ``models`` a dict
    name -> module (the G and D of the step, built the same way on every call), ``calls`` one
    tuple of positional arguments per step (models, optimisers, data), ``counter`` the
    :class:`GradientCounter` its G reports to. Both steps start from the same weights and data;
    after each step every parameter, and the two returned losses, must agree. Tried for every
    batch size in ``sizes``, so that nothing may hard-code one.
    """
    for size in sizes:
        mine, mine_calls, mine_counter = make_case(size, 7 + size)
        ref, ref_calls, ref_counter = make_case(size, 7 + size)
        where = f"with a batch of {size}"
        for k in range(steps):
            got = _losses(student_step(*mine_calls[k]), what)
            want = _losses(reference_step(*ref_calls[k]), what)
            if mine_counter.count > ref_counter.count:
                raise CheckFailed(
                    f"{where}: D's loss sent gradients into G (G's outputs received "
                    f"{mine_counter.count} gradients in step {k + 1}, {ref_counter.count} "
                    "expected). The fakes D trains on must be cut from G's graph, or G's "
                    "gradients mix in D's loss"
                )
            wrong = _differing(mine, ref, atol)
            wrong_d = [w for w in wrong if w.split(".", 1)[0] in d_names]
            ordinal = "first" if k == 0 else "second"
            if wrong_d and k == 0:
                raise CheckFailed(
                    f"{where}, after the first step the discriminator's parameters differ from "
                    f"the reference's ({', '.join(wrong_d[:3])}): look at D's loss (which pairs "
                    "it sees, with which targets and weights) and at the optimiser that steps "
                    "it. D is updated first, on fakes that G made before any update"
                )
            if wrong and k == 0:
                raise CheckFailed(
                    f"{where}, D's update is right, but after the first step G's parameters "
                    f"differ ({', '.join(wrong[:3])}): look at G's loss (its target, its "
                    "terms, their weights) and at the D it is measured by (G is trained after "
                    "D's update, through the updated D), and that only G's optimiser steps G"
                )
            if wrong:
                raise CheckFailed(
                    f"{where}, the first step is right but the {ordinal} is not "
                    f"({', '.join(wrong[:3])}): gradients left over from the first step were "
                    "added to the second. Clear each optimiser's gradients before its backward "
                    "pass"
                )
            if abs(got[0] - want[0]) > 1e-5 * max(1.0, abs(want[0])):
                raise CheckFailed(
                    f"{where}, the updates are right but the returned loss_d of step {k + 1} "
                    f"is {got[0]:.6f}, expected {want[0]:.6f}: return D's loss of this step"
                )
            if abs(got[1] - want[1]) > 1e-5 * max(1.0, abs(want[1])):
                raise CheckFailed(
                    f"{where}, the updates are right but the returned loss_g of step {k + 1} "
                    f"is {got[1]:.6f}, expected {want[1]:.6f}: return G's loss of this step"
                )


def require_answered(*values) -> None:
    """An unanswered question (its variables still hold ``NotImplemented``, as the exercise
    notebook leaves them) counts as not implemented, like an exercise's unwritten function."""
    if any(v is NotImplemented for v in values):
        raise NotImplementedError("the question above is not answered yet")


def require_number(value, what: str, want: float, tol: float, explain: str) -> None:
    """A student's numeric answer against a recomputed one, within ``tol``."""
    require_answered(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise CheckFailed(f"{what} should be a number, got {type(value).__name__}")
    if not abs(float(value) - want) <= tol:
        raise CheckFailed(
            f"{what} is {float(value):.4g}, which is not within {tol} of the "
            f"measured value. {explain}"
        )
