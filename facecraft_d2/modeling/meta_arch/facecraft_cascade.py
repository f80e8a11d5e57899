# Copyright (c) facecraft_d2 contributors.
"""
FaceCraft: the jointly trained x12/x24/x48 CNN cascade (Qin et al., CVPR 2016, sections
4.1-4.3) as a Detectron2 meta-architecture.

Training (``model.train()``): the input is a batch of 48x48 patches from
:func:`facecraft_d2.data.build_cascade_train_loader`; the output is the dict of the joint
loss's terms (equation 6). Greedy ("separate") training is the same model with only one
branch's loss on and the earlier branches frozen.

Inference (``model.eval()``): the input is Detectron2's list of image dicts; each image goes
through the paper's test pipeline (image pyramid, x12 fully convolutional at stride 2,
score threshold, response-map max pooling, box regression, 24x24 crops into x12-x24,
48x48 crops into x12-x24-x48, final NMS) and comes out as ``{"instances": Instances}``.
"""
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import batched_nms

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances

from ..cascade import (
    BRANCHES,
    FaceCraftNet,
    branch_labels,
    branch_loss,
    crop_from_pyramid,
    crop_resized,
    dense_windows,
    pyramid_scales,
    resize_image,
    response_map_pool,
    square_boxes,
    suppress_contained,
    threshold_masks,
)

__all__ = ["FaceCraftCascade"]

_CROP_SIZES = {"x24": 24, "x48": 48}


@META_ARCH_REGISTRY.register()
class FaceCraftCascade(nn.Module):
    """
    The FaceCraft cascade. Buffers ``delta_mean`` / ``delta_std`` (4,) hold the statistics
    that normalize the regression targets; they are measured on the training data before
    training and saved with the weights.
    """

    @configurable
    def __init__(
        self,
        *,
        net,
        pixel_mean,
        pixel_std,
        pos_iou=(0.8, 0.7, 0.65),
        neg_iou=0.5,
        part_iou=1.0,
        ohem_fraction=1.0,
        train_thresholds=(0.1, 0.003),
        loss_weights=(1.0, 1.0, 1.0),
        reg_weight=1.0,
        smooth_l1_beta=1.0,
        train_branches=BRANCHES,
        frozen_branches=(),
        min_face=24,
        pyramid_factor=0.709,
        test_thresholds=(0.3, 0.1, 0.05),
        pool_kernel=2,
        crop_mode="accurate",
        max_proposals=2000,
        stage_nms_thresh=0.7,
        nms_thresh=0.3,
        containment_thresh=1.0,
        max_detections=750,
        channels_last=True,
    ):
        """
        Args:
            net (FaceCraftNet): the three-branch network.
            pixel_mean, pixel_std (list[float]): BGR normalization of the input pixels.
            pos_iou (tuple[float]): per branch, IoU above which a patch is a face.
            neg_iou (float): IoU below which a patch is background (all branches).
            part_iou (float): patches with IoU >= this that are not positives (part faces)
                train the box regression only (1.0: none).
            ohem_fraction (float): online hard example mining, the fraction of the valid
                patches with the highest classification loss that count (1.0: all).
            train_thresholds (tuple[float]): the threshold-control layers: face probability
                a patch needs after x12 (resp. x24) to count in x24's (resp. x48's) loss.
            loss_weights (tuple[float]): lambda_1..3 of the joint loss (equation 6).
            reg_weight (float): lambda of equation 1 (box regression vs classification).
            smooth_l1_beta (float): smooth-L1 transition point.
            train_branches (tuple[str]): branches whose losses are optimized.
            frozen_branches (tuple[str]): branches kept fixed (greedy training).
            min_face (float): smallest face searched at test time, pixels.
            pyramid_factor (float): scale ratio between pyramid levels.
            test_thresholds (tuple[float]): face probability to pass each test stage.
            pool_kernel (int): response-map max-pooling kernel (1 disables it).
            crop_mode (str): "accurate" (resize each box from the image), "fast" (resample it
                from the pyramid level just large enough) or "copy" (copy it from the
                nearest pyramid level without resampling, the paper's literal fast mode).
            max_proposals (int): at most this many stage-1 boxes per image (highest scores).
            stage_nms_thresh (float): NMS IoU applied per image to the boxes leaving stages
                x12 and x24, across pyramid levels (1.0 disables it; the paper relies on
                response-map pooling alone, which leaves overlapping boxes of nearby levels).
            nms_thresh (float): IoU of the final NMS.
            containment_thresh (float): after the final NMS, drop boxes lying inside a
                higher-scoring one by more than this fraction of their area (1.0 = off).
            max_detections (int): detections kept per image.
            channels_last (bool): run inference in the channels-last memory layout (same
                outputs, faster on CPUs).
        """
        super().__init__()
        self.net = net
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)
        self.register_buffer("delta_mean", torch.zeros(4))
        self.register_buffer("delta_std", torch.ones(4))
        self.register_buffer("delta_stats_ready", torch.tensor(False))
        self.pos_iou, self.neg_iou = tuple(pos_iou), neg_iou
        self.part_iou, self.ohem_fraction = part_iou, ohem_fraction
        self.train_thresholds = tuple(train_thresholds)
        self.loss_weights = dict(zip(BRANCHES, loss_weights))
        self.reg_weight, self.smooth_l1_beta = reg_weight, smooth_l1_beta
        unknown = (set(train_branches) | set(frozen_branches)) - set(BRANCHES)
        if unknown or not train_branches:
            raise ValueError(f"branches must be among {BRANCHES}, got {sorted(unknown)}")
        self.train_branches = tuple(b for b in BRANCHES if b in train_branches)
        self.frozen_branches = tuple(b for b in BRANCHES if b in frozen_branches)
        for b in self.frozen_branches:
            for m in self.net.branch_modules(b):
                m.requires_grad_(False)
        if crop_mode not in ("accurate", "fast", "copy"):
            raise ValueError(f"crop_mode must be 'accurate', 'fast' or 'copy', got {crop_mode!r}")
        self.min_face, self.pyramid_factor = min_face, pyramid_factor
        self.test_thresholds, self.pool_kernel = tuple(test_thresholds), pool_kernel
        self.crop_mode, self.max_proposals = crop_mode, max_proposals
        self.stage_nms_thresh = stage_nms_thresh
        self.nms_thresh, self.max_detections = nms_thresh, max_detections
        self.containment_thresh = containment_thresh
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.box2box = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))

    @classmethod
    def from_config(cls, cfg):
        fc = cfg.MODEL.FACECRAFT
        return {
            "net": FaceCraftNet(cfg),
            "pixel_mean": cfg.MODEL.PIXEL_MEAN,
            "pixel_std": cfg.MODEL.PIXEL_STD,
            "pos_iou": fc.POS_IOU,
            "neg_iou": fc.NEG_IOU,
            "part_iou": fc.PART_IOU,
            "ohem_fraction": fc.OHEM_FRACTION,
            "train_thresholds": fc.TRAIN_THRESHOLDS,
            "loss_weights": fc.LOSS_WEIGHTS,
            "reg_weight": fc.REG_LOSS_WEIGHT,
            "smooth_l1_beta": fc.SMOOTH_L1_BETA,
            "train_branches": fc.TRAIN_BRANCHES,
            "frozen_branches": fc.FROZEN_BRANCHES,
            "min_face": fc.TEST.MIN_FACE_SIZE,
            "pyramid_factor": fc.TEST.PYRAMID_FACTOR,
            "test_thresholds": fc.TEST.SCORE_THRESHOLDS,
            "pool_kernel": fc.TEST.POOL_KERNEL,
            "crop_mode": fc.TEST.CROP_MODE,
            "max_proposals": fc.TEST.MAX_PROPOSALS,
            "stage_nms_thresh": fc.TEST.STAGE_NMS_THRESH,
            "nms_thresh": fc.TEST.NMS_THRESH,
            "containment_thresh": fc.TEST.CONTAINMENT_THRESH,
            "max_detections": fc.TEST.DETECTIONS_PER_IMAGE,
            "channels_last": fc.TEST.CHANNELS_LAST,
        }

    @property
    def device(self):
        return self.pixel_mean.device

    def train(self, mode=True):
        """
        Frozen branches stay in eval mode (no dropout) while the others train. The network's
        weights take the inference memory layout in eval mode and NCHW in training.
        """
        super().train(mode)
        self.net.to(memory_format=torch.contiguous_format if mode else self.memory_format)
        for b in self.frozen_branches:
            for m in self.net.branch_modules(b):
                m.train(False)
        return self

    def set_delta_stats(self, mean, std):
        """Store the regression-target statistics (each (4,)) measured on the training data."""
        self.delta_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.delta_std.copy_(torch.as_tensor(std, dtype=torch.float32).clamp(min=1e-6))
        self.delta_stats_ready.fill_(True)

    def normalize(self, images):
        """(…, 3, H, W) BGR 0-255 -> mean removed, divided by the std."""
        return (images - self.pixel_mean) / self.pixel_std

    def _net_input(self, images):
        """(N, 3, H, W) BGR 0-255 -> normalized, in the inference memory layout."""
        return self.normalize(images).contiguous(memory_format=self.memory_format)

    def forward(self, batched_inputs):
        """
        Args:
            batched_inputs: in training, a dict with "images" (N, 3, 48, 48) BGR patches,
                "ious" (N,) and "deltas" (N, 4) raw regression targets; in inference, a list
                of dicts with "image" (3, H, W) and optionally "height", "width".
        Returns:
            training: dict of losses ``loss_<branch>_cls`` / ``loss_<branch>_reg``;
            inference: list of ``{"instances": Instances}`` in the requested output size.
        """
        if not self.training:
            return self.inference(batched_inputs)
        return self.losses(batched_inputs)

    def losses(self, batch):
        """The joint loss over ``train_branches`` (see :mod:`..cascade.losses`)."""
        images = self.normalize(batch["images"].to(self.device))
        ious = batch["ious"].to(self.device)
        targets = (batch["deltas"].to(self.device) - self.delta_mean) / self.delta_std
        upto = self.train_branches[-1]
        out = self.net(images, upto=upto)
        logits = {b: o[0] for b, o in out.items()}
        masks = threshold_masks(logits, list(out), self.train_thresholds)
        losses = {}
        for i, b in enumerate(BRANCHES):
            if b not in self.train_branches:
                continue
            labels = branch_labels(ious, self.pos_iou[i], self.neg_iou)
            cls, reg = branch_loss(out[b][0], out[b][1], labels, targets, masks[b],
                                   self.reg_weight, self.smooth_l1_beta,
                                   reg_mask=ious >= self.part_iou,
                                   ohem_fraction=self.ohem_fraction)
            losses[f"loss_{b}_cls"] = self.loss_weights[b] * cls
            losses[f"loss_{b}_reg"] = self.loss_weights[b] * reg
        return losses

    # ------------------------------------------------------------------ inference
    def _regress(self, boxes, deltas):
        return self.box2box.apply_deltas(deltas * self.delta_std + self.delta_mean, boxes)

    def _stage1(self, image):
        """x12 over the pyramid of one (3, H, W) image -> (levels, boxes (K, 4), scores (K,))."""
        h, w = image.shape[-2:]
        levels = [(s, resize_image(image, s)) for s in pyramid_scales(h, w, self.min_face, self.pyramid_factor)]
        boxes, deltas, scores = [], [], []
        for s, img in levels:
            if min(img.shape[-2:]) < 12:
                continue
            logits, reg = self.net.x12_dense(self._net_input(img[None]))
            prob = response_map_pool(F.softmax(logits, dim=1)[:, 1], self.pool_kernel)[0]
            ys, xs = torch.nonzero(prob >= self.test_thresholds[0], as_tuple=True)
            boxes.append(dense_windows(ys, xs, s))
            deltas.append(reg[0, :, ys, xs].t())
            scores.append(prob[ys, xs])
        if not boxes:
            return levels, image.new_zeros((0, 4)), image.new_zeros((0,))
        boxes, deltas, scores = torch.cat(boxes), torch.cat(deltas), torch.cat(scores)
        if len(scores) > self.max_proposals:
            keep = scores.topk(self.max_proposals).indices
            boxes, deltas, scores = boxes[keep], deltas[keep], scores[keep]
        return levels, self._regress(boxes, deltas), scores

    def _crops(self, image, levels, boxes, size):
        """
        (K, 3, size, size) crops of the (K, 4) square boxes of one image: "accurate" resizes
        each box from the image; "fast" resamples it from the pyramid level (or the image
        itself, scale 1) just large enough; "copy" copies size x size pixels from the level
        nearest in scale (the paper's literal fast mode). See :func:`crop_from_pyramid`.
        """
        if self.crop_mode == "accurate" or len(boxes) == 0:
            return crop_resized(image, boxes, size)
        if levels[0][0] < 1.0:
            levels = [(1.0, image)] + levels
        return crop_from_pyramid(levels, boxes, size, resample=self.crop_mode == "fast")

    def detect(self, images):
        """
        The test pipeline on a list of (3, H, W) float BGR images; stages 2 and 3 run on the
        crops of all images at once.

        Returns:
            list[(boxes (K, 4) XYXY, scores (K,))], one per image, in the images' coordinates;
            ordinary tensors (the pipeline itself runs under ``torch.inference_mode``).
        """
        with torch.inference_mode():
            results = self._detect(images)
        return [(b.clone(), s.clone()) for b, s in results]

    def propose(self, images, upto):
        """
        The test pipeline stopped after stage ``upto`` (no final NMS): the boxes that the
        next stage would see, for hard-negative mining.

        Args:
            images (list[Tensor]): (3, H, W) float BGR images.
            upto (str): "x12" or "x24".
        Returns:
            list[(boxes (K, 4) XYXY, scores (K,))], one per image, in image coordinates.
        """
        if upto not in ("x12", "x24"):
            raise ValueError(f"propose() stops after 'x12' or 'x24', got {upto!r}")
        with torch.inference_mode():
            results = self._detect(images, upto=upto)
        return [(b.clone(), s.clone()) for b, s in results]

    def _detect(self, images, upto=None):
        per_image = [self._stage1(img) for img in images]
        levels = [p[0] for p in per_image]
        boxes = torch.cat([p[1] for p in per_image])
        scores = torch.cat([p[2] for p in per_image])
        owner = torch.cat([torch.full((len(p[1]),), i, dtype=torch.long, device=boxes.device)
                           for i, p in enumerate(per_image)])
        for stage, thresh in zip(("x24", "x48"), self.test_thresholds[1:]):
            if self.stage_nms_thresh < 1.0:
                keep = batched_nms(boxes, scores, owner, self.stage_nms_thresh)
                keep = keep.sort().values  # keep boxes grouped by image
                boxes, scores, owner = boxes[keep], scores[keep], owner[keep]
            if upto is not None and BRANCHES.index(stage) > BRANCHES.index(upto):
                break  # what the next stage would see: mined by propose()
            if len(boxes) == 0:
                break
            boxes = square_boxes(boxes)
            size = _CROP_SIZES[stage]
            # boxes stay grouped by image (owner is sorted), so the crops line up with them
            crops = torch.cat([
                self._crops(images[i], levels[i], boxes[owner == i], size)
                for i in range(len(images))
            ])
            logits, deltas = self.net(self._net_input(crops), upto=stage)[stage]
            prob = F.softmax(logits, dim=1)[:, 1]
            keep = prob >= thresh
            boxes = self._regress(boxes[keep], deltas[keep])
            scores, owner = prob[keep], owner[keep]
        results = []
        for i, img in enumerate(images):
            sel = owner == i
            b, s = boxes[sel], scores[sel]
            h, w = img.shape[-2:]
            b = torch.stack([b[:, 0].clamp(0, w), b[:, 1].clamp(0, h), b[:, 2].clamp(0, w),
                             b[:, 3].clamp(0, h)], dim=1)
            valid = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1])
            b, s = b[valid], s[valid]
            if upto is not None:
                results.append((b, s))
                continue
            keep = batched_nms(b, s, torch.zeros_like(s, dtype=torch.long), self.nms_thresh)
            keep = keep[suppress_contained(b[keep], s[keep], self.containment_thresh)]
            keep = keep[: self.max_detections]
            results.append((b[keep], s[keep]))
        return results

    def inference(self, batched_inputs, do_postprocess=True):
        """Detectron2-style inference: list of input dicts -> list of {"instances": ...}."""
        images = [x["image"].to(self.device).float() for x in batched_inputs]
        outputs = []
        for x, img, (boxes, scores) in zip(batched_inputs, images, self.detect(images)):
            inst = Instances(tuple(img.shape[-2:]))
            inst.pred_boxes = Boxes(boxes)
            inst.scores = scores
            inst.pred_classes = torch.zeros_like(scores, dtype=torch.long)
            if do_postprocess:
                h, w = x.get("height", img.shape[-2]), x.get("width", img.shape[-1])
                inst = detector_postprocess(inst, h, w)
            outputs.append({"instances": inst})
        return outputs
