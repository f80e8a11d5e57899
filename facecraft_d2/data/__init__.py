# Copyright (c) facecraft_d2 contributors.
"""Face datasets for Detectron2; importing this package registers them (see builtin.py)."""

from . import datasets  # noqa: F401
from . import builtin as _builtin  # noqa: F401  registers the face datasets in DatasetCatalog
from .datasets import AnnotationFormatError, landmarks_to_square_box

__all__ = ["AnnotationFormatError", "landmarks_to_square_box"]
