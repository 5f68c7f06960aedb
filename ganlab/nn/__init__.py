"""Building blocks shared across papers; each lives here once."""

from ganlab.nn.maxout import Maxout

__all__ = ["Maxout"]
