"""The course's chapters, as the ``ganlab`` command sees them.

Each written chapter is a module here with ``PROFILES`` (settings per run profile) and the
functions ``train(args)``, ``sample(args)``, ``evaluate(args) -> dict`` and
``bench(args) -> dict``, plus ``add_condition_arguments(parser)`` for its sampling options.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from ganlab import CHAPTERS
from ganlab.errors import ChapterNotReadyError

MODULES = {
    "cgan": "ganlab.chapters.cgan",
    "gan-int-cls": "ganlab.chapters.gan_int_cls",
    "stackgan": "ganlab.chapters.stackgan",
    "attngan": "ganlab.chapters.attngan",
}

TITLES = {
    "cgan": "1. CGAN (Mirza & Osindero 2014)",
    "gan-int-cls": "2. GAN-INT-CLS (Reed et al. 2016)",
    "stackgan": "3. StackGAN (Zhang et al. 2017)",
    "attngan": "4. AttnGAN (Xu et al. 2018)",
    "pggan": "5. PGGAN (Karras et al. 2018)",
    "stylegan": "6. StyleGAN (Karras et al. 2019)",
    "spade": "7. SPADE (Park et al. 2019)",
    "stargan-v2": "8. StarGAN v2 (Choi et al. 2020)",
}


def get_chapter(name: str) -> ModuleType:
    """The chapter's module, or a clear error for an unknown or not-yet-written chapter."""
    if name not in CHAPTERS:
        raise ValueError(f"unknown chapter {name!r}: expected one of {', '.join(CHAPTERS)}")
    if name not in MODULES:
        raise ChapterNotReadyError(
            f"chapter {TITLES[name]} is planned but not written yet; "
            f"written so far: {', '.join(MODULES)}"
        )
    return importlib.import_module(MODULES[name])
