"""The faces world: animal faces in three domains with exact factors and part masks
(stands in for FFHQ, CelebA-HQ and AFHQ).

>>> from ganlab.data.faces import load_faces, FacesWorld
>>> data = load_faces(1000, "train", size=64)          # images, masks, factor codes/values
>>> cats = load_faces(200, "reference", domain="cat")  # StarGAN v2's reference set
>>> face = FacesWorld("test").face(3).replace(yaw=0.4) # change one factor, keep the rest
"""

from ganlab.data.faces.dataset import (
    SPLITS,
    FacesData,
    FacesWorld,
    load_faces,
    render,
    to_float,
    training_images,
)
from ganlab.data.faces.factors import (
    CATEGORIES,
    CONTINUOUS,
    DOMAINS,
    FACTORS,
    KIND_DOMAIN,
    KINDS,
    LEVELS,
    RANGES,
    Face,
    encode,
    sample_face,
)
from ganlab.data.faces.render import PARTS, render_face

__all__ = [
    "CATEGORIES",
    "CONTINUOUS",
    "DOMAINS",
    "FACTORS",
    "KINDS",
    "KIND_DOMAIN",
    "LEVELS",
    "PARTS",
    "RANGES",
    "SPLITS",
    "Face",
    "FacesData",
    "FacesWorld",
    "encode",
    "load_faces",
    "render",
    "render_face",
    "training_images",
    "sample_face",
    "to_float",
]
