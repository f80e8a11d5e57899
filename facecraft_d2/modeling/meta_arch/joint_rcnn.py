# Copyright (c) facecraft_d2 contributors.
"""
Jointly trained RPN + Fast R-CNN (FaceCraft, Qin et al., CVPR 2016, section 5) as a
Detectron2 meta-architecture.

One network: shared conv layers (any registered backbone: ZF, ResNet, ...) feed two sibling
branches, Detectron2's RPN and a RoI-pooling Fast R-CNN head (``StandardROIHeads``). In
training, the Fast R-CNN branch's input RoIs are the proposals that the trained RPN produced
on the training images beforehand (``batched_inputs[i]["proposals"]``, loaded by
``DatasetMapper`` when ``MODEL.LOAD_PROPOSALS`` is on), while the RPN branch sees the usual
ground truth; both losses are fused as in the cascade's joint loss (equation 6):

    L = lambda_rpn * (L_rpn_cls + L_rpn_loc) + lambda_frcnn * (L_cls + L_box_reg)

Every step of both training procedures is this model with a subset of the branches trained
and of the parts frozen (``MODEL.JOINT_RCNN``):

* two-step (joint): RPN only, then both branches from the RPN model;
* four-step (Ren et al.): RPN only; Fast R-CNN only; RPN only with the shared convs frozen;
  Fast R-CNN only with the shared convs and the RPN frozen.

Ground truth with ignore regions (``gt_ignore``, ``MODEL.IGNORE_REGIONS``) needs the
``IgnoreRegionRPN``; the Fast R-CNN branch then drops the background proposals that lie on
ignore regions and matches the rest to the faces only.

Inference is :meth:`GeneralizedRCNN.inference` (the RPN's own proposals feed the RoI head),
made independent of the batch: images are never padded to another image's size (see
:meth:`JointRCNN.inference`).
"""
import logging

import torch

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY, GeneralizedRCNN

from ..ignore_regions import drop_ignored_proposals
from ..proposal_generator import IgnoreRegionRPN

__all__ = ["JointRCNN", "RCNN_BRANCHES", "PARTS", "group_by_padded_size"]

logger = logging.getLogger(__name__)

RCNN_BRANCHES = ("rpn", "frcnn")
"""Names of the two branches, in the order of ``MODEL.JOINT_RCNN.LOSS_WEIGHTS``."""
PARTS = ("backbone", "proposal_generator", "roi_heads")
"""Sub-modules that ``MODEL.JOINT_RCNN.FROZEN`` may name."""


def group_by_padded_size(batched_inputs, size_divisibility=0):
    """
    Split a batch into groups whose images have the same padded size, i.e. the size that
    :meth:`ImageList.from_tensors` gives each image alone (its own size rounded up to
    ``size_divisibility``). Each group runs as a batch with exactly the padding that each of its
    images gets at batch size 1.

    Args:
        batched_inputs (list[dict]): each with "image" (C, H, W).
        size_divisibility (int): the backbone's ``size_divisibility`` (0 or 1: none).
    Returns:
        list[list[int]]: indices into ``batched_inputs``, in order of first appearance.
    """
    d = max(int(size_divisibility), 1)
    groups = {}
    for i, x in enumerate(batched_inputs):
        h, w = x["image"].shape[-2:]
        groups.setdefault((-(-h // d) * d, -(-w // d) * d), []).append(i)
    return list(groups.values())


@META_ARCH_REGISTRY.register()
class JointRCNN(GeneralizedRCNN):
    """
    :class:`GeneralizedRCNN` whose Fast R-CNN branch trains on precomputed RPN proposals,
    with one weighted joint loss, optional per-branch training and frozen parts.
    """

    @configurable
    def __init__(self, *, train_branches=RCNN_BRANCHES, frozen=(), loss_weights=(1.0, 1.0),
                 ignore_ioa=0.5, **kwargs):
        """
        NOTE: this interface is experimental.

        Args:
            train_branches (sequence[str]): branches whose losses are computed in training,
                among :data:`RCNN_BRANCHES` ("rpn", "frcnn").
            frozen (sequence[str]): parts whose parameters are fixed, among :data:`PARTS`.
            loss_weights (sequence[float]): (lambda_rpn, lambda_frcnn) of the joint loss.
            ignore_ioa (float): Fast R-CNN background proposals covered by ignore regions over
                more than this fraction of their area are not trained on.
            kwargs: arguments of :class:`GeneralizedRCNN` (backbone, proposal_generator,
                roi_heads, pixel_mean, pixel_std, ...).
        """
        super().__init__(**kwargs)
        unknown = (set(train_branches) - set(RCNN_BRANCHES)) | (set(frozen) - set(PARTS))
        if unknown or not train_branches:
            raise ValueError(
                f"JointRCNN: train_branches must be a non-empty subset of {RCNN_BRANCHES} and "
                f"frozen a subset of {PARTS}; got {list(train_branches)} / {list(frozen)}"
            )
        if len(loss_weights) != len(RCNN_BRANCHES):
            raise ValueError(f"JointRCNN: loss_weights needs {len(RCNN_BRANCHES)} values, got {loss_weights}")
        if self.proposal_generator is None:
            raise ValueError("JointRCNN needs an RPN (MODEL.PROPOSAL_GENERATOR.NAME)")
        self.train_branches = tuple(train_branches)
        self.frozen = tuple(frozen)
        self.loss_weights = dict(zip(RCNN_BRANCHES, (float(w) for w in loss_weights)))
        self.ignore_ioa = float(ignore_ioa)
        for part in self.frozen:
            for p in getattr(self, part).parameters():
                p.requires_grad_(False)

    @classmethod
    def from_config(cls, cfg):
        ret = super().from_config(cfg)
        jc = cfg.MODEL.JOINT_RCNN
        ret.update(
            train_branches=tuple(jc.TRAIN_BRANCHES),
            frozen=tuple(jc.FROZEN),
            loss_weights=tuple(jc.LOSS_WEIGHTS),
            ignore_ioa=cfg.MODEL.IGNORE_REGIONS.IOA,
        )
        return ret

    def forward(self, batched_inputs):
        """
        Args:
            batched_inputs (list[dict]): outputs of :class:`DatasetMapper`; in training each
                has "image" (C, H, W), "instances" (ground truth) and, when the Fast R-CNN
                branch trains, "proposals" (Instances with ``proposal_boxes`` (R, 4) and
                ``objectness_logits`` (R,), in the coordinates of "image").
        Returns:
            training: dict[str, Tensor] of the weighted losses, ``loss_rpn_cls``,
            ``loss_rpn_loc`` ("rpn") and ``loss_cls``, ``loss_box_reg`` ("frcnn");
            inference: see :meth:`GeneralizedRCNN.inference`.
        """
        if not self.training:
            return self.inference(batched_inputs)
        images = self.preprocess_image(batched_inputs)
        gt_instances = [x["instances"].to(self.device) for x in batched_inputs]
        with_ignore = gt_instances[0].has("gt_ignore")
        if with_ignore and not isinstance(self.proposal_generator, IgnoreRegionRPN):
            raise ValueError("ground truth with ignore regions (MODEL.IGNORE_REGIONS.ENABLED) "
                             "needs MODEL.PROPOSAL_GENERATOR.NAME 'IgnoreRegionRPN'")
        with torch.set_grad_enabled("backbone" not in self.frozen):
            features = self.backbone(images.tensor)

        losses = {}
        if "rpn" in self.train_branches:
            _, rpn_losses = self.proposal_generator(images, features, gt_instances)
            losses.update({k: self.loss_weights["rpn"] * v for k, v in rpn_losses.items()})
        if "frcnn" in self.train_branches:
            if "proposals" not in batched_inputs[0]:
                raise ValueError(
                    "JointRCNN trains its Fast R-CNN branch on precomputed RPN proposals: set "
                    "MODEL.LOAD_PROPOSALS True and DATASETS.PROPOSAL_FILES_TRAIN "
                    "(see tools/dump_proposals.py)"
                )
            proposals = [x["proposals"].to(self.device) for x in batched_inputs]
            if with_ignore:
                bg_iou = self.roi_heads.proposal_matcher.thresholds[1]
                proposals, gt_instances = drop_ignored_proposals(proposals, gt_instances,
                                                                 self.ignore_ioa, bg_iou)
            _, det_losses = self.roi_heads(images, features, proposals, gt_instances)
            losses.update({k: self.loss_weights["frcnn"] * v for k, v in det_losses.items()})
        return losses

    def inference(self, batched_inputs, detected_instances=None, do_postprocess=True):
        """
        :meth:`GeneralizedRCNN.inference`, run on each group of :func:`group_by_padded_size`,
        so that an image's detections do not depend on the other images of the batch.

        Padding an image to the largest one of a mixed-size batch changes its detections, for
        two reasons. (1) The padding (0 after normalization) goes through the backbone as
        image content: conv1 turns it into ReLU(bias) != 0, so conv2..conv5 and the max pools
        at the image's right / bottom border see non-zero activations where the image alone
        has zero (conv) or -inf (pool) padding; the last 4 conv5 cells (64 px) of the image
        change (ZF). (2) The RPN places anchors on the padded cells; their proposals, clipped
        into the image, take top-k and NMS slots and become detections. Images of the same
        padded size still run as one batch (exactly the padding of batch size 1).

        Args:
            batched_inputs (list[dict]): as :meth:`GeneralizedRCNN.inference`, each with
                "image" (C, H, W) and optionally "height", "width".
            detected_instances (None or list[Instances]): as
                :meth:`GeneralizedRCNN.inference`.
            do_postprocess (bool): as :meth:`GeneralizedRCNN.inference`.
        Returns:
            list: one result per input, in the order of ``batched_inputs`` (dict with
            "instances" if ``do_postprocess``, else Instances).
        """
        groups = group_by_padded_size(batched_inputs, self.backbone.size_divisibility)
        if len(groups) == 1:
            return super().inference(batched_inputs, detected_instances, do_postprocess)
        results = [None] * len(batched_inputs)
        for idx in groups:
            outputs = super().inference(
                [batched_inputs[i] for i in idx],
                None if detected_instances is None else [detected_instances[i] for i in idx],
                do_postprocess,
            )
            for i, out in zip(idx, outputs):
                results[i] = out
        return results
