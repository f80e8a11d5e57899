# Copyright (c) facecraft_d2 contributors.
"""detectron2's RPN with ignore regions (see :mod:`facecraft_d2.modeling.ignore_regions`)."""
from typing import List

import torch

from detectron2.config import configurable
from detectron2.modeling import PROPOSAL_GENERATOR_REGISTRY
from detectron2.modeling.proposal_generator.rpn import RPN
from detectron2.structures import Boxes, Instances, pairwise_iou

from ...layers import covered_by_ignore
from ..ignore_regions import split_ignore

__all__ = ["IgnoreRegionRPN"]


@PROPOSAL_GENERATOR_REGISTRY.register()
class IgnoreRegionRPN(RPN):
    """
    :class:`RPN` whose anchors are matched to the faces of the ground truth only (not to the
    boxes flagged ``gt_ignore``), and whose background anchors on ignore regions (covered over
    more than ``ignore_ioa`` of their area) are labelled -1, i.e. never sampled. Ground truth
    without ``gt_ignore`` trains exactly as :class:`RPN`.
    """

    @configurable
    def __init__(self, *, ignore_ioa: float = 0.5, **kwargs):
        """
        Args:
            ignore_ioa (float): see the class docstring.
            kwargs: arguments of :class:`RPN`.
        """
        super().__init__(**kwargs)
        self.ignore_ioa = float(ignore_ioa)

    @classmethod
    def from_config(cls, cfg, input_shape):
        ret = super().from_config(cfg, input_shape)
        ret["ignore_ioa"] = cfg.MODEL.IGNORE_REGIONS.IOA
        return ret

    @torch.no_grad()
    def label_and_sample_anchors(self, anchors: List[Boxes], gt_instances: List[Instances]):
        """
        As :meth:`RPN.label_and_sample_anchors`: per image, (R,) labels in {-1, 0, 1} over
        all R anchors and the (R, 4) matched face boxes.
        """
        anchors = Boxes.cat(anchors)
        gt_labels, matched_gt_boxes = [], []
        for gt in gt_instances:
            faces, ignore = split_ignore(gt)
            boxes = faces.gt_boxes
            matched_idxs, labels = self.anchor_matcher(pairwise_iou(boxes, anchors))
            labels = labels.to(device=boxes.device)
            if self.anchor_boundary_thresh >= 0:
                labels[~anchors.inside_box(gt.image_size, self.anchor_boundary_thresh)] = -1
            labels[(labels == 0) & covered_by_ignore(anchors, ignore, self.ignore_ioa)] = -1
            gt_labels.append(self._subsample_labels(labels))
            matched_gt_boxes.append(boxes[matched_idxs].tensor if len(boxes)
                                    else torch.zeros_like(anchors.tensor))
        return gt_labels, matched_gt_boxes
