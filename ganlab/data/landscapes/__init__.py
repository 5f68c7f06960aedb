"""The landscapes world: semantic layouts and images painted from them (stands in for ADE20K /
COCO-Stuff and GauGAN's demo).

>>> from ganlab.data.landscapes import load_landscapes, render, Style
>>> data = load_landscapes(1000, "train", size=64)      # images, maps, instances, styles
>>> image = render(my_painted_map, Style(time="evening", season="autumn"))
"""

from ganlab.data.landscapes.classes import (
    CLASS_INDEX,
    CLASSES,
    LEGEND,
    NUM_CLASSES,
    THINGS,
    colorize,
)
from ganlab.data.landscapes.dataset import (
    SPLITS,
    LandscapesData,
    LandscapesWorld,
    Scene,
    load_landscapes,
    one_hot,
    to_float,
)
from ganlab.data.landscapes.layout import Layout, draw_layout, painted_map, rasterize
from ganlab.data.landscapes.render import SEASONS, TIMES, Style, draw_style, render

__all__ = [
    "CLASSES",
    "CLASS_INDEX",
    "LEGEND",
    "NUM_CLASSES",
    "SEASONS",
    "SPLITS",
    "THINGS",
    "TIMES",
    "LandscapesData",
    "LandscapesWorld",
    "Layout",
    "Scene",
    "Style",
    "colorize",
    "draw_layout",
    "draw_style",
    "load_landscapes",
    "one_hot",
    "painted_map",
    "rasterize",
    "render",
    "to_float",
]
