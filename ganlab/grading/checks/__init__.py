"""One module per chapter; importing it registers that chapter's exercises.

A chapter is listed here once its solution notebook exists (``ganlab exercises check``
expects one per registered chapter).
"""

from ganlab.grading.checks import cgan, gan_int_cls  # noqa: F401
