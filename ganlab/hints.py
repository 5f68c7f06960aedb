"""Opt-in hints for the assignments, kept apart from the grading machinery.

In an exercise notebook: ``from ganlab.hints import hint``, then ``hint("cgan", "2")`` prints
the first hint of chapter 1's exercise 2 and ``hint("cgan", "2", 2)`` the first two.
"""

from ganlab.grading.registry import hint

__all__ = ["hint"]
