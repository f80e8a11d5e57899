# Copyright (c) facecraft_d2 contributors.
"""Face datasets for Detectron2; importing this package registers them (see builtin.py)."""

from . import datasets  # noqa: F401
from . import builtin as _builtin  # noqa: F401  registers the face datasets in DatasetCatalog
from .cascade_loader import build_cascade_train_loader, estimate_delta_stats, split_train_val
from .cascade_sampler import CascadeWindowSampler
from .rcnn_augment import build_rcnn_train_augmentation, build_rcnn_train_loader
from .crop_cache import CropCache, CropCacheLoader, build_crop_cache_loader
from .catalog import register_heldout_split, register_subset
from .datasets import AnnotationFormatError, landmarks_to_square_box

__all__ = [
    "AnnotationFormatError",
    "CascadeWindowSampler",
    "CropCache",
    "CropCacheLoader",
    "build_crop_cache_loader",
    "build_cascade_train_loader",
    "build_rcnn_train_augmentation",
    "build_rcnn_train_loader",
    "estimate_delta_stats",
    "landmarks_to_square_box",
    "register_heldout_split",
    "register_subset",
    "split_train_val",
]
