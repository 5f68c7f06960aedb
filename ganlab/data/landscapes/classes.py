"""The landscapes world's semantic classes, their legend colours, and which are countable.

Classes are numbered as listed (label 0 is ``sky``). ``tree``, ``rock`` and ``cloud`` are
*things* (countable: each has an instance map, as COCO-Stuff's things); the others are
*stuff* (amorphous regions, as COCO-Stuff's stuff classes and most of ADE20K's).
"""

from __future__ import annotations

import numpy as np

CLASSES = ("sky", "cloud", "mountain", "snow", "water", "sand", "grass", "field", "tree", "rock")
NUM_CLASSES = len(CLASSES)
THINGS = ("cloud", "tree", "rock")  # countable: each instance has its own id
CLASS_INDEX = {name: i for i, name in enumerate(CLASSES)}
SKY, CLOUD, MOUNTAIN, SNOW, WATER, SAND, GRASS, FIELD, TREE, ROCK = range(NUM_CLASSES)

# Legend colours for drawing maps (not the rendered look): distinct at a glance.
LEGEND = np.array(
    [
        (135, 190, 245),  # sky
        (250, 250, 250),  # cloud
        (120, 90, 70),  # mountain
        (200, 255, 255),  # snow
        (20, 60, 200),  # water
        (240, 210, 120),  # sand
        (80, 200, 60),  # grass
        (210, 170, 40),  # field
        (0, 100, 20),  # tree
        (110, 110, 120),  # rock
    ],
    dtype=np.uint8,
)


def colorize(labels) -> np.ndarray:
    """A label map (H, W) of ints in 0..9 -> (H, W, 3) uint8 legend colours."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(
            f"labels must lie in 0..{NUM_CLASSES - 1} ({', '.join(CLASSES)}), "
            f"got values in {labels.min()}..{labels.max()}"
        )
    return LEGEND[labels]
