"""Building blocks shared across papers; each lives here once."""

from ganlab.nn.conditioning import ConditioningAugmentation, kl_divergence
from ganlab.nn.maxout import Maxout

__all__ = ["ConditioningAugmentation", "Maxout", "kl_divergence"]
