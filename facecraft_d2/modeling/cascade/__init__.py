# Copyright (c) facecraft_d2 contributors.
from .losses import branch_labels, branch_loss, threshold_masks
from .network import BRANCHES, FaceCraftNet
from .pyramid import (
    crop_from_pyramid,
    crop_resized,
    dense_windows,
    pyramid_scales,
    resize_image,
    response_map_pool,
    square_boxes,
    suppress_contained,
)

__all__ = [
    "BRANCHES",
    "FaceCraftNet",
    "branch_labels",
    "branch_loss",
    "crop_from_pyramid",
    "crop_resized",
    "dense_windows",
    "pyramid_scales",
    "resize_image",
    "response_map_pool",
    "square_boxes",
    "suppress_contained",
    "threshold_masks",
]
