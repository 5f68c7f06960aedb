"""Errors that name what was expected, so that a student knows what to fix."""


class GanLabError(Exception):
    """Base class of every error ganlab raises on purpose."""


class DataNotFoundError(GanLabError, FileNotFoundError):
    """A dataset is not where the loader expected it."""


class CheckpointError(GanLabError, ValueError):
    """A checkpoint file is missing, truncated, or belongs to another model or config."""


class NonFiniteLossError(GanLabError, FloatingPointError):
    """Training produced NaN or inf; the last good checkpoint was kept."""


class ChapterNotReadyError(GanLabError, NotImplementedError):
    """The chapter exists in the course plan but is not written yet."""


class DtypeError(GanLabError, TypeError, ValueError):
    """Data of the wrong type or dtype (for example uint8 pixels where floats in [-1, 1] belong).

    It is both a ``TypeError`` (the usual Python meaning) and a ``ValueError`` (so that a
    single ``except ValueError`` catches every bad-input error of ganlab's checks).
    """


class GanLabWarning(UserWarning):
    """The input works, but the result needs care: the message says why and what to do."""


class UnknownChapterError(GanLabError, KeyError):
    """A chapter name that is not in the course plan (``ganlab.chapters.PLAN``)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""
