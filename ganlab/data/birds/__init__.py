"""The birds world: captioned birds drawn from part attributes (stands in for CUB-200).

>>> from ganlab.data.birds import load_birds
>>> data = load_birds(1000, "train", size=64)   # images, attributes, species, 10 captions each
>>> crops = load_birds(1000, "train", size=32, framing="tight")  # the bird fills the frame
"""

from ganlab.data.birds.attributes import (
    ATTRIBUTES,
    COLORS,
    GROUPS,
    INDIVIDUAL_GROUPS,
    NUM_SPECIES,
    SPECIES_GROUPS,
    decode,
    encode,
    species_attributes,
    species_name,
    species_split,
)
from ganlab.data.birds.captions import MAX_WORDS, make_captions, parse_caption, tokenize
from ganlab.data.birds.dataset import (
    SPLITS,
    Bird,
    BirdsData,
    BirdsWorld,
    load_birds,
    render,
    to_float,
)
from ganlab.data.birds.render import FRAMINGS

__all__ = [
    "ATTRIBUTES",
    "COLORS",
    "FRAMINGS",
    "GROUPS",
    "INDIVIDUAL_GROUPS",
    "NUM_SPECIES",
    "SPECIES_GROUPS",
    "MAX_WORDS",
    "SPLITS",
    "Bird",
    "BirdsData",
    "BirdsWorld",
    "decode",
    "encode",
    "load_birds",
    "make_captions",
    "parse_caption",
    "render",
    "species_attributes",
    "species_name",
    "species_split",
    "to_float",
    "tokenize",
]
