"""The exercise registry and ``check``, the function every check cell calls.

Each chapter's check module (``ganlab/grading/checks/<chapter>.py``) registers its exercises
with :func:`register`. A check is a plain function that receives the student's objects (in the
order of ``Exercise.names``) and raises :class:`CheckFailed` with a message for the student
when something is wrong. It compares numbers, shapes, gradients and statistics, never code.

A check cell in a notebook is always exactly::

    from ganlab.grading import check
    check("cgan", "1", globals())
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


class CheckFailed(AssertionError):
    """A student's answer does not do what the exercise asks; the message says why."""


@dataclass(frozen=True)
class Exercise:
    """One graded exercise of a chapter's assignment.

    ``names`` are the globals the student defines (e.g. ``("condition_on_label",)``);
    ``check(*objects)`` receives them in that order and raises :class:`CheckFailed` on a
    wrong answer. ``hints`` are opt-in, from a nudge to a near-answer: a student asks for
    them with :func:`hint`, one at a time.
    """

    chapter: str
    id: str
    title: str
    points: int
    names: tuple[str, ...]
    check: Callable[..., None]
    hints: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        """``"chapter/id"``, the value of a check cell's ``ganlab.check`` metadata."""
        return f"{self.chapter}/{self.id}"

    def passed_line(self) -> str:
        """What :func:`check` prints on success; the grader looks for exactly this line."""
        return f"Exercise {self.id} ({self.title}): passed, {self.points}/{self.points} points"


EXERCISES: dict[str, list[Exercise]] = {}
"""Chapter name -> its exercises, in the order they appear in the assignment."""


def register(exercise: Exercise) -> Exercise:
    """Add an exercise to :data:`EXERCISES` (re-registering the same id replaces it)."""
    exercises = EXERCISES.setdefault(exercise.chapter, [])
    for i, old in enumerate(exercises):
        if old.id == exercise.id:
            exercises[i] = exercise
            return exercise
    exercises.append(exercise)
    return exercise


def load_checks() -> None:
    """Import every chapter's check module, which fills :data:`EXERCISES`."""
    import ganlab.grading.checks  # noqa: F401


def get_exercises(chapter: str) -> list[Exercise]:
    """The registered exercises of ``chapter``; an error (a ``KeyError``) that names the known
    chapters, and says so when ``chapter`` is planned but not written yet."""
    from ganlab.chapters import planned
    from ganlab.errors import UnknownChapterError

    load_checks()
    if chapter not in EXERCISES:
        known = ", ".join(sorted(EXERCISES)) or "none"
        entry = planned(chapter)  # an unknown name: UnknownChapterError naming the plan
        raise UnknownChapterError(
            f"no exercises for chapter {chapter!r}: {entry.heading} is planned but its "
            f"assignment is not written yet (exercises exist for: {known})"
        )
    return EXERCISES[chapter]


def get_exercise(chapter: str, exercise_id: str) -> Exercise:
    """One registered exercise; ``KeyError`` naming the chapter's exercise ids."""
    exercises = get_exercises(chapter)
    for exercise in exercises:
        if exercise.id == str(exercise_id):
            return exercise
    ids = ", ".join(e.id for e in exercises)
    raise KeyError(f"chapter {chapter!r} has no exercise {exercise_id!r} (it has {ids})")


def check_source(chapter: str, exercise_id: str) -> str:
    """The exact source of a check cell; the grader rewrites every check cell to this."""
    return f'from ganlab.grading import check\ncheck("{chapter}", "{exercise_id}", globals())'


def hint(chapter: str, exercise_id: str, n: int = 1) -> None:
    """Print the first ``n`` hints of one exercise (opt-in help: each hint says more).

    ``hint("cgan", "2")`` prints the first; ``hint("cgan", "2", 2)`` the first two.
    """
    exercise = get_exercise(chapter, exercise_id)
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive integer (how many hints), got {n!r}")
    if not exercise.hints:
        print(f"Exercise {exercise.id} ({exercise.title}) has no hints; reread its text.")
        return
    shown = exercise.hints[:n]
    for i, text in enumerate(shown, start=1):
        print(f"Hint {i}/{len(exercise.hints)} for exercise {exercise.id}: {text}")
    if n < len(exercise.hints):
        print(f"(hint({chapter!r}, {exercise.id!r}, {n + 1}) shows one more)")


def package_original(obj) -> str | None:
    """The name of ganlab's own object that ``obj`` is, or is made from; ``None`` otherwise.

    Catches what a student could hand in instead of writing the answer: one of ganlab's
    functions or classes (``from ganlab.nn.glu import glu``), the same wrapped in
    ``functools.partial`` or taken as a bound method, an instance of one of ganlab's classes
    (a module that computes the answer when called), and a class that inherits from one of
    ganlab's. Code the student wrote that *calls* ganlab inside (a data loader, a helper) is
    the student's own object and is not caught.
    """
    import functools

    seen = 0
    while seen < 10:  # unwrap partials and bound methods down to the function itself
        seen += 1
        if isinstance(obj, functools.partial):
            obj = obj.func
        elif isinstance(obj, types.MethodType):
            obj = obj.__func__
        else:
            break
    if isinstance(obj, type):
        for cls in obj.__mro__:
            if _from_ganlab(cls):
                name = _dotted(cls)
                return name if cls is obj else f"{name} (your class {obj.__qualname__} inherits it)"
        return None
    if isinstance(obj, types.FunctionType | types.BuiltinFunctionType):
        return _dotted(obj) if _from_ganlab(obj) else None
    if _from_ganlab(type(obj)):
        return f"an instance of {_dotted(type(obj))}"
    return None


def _from_ganlab(obj) -> bool:
    """Defined in the ganlab package: by its module's name, or by the file of its code."""
    module = getattr(obj, "__module__", None) or ""
    if module == "ganlab" or module.startswith("ganlab."):
        return True
    code = getattr(obj, "__code__", None)
    return code is not None and Path(code.co_filename).resolve().is_relative_to(_PACKAGE_ROOT)


def _dotted(obj) -> str:
    return f"{obj.__module__}.{getattr(obj, '__qualname__', type(obj).__name__)}"


_PACKAGE_ROOT = Path(__file__).resolve().parents[1]
"""The folder of the ganlab package (``ganlab/``)."""


def submitted_objects(exercise: Exercise, namespace: Mapping[str, Any]) -> list:
    """The student's objects for ``exercise``, looked up in ``namespace`` by its ``names``.

    The one place where submissions are looked up (by :func:`check` and by the grader's
    re-check): raises :class:`CheckFailed` when a name is not defined, or when the object
    handed in is ganlab's own implementation (see :func:`package_original`) rather than the
    student's.
    """
    label = f"Exercise {exercise.id} ({exercise.title})"
    objects = []
    for name in exercise.names:
        if name not in namespace:
            raise CheckFailed(
                f"{label}: `{name}` is not defined. Define it in the answer cell above and run "
                "that cell before this check."
            )
        original = package_original(namespace[name])
        if original is not None:
            raise CheckFailed(
                f"{label}: you handed in ganlab's own `{original}` as `{name}`; write it "
                "yourself (you may call torch, but the answer must be your own code)."
            )
        objects.append(namespace[name])
    return objects


def check(chapter: str, exercise_id: str, namespace: Mapping[str, Any]) -> None:
    """Check one exercise against the objects the student defined in ``namespace``.

    Prints ``Exercise N (title): passed, p/p points`` on success. Raises
    :class:`CheckFailed` saying what was expected and what was observed; lets a
    ``NotImplementedError`` from the student's code (an unanswered exercise) through
    unchanged; any other error from the student's code propagates with a note naming the
    exercise.
    """
    exercise = get_exercise(chapter, exercise_id)
    label = f"Exercise {exercise.id} ({exercise.title})"
    objects = submitted_objects(exercise, namespace)
    try:
        exercise.check(*objects)
    except CheckFailed as failure:
        raise CheckFailed(f"{label}: {failure}") from None
    except NotImplementedError:
        raise
    except Exception as error:
        error.add_note(f"(raised by your code while checking {label})")
        raise
    print(exercise.passed_line())
