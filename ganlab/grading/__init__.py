"""Assignments and grading.

* :mod:`ganlab.grading.registry`: :class:`Exercise`, :data:`EXERCISES`, :func:`check`.
* :mod:`ganlab.grading.checks`: one module of checks per chapter.
* :mod:`ganlab.grading.build`: ``exercises/`` from ``solutions/`` (``ganlab exercises``).
* :mod:`ganlab.grading.grade`: run a submitted notebook and score it (``ganlab grade``).
* :mod:`ganlab.grading.guard`: the grader's hidden code in the student's kernel (snapshot
  of the check machinery, re-check of every exercise).
"""

from ganlab.grading.registry import (
    EXERCISES,
    CheckFailed,
    Exercise,
    check,
    check_source,
    get_exercise,
    get_exercises,
    hint,
    register,
)

__all__ = [
    "EXERCISES",
    "CheckFailed",
    "Exercise",
    "check",
    "check_source",
    "get_exercise",
    "get_exercises",
    "hint",
    "register",
]
