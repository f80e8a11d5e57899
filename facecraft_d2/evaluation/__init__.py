# Copyright (c) facecraft_d2 contributors.
"""Face detection evaluators: FDDB, WIDER FACE and the AFW / PASCAL faces AP protocol."""

from .afw_evaluation import AFWEvaluator, afw_average_precision, afw_match, afw_overlaps
from .build import build_face_evaluator
from .common import voc_ap
from .fddb_evaluation import (
    FDDBEvaluator,
    fddb_image_roc,
    fddb_overlaps,
    merge_fddb_rocs,
    rasterize_ellipse,
    tpr_at_fp,
)
from .widerface_evaluation import WiderFaceEvaluator, evaluate_wider, load_wider_ground_truth

__all__ = [
    "AFWEvaluator",
    "FDDBEvaluator",
    "WiderFaceEvaluator",
    "afw_average_precision",
    "afw_match",
    "afw_overlaps",
    "build_face_evaluator",
    "evaluate_wider",
    "fddb_image_roc",
    "fddb_overlaps",
    "load_wider_ground_truth",
    "merge_fddb_rocs",
    "rasterize_ellipse",
    "tpr_at_fp",
    "voc_ap",
]
