"""Judges: small networks trained on each world's real images, standing in for Inception.

* ``ganlab.judges.digits``: :class:`DigitJudge`, a CNN on the real MNIST digits;
  ``load_digit_judge()`` loads the shipped weights, ``train_digit_judge()`` retrains it.

Names are imported lazily, so that ``python -m ganlab.judges.digits`` runs cleanly.
"""

_DIGITS = ("DigitJudge", "load_digit_judge", "train_digit_judge")
__all__ = list(_DIGITS)


def __getattr__(name: str):
    if name in _DIGITS:
        from ganlab.judges import digits

        return getattr(digits, name)
    raise AttributeError(f"module 'ganlab.judges' has no attribute {name!r}")
