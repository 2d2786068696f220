"""Texture-space helpers shared by every baker (the mesh's atlas, the projection prior's head
texture)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage


def fill_empty_texels(image: np.ndarray, covered: np.ndarray) -> np.ndarray:
    """Give every texel outside the charts (`covered` false) the colour of its nearest
    covered texel, so bilinear lookups and mip levels at chart borders never blend in
    background. H x W x C in, H x W x C out; unchanged when nothing or everything is covered."""
    if covered.all() or not covered.any():
        return image
    nearest = ndimage.distance_transform_edt(~covered, return_distances=False, return_indices=True)
    return image[nearest[0], nearest[1]]
