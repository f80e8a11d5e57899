# Copyright (c) facecraft_d2 contributors.
"""
Ignore regions for the RPN + Fast R-CNN training: boxes that are neither faces nor background.

WIDER FACE marks crowds (``iscrowd``) and has many faces far smaller than the smallest anchor
(16 px at conv5's stride). detectron2's mapper drops crowd boxes, so anchors and RoIs on them
train as background, as do anchors on faces that no anchor can match. With
``MODEL.IGNORE_REGIONS.ENABLED`` the R-CNN train loader keeps both in the ground truth, flagged
``gt_ignore``; :class:`~facecraft_d2.modeling.proposal_generator.IgnoreRegionRPN` and
:class:`~facecraft_d2.modeling.meta_arch.JointRCNN` then never sample a box as background when
ignore regions cover more than ``IOA`` of its area, and never match one to an ignore region.
"""
from typing import List, Tuple

import torch

from detectron2.structures import Boxes, Instances, pairwise_iou

from ..layers import covered_by_ignore

__all__ = ["split_ignore", "drop_ignored_proposals"]


def split_ignore(gt: Instances) -> Tuple[Instances, Boxes]:
    """
    Args:
        gt (Instances): ground truth of one image, optionally with a ``gt_ignore`` (G,) bool field.
    Returns:
        (faces (Instances without ``gt_ignore``), ignore regions (Boxes, (K, 4))).
    """
    if not gt.has("gt_ignore"):
        return gt, Boxes(gt.gt_boxes.tensor[:0])
    ignore = gt.gt_ignore
    faces = gt[~ignore]
    faces.remove("gt_ignore")
    return faces, gt.gt_boxes[ignore]


def drop_ignored_proposals(proposals: List[Instances], gt: List[Instances], ioa: float,
                           bg_iou: float) -> Tuple[List[Instances], List[Instances]]:
    """
    Remove, per image, the proposals that would be Fast R-CNN background (IoU < ``bg_iou``
    with every face) but lie on ignore regions (:func:`covered_by_ignore`).

    Args:
        proposals (list[Instances]): per image, ``proposal_boxes`` (R, 4), ...
        gt (list[Instances]): per image, ground truth with ``gt_ignore``.
        ioa (float): coverage above which a background proposal is dropped.
        bg_iou (float): Fast R-CNN's foreground IoU (``ROI_HEADS.IOU_THRESHOLDS``).
    Returns:
        (proposals kept, faces): per image; faces without the ignore regions.
    """
    kept, faces_out = [], []
    for props, g in zip(proposals, gt):
        faces, ignore = split_ignore(g)
        drop = covered_by_ignore(props.proposal_boxes, ignore, ioa)
        if len(faces) and drop.any():
            drop &= pairwise_iou(faces.gt_boxes, props.proposal_boxes).max(dim=0).values < bg_iou
        kept.append(props[~drop])
        faces_out.append(faces)
    return kept, faces_out
