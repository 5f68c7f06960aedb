"""GAN Lab: the companion package of a course on generative adversarial networks.

Chapters (``ganlab.chapters``) tie a world (``ganlab.data``), a paper's model
(``ganlab.models``), one training loop (``ganlab.train``), judges and metrics
(``ganlab.judges``, ``ganlab.metrics``) and the grading of assignments
(``ganlab.grading``) together. ``ganlab.profiles`` picks the scale of everything.
"""

__version__ = "0.1.0"

from ganlab.chapters import CHAPTERS  # noqa: E402  (the one list: ganlab.chapters.PLAN)

__all__ = ["CHAPTERS", "__version__"]
