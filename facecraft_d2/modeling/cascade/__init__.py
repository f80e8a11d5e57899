# Copyright (c) facecraft_d2 contributors.
from .inference import CascadeInference
from .losses import branch_labels, branch_loss, threshold_masks
from .network import BRANCHES, STAGE_INPUT_SIZES, FaceCraftNet
from .pyramid import (
    crop_from_pyramid,
    crop_resized,
    dense_windows,
    pyramid_scales,
    resize_image,
    response_map_pool,
    square_boxes,
    suppress_contained,
    vote_boxes,
)

__all__ = [
    "BRANCHES",
    "CascadeInference",
    "FaceCraftNet",
    "STAGE_INPUT_SIZES",
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
    "vote_boxes",
    "threshold_masks",
]
