"""The metrics' input checks, now in :mod:`ganlab.validation` (one module for the package).

Kept so that ``from ganlab.metrics.validate import check_features`` keeps working.
"""

from ganlab.errors import DtypeError
from ganlab.validation import check_features, check_images, check_same_dim, to_numpy64
from ganlab.validation import label_array as check_labels

__all__ = ["DtypeError", "check_features", "check_images", "check_labels", "check_same_dim"]
__all__ += ["to_numpy64"]
