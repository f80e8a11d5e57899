# Copyright (c) facecraft_d2 contributors.
"""Low-level image operations shared by training and inference (no models, no datasets)."""
from .crops import crop_from_pyramid, crop_resized, octave_pyramid, resize_image

__all__ = ["crop_from_pyramid", "crop_resized", "octave_pyramid", "resize_image"]
