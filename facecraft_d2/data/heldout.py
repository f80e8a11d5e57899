# Copyright (c) facecraft_d2 contributors.
"""
The cascades' validation images: the ``widerface_train`` images their training never saw
(``MODEL.FACECRAFT.SAMPLER.VAL_FRACTION``, chosen by a hash of the image id), with their faces
and ignore regions at the test's minimum face size. Used to choose test thresholds
(``tools/tune_cascade.py``) and to see where a cascade loses faces (``tools/stage_recall.py``).
"""
import numpy as np
import torch

from detectron2.data import DatasetCatalog
from detectron2.data import detection_utils as utils

from .cascade_samples import faces_and_ignore
from .splits import split_train_val

__all__ = ["load_heldout_images"]


def load_heldout_images(cfg, max_images, dataset="widerface_train"):
    """
    Args:
        cfg: a cascade config (its ``MODEL.FACECRAFT.SAMPLER.VAL_FRACTION`` and
            ``MODEL.FACECRAFT.TEST.MIN_FACE_SIZE``).
        max_images (int): the first this many held-out images, in the split's order.
        dataset (str): a registered dataset with face annotations.
    Returns:
        (images, gts): ``images`` a list of (3, H, W) uint8 BGR tensors; ``gts`` a list of
        ``(faces (F, 4), ignore (G, 4))`` XYXY float32 boxes per image: faces of at least the
        minimum face size, and crowds and smaller faces as ignore regions.
    """
    _, val = split_train_val(DatasetCatalog.get(dataset), cfg.MODEL.FACECRAFT.SAMPLER.VAL_FRACTION)
    images, gts = [], []
    for d in val[:max_images]:
        img = utils.read_image(d["file_name"], format="BGR")
        images.append(torch.from_numpy(np.ascontiguousarray(img)).permute(2, 0, 1))
        gts.append(faces_and_ignore(d, cfg.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE))
    return images, gts
