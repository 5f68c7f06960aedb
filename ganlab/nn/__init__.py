"""Building blocks shared across papers; each lives here once."""

from ganlab.nn.attention import WordAttention, padding_mask, word_attention
from ganlab.nn.conditioning import ConditioningAugmentation, kl_divergence
from ganlab.nn.glu import GLU, glu
from ganlab.nn.maxout import Maxout

__all__ = [
    "GLU",
    "ConditioningAugmentation",
    "Maxout",
    "WordAttention",
    "glu",
    "kl_divergence",
    "padding_mask",
    "word_attention",
]
