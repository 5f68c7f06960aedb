"""One module per chapter; importing it registers that chapter's exercises.

``PUBLISHED`` lists the chapters whose assignment ships (a solution notebook in
``solutions/``); ``ganlab exercises check`` expects one solution per published chapter.
A chapter still being written registers its checks in its own module (its tests import it)
and joins the import below and ``PUBLISHED`` when its solution notebook ships.
"""

from ganlab.grading.checks import (  # noqa: F401
    attngan,
    cgan,
    gan_int_cls,
    pggan,
    spade,
    stackgan,
    stargan_v2,
    stylegan,
)

PUBLISHED = (
    "cgan", "gan-int-cls", "stackgan", "attngan", "pggan", "stylegan", "spade", "stargan-v2",
)  # fmt: skip
