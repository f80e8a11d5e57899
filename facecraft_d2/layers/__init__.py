# Copyright (c) facecraft_d2 contributors.
"""Low-level image operations shared by training and inference (no models, no datasets)."""
from .boxes import best_iou, best_match, covered_by_ignore
from .crops import crop_from_pyramid, crop_level_index, crop_resized, octave_pyramid, resize_image

__all__ = ["best_iou", "best_match", "covered_by_ignore", "crop_from_pyramid", "crop_level_index", "crop_resized", "octave_pyramid", "resize_image"]


def cascade_box2box():
    """
    The box encoding of the cascade's regression targets (the paper's equations 2-5:
    Detectron2's ``Box2BoxTransform`` with unit weights), built in one place for the model's
    decoding and the samplers' target encoding.
    """
    from detectron2.modeling.box_regression import Box2BoxTransform

    return Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))


__all__ += ["cascade_box2box"]
