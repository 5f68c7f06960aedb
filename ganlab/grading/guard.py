"""The grader's code inside a student's kernel: snapshot the check machinery, re-check at the end.

A submission runs in the same Python process as the checks, so a cell can replace what the
checks are made of (``ganlab.grading.check``, an exercise's check function, a helper such as
``require_close``, ``torch.allclose``) or simply print a check's "passed" line. The grader
(:mod:`ganlab.grading.grade`) therefore runs two hidden requests in the kernel, which the
student's cells never see (silent, kept out of ``In``/history, no output):

1. :func:`arm`, before the first cell: imports every chapter's checks and keeps, under a
   one-off secret (the *nonce*, fresh per run), references to the check functions, their
   code objects, and the identity of every function and class the checks rely on (the
   ``ganlab.grading`` modules' globals, ``torch``, ``torch.nn.functional``, the methods of
   ``torch.Tensor`` and ``nn.Module``, a list of builtins).
2. :func:`report`, after the last cell: compares all of that with the snapshot (anything
   replaced is *tampering*), then runs each exercise's **original** check function itself on
   the student's objects (looked up as the check cell does, so ganlab's own implementation
   handed in as an answer fails here too), and returns the outcome as a JSON string in the
   reply's ``user_expressions`` (a channel that printing cannot write to), tagged with the nonce.

What this cannot do: code in the kernel can reach anything in the process, this module's
snapshot included, so a determined student can still defeat it (for example by rewriting
ipykernel's reply, or by patching a function this module does not snapshot). It makes the
simple forgeries fail loudly, not every forgery impossible; see the README.
"""

from __future__ import annotations

import builtins
import contextlib
import io
import json
import sys
import types

BUILTINS = (
    "abs all any callable dict enumerate float getattr hasattr int isinstance issubclass "
    "iter len list max min next open print range repr round set sorted str sum tuple type zip"
).split()
"""Builtins the checks use; replacing one is tampering."""

WRAPPED_BY_TORCH = ("torch.manual_seed",)
"""Functions torch itself replaces by a wrapper of the original (importing ``torch._dynamo``
wraps ``manual_seed``): a wrapper around the snapshot's function is not tampering."""

_SNAPSHOTS: dict[str, dict] = {}  # nonce -> what arm() saw


def _watched() -> dict[str, object]:
    """Everything whose replacement would change a check's verdict: ``"where.name" -> object``.

    Functions and classes in the ``ganlab.grading`` modules' globals (``require_close``, the
    ``check_*`` functions, ``CheckFailed``...), the callables of ``torch`` and
    ``torch.nn.functional``, the attributes of ``torch.Tensor`` and ``nn.Module``, and
    :data:`BUILTINS`.
    """
    import torch
    import torch.nn.functional as F

    watched: dict[str, object] = {}
    spaces = {
        name: vars(module)
        for name, module in sorted(sys.modules.items())
        if name == "ganlab.grading" or name.startswith("ganlab.grading.")
    }
    spaces |= {
        "torch": vars(torch),
        "torch.nn.functional": vars(F),
        "torch.Tensor": vars(torch.Tensor),
        "torch.nn.Module": vars(torch.nn.Module),
    }
    for where, namespace in spaces.items():
        for name, value in list(namespace.items()):
            if callable(value) or isinstance(value, types.ModuleType):
                watched[f"{where}.{name}"] = value
    for name in BUILTINS:
        watched[f"builtins.{name}"] = getattr(builtins, name)
    return watched


def arm(nonce: str, ganlab_file: str) -> None:
    """Snapshot the check machinery (before any student code runs), under ``nonce``.

    ``ganlab_file`` is ``ganlab.__file__`` in the grader's process: the kernel must have
    imported the same package.
    """
    import ganlab
    from ganlab.grading import registry

    registry.load_checks()
    exercises = {e.key: e for chapter in registry.EXERCISES.values() for e in chapter}
    _SNAPSHOTS[nonce] = {
        "ganlab_file": ganlab_file,
        "kernel_ganlab_file": ganlab.__file__,
        "modules": {n: m for n, m in sys.modules.items() if n.startswith("ganlab.grading")},
        "exercises": exercises,
        "checks": {k: (e.check, e.check.__code__) for k, e in exercises.items()},
        "check": registry.check,
        "check_code": registry.check.__code__,
        "lookup": registry.submitted_objects,
        "lookup_code": registry.submitted_objects.__code__,
        "CheckFailed": registry.CheckFailed,
        "watched": _watched(),
    }


def tampering(snapshot: dict) -> list[str]:
    """What differs from the snapshot, one line each (empty: nothing was replaced)."""
    import ganlab.grading
    from ganlab.grading import registry

    found = []
    if snapshot["kernel_ganlab_file"] != snapshot["ganlab_file"]:
        found.append(f"the kernel imported ganlab from {snapshot['kernel_ganlab_file']}")
    for name, module in snapshot["modules"].items():
        if sys.modules.get(name) is not module:
            found.append(f"sys.modules[{name!r}] was replaced")
    if ganlab.grading.check is not snapshot["check"] or registry.check is not snapshot["check"]:
        found.append("ganlab.grading.check was replaced")
    if snapshot["check"].__code__ is not snapshot["check_code"]:
        found.append("the code of ganlab.grading.check was replaced")
    if snapshot["lookup"].__code__ is not snapshot["lookup_code"]:
        found.append("the code of ganlab.grading.registry.submitted_objects was replaced")
    if registry.CheckFailed is not snapshot["CheckFailed"]:
        found.append("ganlab.grading.CheckFailed was replaced")
    for key, exercise in snapshot["exercises"].items():
        fn, code = snapshot["checks"][key]
        chapter, exercise_id = key.split("/", 1)
        current = next(
            (e for e in registry.EXERCISES.get(chapter, []) if e.id == exercise_id), None
        )
        if current is not exercise:
            found.append(f"exercise {key} was re-registered")
        elif exercise.check is not fn:
            found.append(f"the check of exercise {key} was replaced")
        if fn.__code__ is not code:  # code objects are immutable: identity is enough
            found.append(f"the code of exercise {key}'s check was replaced")
    now = _watched()
    for where, value in snapshot["watched"].items():
        current = now.get(where)
        if where in WRAPPED_BY_TORCH:  # may since have been wrapped by torch itself
            while current is not value and hasattr(current, "__wrapped__"):
                current = current.__wrapped__
        if current is not value:
            found.append(f"{where} was {'deleted' if where not in now else 'replaced'}")
    return list(dict.fromkeys(found))  # one line per finding, in order


def _recheck(check, exercise, lookup, check_failed, namespace) -> dict:
    """Run an original ``check`` on the student's objects: ``{"status", "message"}``.

    ``lookup`` is the snapshot's :func:`ganlab.grading.registry.submitted_objects` (an
    undefined name, or ganlab's own implementation handed in, fails as in the check cell).
    The statuses mean what :func:`ganlab.grading.check` makes of the same outcomes:
    ``failed`` (``CheckFailed``), ``not_implemented``, ``error`` (anything else raised).
    """
    try:
        objects = lookup(exercise, namespace)
    except check_failed as failure:
        return {"status": "failed", "message": str(failure)}
    try:
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            check(*objects)
    except check_failed as failure:
        return {"status": "failed", "message": str(failure)}
    except NotImplementedError as error:
        return {"status": "not_implemented", "message": str(error)}
    except BaseException as error:  # noqa: BLE001 - any failure of the student's code
        return {"status": "error", "message": f"{type(error).__name__}: {error}"}
    return {"status": "passed", "message": ""}


def report(nonce: str, chapter: str, namespace: dict) -> str:
    """JSON: the nonce, tampering found, and the original checks' verdicts by exercise id.

    Called from the grader's hidden request after the last cell, with the notebook's
    globals. Nothing is printed; the grader reads the returned string.
    """
    snapshot = _SNAPSHOTS.get(nonce)
    if snapshot is None:
        return json.dumps({"nonce": nonce, "tampered": ["the grader's snapshot is gone"]})
    found = tampering(snapshot)
    results = {}
    for key, exercise in snapshot["exercises"].items():
        if exercise.chapter == chapter:
            check = snapshot["checks"][key][0]
            results[exercise.id] = _recheck(
                check, exercise, snapshot["lookup"], snapshot["CheckFailed"], namespace
            )
    return json.dumps({"nonce": nonce, "tampered": found, "checks": results})
