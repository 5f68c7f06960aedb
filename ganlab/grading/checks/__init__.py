"""One module per chapter; importing it registers that chapter's exercises.

``PUBLISHED`` lists the chapters whose assignment ships (a solution notebook in
``solutions/``); ``ganlab exercises check`` expects one solution per published chapter.
Check modules of chapters still being written (``attngan``) register themselves when
imported (their tests do) but are not published yet.
"""

from ganlab.grading.checks import cgan, gan_int_cls, stackgan  # noqa: F401

PUBLISHED = ("cgan", "gan-int-cls", "stackgan")
