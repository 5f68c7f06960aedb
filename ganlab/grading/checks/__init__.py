"""One module per chapter; importing it registers that chapter's exercises."""

from ganlab.grading.checks import cgan  # noqa: F401
