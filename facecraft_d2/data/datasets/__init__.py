# Copyright (c) facecraft_d2 contributors.
"""Face dataset loaders and registration helpers (one module per annotation format)."""

from .afw import load_afw, load_afw_annotations, register_afw
from .aflw import load_aflw, register_aflw
from .background import load_background_images, register_background_images
from .common import FACE_CATEGORY_ID, FACE_CLASSES, AnnotationFormatError
from .dlib_xml import load_dlib_xml, register_dlib_xml
from .fddb import FDDB_FOLD_SIZES, FDDB_NUM_IMAGES, ellipse_to_box, load_fddb, register_fddb
from .landmarks import AFLW_LANDMARK_NAMES, landmarks_to_square_box
from .mtfl import MTFL_LANDMARK_NAMES, load_mtfl, register_mtfl
from .threer import load_threer, register_threer
from .widerface import WIDER_MIN_FACE_SIZE, load_widerface, register_widerface

__all__ = [
    "AnnotationFormatError",
    "FACE_CLASSES",
    "FACE_CATEGORY_ID",
    "AFLW_LANDMARK_NAMES",
    "landmarks_to_square_box",
    "WIDER_MIN_FACE_SIZE",
    "load_widerface",
    "register_widerface",
    "FDDB_FOLD_SIZES",
    "FDDB_NUM_IMAGES",
    "ellipse_to_box",
    "load_fddb",
    "register_fddb",
    "load_afw_annotations",
    "load_afw",
    "register_afw",
    "load_aflw",
    "register_aflw",
    "load_threer",
    "register_threer",
    "load_dlib_xml",
    "register_dlib_xml",
    "MTFL_LANDMARK_NAMES",
    "load_mtfl",
    "register_mtfl",
    "load_background_images",
    "register_background_images",
]
