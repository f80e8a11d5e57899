# Copyright (c) facecraft_d2 contributors.
"""
FaceCraft: the jointly trained x12/x24/x48 CNN cascade (Qin et al., CVPR 2016, sections
4.1-4.3) as a Detectron2 meta-architecture.

Training (``model.train()``): the input is a batch of 48x48 patches (a crop cache's
:class:`~facecraft_d2.data.CropCacheLoader`, or the online window sampler); the output is the
dict of the joint loss's terms (equation 6). Greedy ("separate") training is the same model
with only one branch's loss on and the earlier branches frozen.

Inference (``model.eval()``): the input is Detectron2's list of image dicts; each image goes
through the paper's test pipeline, :class:`~facecraft_d2.modeling.cascade.CascadeInference`
(which owns the ``MODEL.FACECRAFT.TEST.*`` settings), and comes out as
``{"instances": Instances}``.
"""
import torch
from torch import nn

from detectron2.config import configurable
from detectron2.modeling import META_ARCH_REGISTRY
from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances

from ...layers import cascade_box2box
from ..cascade import BRANCHES, CascadeInference, FaceCraftNet, branch_labels, branch_loss, threshold_masks

__all__ = ["FaceCraftCascade"]


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
        inference,
        box2box,
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
    ):
        """
        Args:
            net (FaceCraftNet): the three-branch network.
            inference (CascadeInference): the test pipeline and its settings.
            box2box (Box2BoxTransform): the box encoding of the regression targets (the
                training samples' targets are encoded with the same transform).
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
        """
        super().__init__()
        self.net, self.inference_pipeline, self.box2box = net, inference, box2box
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

    @classmethod
    def from_config(cls, cfg):
        fc = cfg.MODEL.FACECRAFT
        return {
            "net": FaceCraftNet(cfg),
            "inference": CascadeInference(cfg),
            "box2box": cascade_box2box(),
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
        }

    # the test settings most often changed at run time, on the inference pipeline
    min_face = property(lambda self: self.inference_pipeline.min_face,
                        lambda self, v: setattr(self.inference_pipeline, "min_face", v))
    crop_mode = property(lambda self: self.inference_pipeline.crop_mode,
                         lambda self, v: setattr(self.inference_pipeline, "crop_mode", v))
    # read-only: change test settings for a while through test_settings()
    test_thresholds = property(lambda self: self.inference_pipeline.score_thresholds)

    @property
    def device(self):
        return self.pixel_mean.device

    def train(self, mode=True):
        """
        Frozen branches stay in eval mode (no dropout) while the others train. The network's
        weights take the inference memory layout in eval mode and NCHW in training.
        """
        super().train(mode)
        fmt = torch.contiguous_format if mode else self.inference_pipeline.memory_format
        self.net.to(memory_format=fmt)
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

    def net_input(self, images):
        """(N, 3, H, W) BGR 0-255 -> normalized, in the inference memory layout."""
        return self.normalize(images).contiguous(memory_format=self.inference_pipeline.memory_format)

    def regress(self, boxes, deltas):
        """Apply (K, 4) normalized predicted offsets to (K, 4) XYXY boxes."""
        return self.box2box.apply_deltas(deltas * self.delta_std + self.delta_mean, boxes)

    _regress = regress  # older name

    def _crops(self, image, levels, boxes, size):
        return self.inference_pipeline.crops(image, levels, boxes, size)

    def forward(self, batched_inputs):
        """
        Args:
            batched_inputs: in training, a dict with "images" (N, 3, 48, 48) BGR patches,
                "ious" (N,), "deltas" (N, 4) raw regression targets and optionally "box_valid"
                (N,) bool (False: the patch trains no box regression); in inference, a list
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
        box_valid = batch.get("box_valid")
        box_valid = box_valid.to(self.device) if box_valid is not None else None
        out = self.net(images, upto=self.train_branches[-1])
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
                                   ohem_fraction=self.ohem_fraction, box_valid=box_valid)
            losses[f"loss_{b}_cls"] = self.loss_weights[b] * cls
            losses[f"loss_{b}_reg"] = self.loss_weights[b] * reg
        return losses

    # ------------------------------------------------------------------ inference
    def detect(self, images, trace=None):
        """
        The test pipeline on a list of (3, H, W) BGR images, 0-255 (uint8 or float).

        Args:
            trace (dict or None): if given, also filled from the same run with what x24 and
                x48 saw: ``trace["x12"]`` / ``trace["x24"]``, each as :meth:`propose` with that
                ``upto`` returns it (see :class:`CascadeInference`; for ``tools/stage_recall.py``).
        Returns:
            list[(boxes (K, 4) XYXY, scores (K,))], one per image, in the images' coordinates;
            ordinary tensors (the pipeline itself runs under ``torch.inference_mode``).
        """
        with torch.inference_mode():
            results = self.inference_pipeline(self, images, trace=trace)
        if trace is not None:
            trace.update({k: [(b.clone(), s.clone()) for b, s in v] for k, v in trace.items()})
        return [(b.clone(), s.clone()) for b, s in results]

    def test_settings(self, **values):
        """A context in which the test pipeline runs with some settings changed, e.g.
        ``score_thresholds`` or ``flip_stages`` (:meth:`CascadeInference.settings`)."""
        return self.inference_pipeline.settings(**values)

    def propose(self, images, upto):
        """
        The test pipeline stopped after stage ``upto`` ("x12" or "x24"; no final NMS): the
        boxes that the next stage would see, for hard-negative mining. Same output as
        :meth:`detect`.
        """
        if upto not in ("x12", "x24"):
            raise ValueError(f"propose() stops after 'x12' or 'x24', got {upto!r}")
        with torch.inference_mode():
            results = self.inference_pipeline(self, images, upto=upto)
        return [(b.clone(), s.clone()) for b, s in results]

    def inference(self, batched_inputs, do_postprocess=True):
        """Detectron2-style inference: list of input dicts -> list of {"instances": ...}."""
        images = [x["image"].to(self.device) for x in batched_inputs]  # uint8 or float
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
