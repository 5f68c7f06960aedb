"""The course's chapters: the one list of them, and each written chapter's module.

:data:`PLAN` is the only list of chapters in the package: the ``ganlab`` command's choices,
``ganlab.CHAPTERS``, the book's chapter map and the error for a chapter not written yet all
read it. A written chapter is a module here (``PLAN[i].module``) whose ``CHAPTER`` object
fulfils the contract of :mod:`ganlab.chapters.contract`; the five commands (train, sample,
evaluate, bench, ship) are written once, in :mod:`ganlab.chapters.commands`.

This module imports nothing heavy: ``import ganlab`` stays fast.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from ganlab.errors import ChapterNotReadyError, UnknownChapterError


@dataclass(frozen=True)
class PlannedChapter:
    """One chapter of the course plan; ``module`` is None until the chapter is written."""

    number: int
    name: str  # the command's name: ``ganlab train NAME``
    title: str  # the paper's model
    paper: str  # authors and year
    world: str  # what it generates, in words (the book's chapter map)
    payoff: str  # what the student gets to play with
    module: str | None = None

    @property
    def heading(self) -> str:
        """``"1. CGAN (Mirza & Osindero 2014)"``."""
        return f"{self.number}. {self.title} ({self.paper})"


PLAN = (
    PlannedChapter(
        1, "cgan", "CGAN", "Mirza & Osindero 2014", "real MNIST digits",
        "pick a digit, get that digit: the label really steers", "ganlab.chapters.cgan",
    ),
    PlannedChapter(
        2, "gan-int-cls", "GAN-INT-CLS", "Reed et al. 2016", "birds with captions",
        "text to image; a matching-aware discriminator; interpolated captions",
        "ganlab.chapters.gan_int_cls",
    ),
    PlannedChapter(
        3, "stackgan", "StackGAN", "Zhang et al. 2017", "birds",
        "a Stage-I sketch refined into Stage-II detail; conditioning augmentation",
        "ganlab.chapters.stackgan",
    ),
    PlannedChapter(
        4, "attngan", "AttnGAN", "Xu et al. 2018", "birds",
        "per-word attention maps; the DAMSM loss; R-precision", "ganlab.chapters.attngan",
    ),
    PlannedChapter(
        5, "pggan", "PGGAN", "Karras et al. 2018", "faces",
        "growing from 4 px to N px with fade-in, live", "ganlab.chapters.pggan",
    ),
    PlannedChapter(
        6, "stylegan", "StyleGAN", "Karras et al. 2019", "faces",
        "style mixing (coarse, middle, fine), noise, truncation, PPL", "ganlab.chapters.stylegan",
    ),
    PlannedChapter(
        7, "spade", "SPADE", "Park et al. 2019", "landscapes",
        "paint a semantic map, get an image; multi-modal styles", "ganlab.chapters.spade",
    ),
    PlannedChapter(
        8, "stargan-v2", "StarGAN v2", "Choi et al. 2020", "faces in domains",
        "one model, many domains; latent- and reference-guided translation",
        "ganlab.chapters.stargan_v2",
    ),
)  # fmt: skip

CHAPTERS = tuple(c.name for c in PLAN)
"""The chapters' names, in course order (what ``ganlab train CHAPTER`` accepts)."""
WRITTEN = tuple(c.name for c in PLAN if c.module)
"""The chapters written so far."""


def planned(name: str) -> PlannedChapter:
    """The plan's entry for ``name``; :class:`UnknownChapterError` names the valid ones."""
    for chapter in PLAN:
        if chapter.name == name:
            return chapter
    raise UnknownChapterError(f"unknown chapter {name!r}: expected one of {', '.join(CHAPTERS)}")


def require_written(name: str) -> PlannedChapter:
    """The plan's entry for a written chapter; a clear error for one not written yet."""
    entry = planned(name)
    if entry.module is None:
        raise ChapterNotReadyError(
            f"chapter {entry.heading} is planned but not written yet; "
            f"written so far: {', '.join(WRITTEN)}"
        )
    return entry


def get_chapter(name: str):
    """The written chapter ``name`` (its :class:`ganlab.chapters.contract.Chapter`), or a clear
    error for an unknown chapter or one not written yet."""
    return importlib.import_module(require_written(name).module).CHAPTER
