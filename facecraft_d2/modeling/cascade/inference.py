# Copyright (c) facecraft_d2 contributors.
"""
The FaceCraft test pipeline (paper sections 4.3 and 6.5) as a component of its own, which owns
the ``MODEL.FACECRAFT.TEST.*`` settings the way Detectron2's RPN owns its NMS settings:

1. an image pyramid from the smallest face searched, x12 fully convolutional at stride 2 on
   each level (all levels in one call, packed into one mosaic image), score threshold,
   response-map max pooling within each level, box regression;
2. NMS across levels, squares, 24 x 24 crops into x12-x24, threshold, regression;
3. NMS, squares, 48 x 48 crops into x12-x24-x48, threshold, regression;
4. final NMS (and optionally dropping boxes nested in higher-scoring ones).

It runs a :class:`FaceCraftCascade`'s network through three methods of the model:
``model.net`` (:class:`FaceCraftNet`), ``model.net_input(images)`` (normalization, memory
layout) and ``model.regress(boxes, deltas)`` (decoding with the stored target statistics).
"""
import contextlib

import torch
import torch.nn.functional as F
from torchvision.ops import batched_nms

from detectron2.config import configurable
from detectron2.structures import Boxes

from ...layers import crop_from_pyramid, crop_resized
from .network import BRANCHES, STAGE_INPUT_SIZES
from .pyramid import (
    dense_windows,
    image_pyramid,
    pyramid_mosaic,
    pyramid_scales,
    response_map_pool,
    square_boxes,
    suppress_contained,
    vote_boxes,
)

__all__ = ["CascadeInference"]

CROP_MODES = ("accurate", "fast", "copy")


class CascadeInference:
    """``inference(model, images, upto=None)`` -> per image (boxes (K, 4) XYXY, scores (K,))."""

    @configurable
    def __init__(self, *, min_face=24, pyramid_factor=0.709, score_thresholds=(0.5, 0.5, 0.7),
                 pool_kernel=2, crop_mode="accurate", max_proposals=2000, stage_nms_thresh=0.7,
                 nms_thresh=0.3, box_voting_thresh=1.0, containment_thresh=1.0,
                 max_detections=750, channels_last=True,
                 x12_mosaic=True, score_stages=("x48",), flip_stages=(), pyramid_uint8=False,
                 bfloat16=False):
        """
        Args:
            min_face (float): smallest face searched, pixels.
            pyramid_factor (float): scale ratio between pyramid levels.
            pyramid_uint8 (bool): resize the pyramid levels as 8-bit images (see
                :func:`image_pyramid`).
            score_thresholds (tuple[float]): face probability to pass x12, x24 and x48.
            pool_kernel (int): response-map max-pooling kernel (1 disables it).
            crop_mode (str): "accurate" (each box resampled from an octave pyramid of the
                image, as the training crops), "fast" (from the test pyramid's level just
                large enough) or "copy" (copied from the nearest level without resampling,
                the paper's literal fast mode).
            max_proposals (int): at most this many stage-1 boxes per image (highest scores).
            stage_nms_thresh (float): NMS IoU over the boxes leaving x12 and x24, across
                pyramid levels (1.0 disables it; the paper relies on the pooling alone).
            nms_thresh (float): IoU of the final NMS.
            box_voting_thresh (float): after the final NMS, each kept box becomes the
                score-weighted mean of the boxes overlapping it at this IoU or more
                (:func:`vote_boxes`; above 1.0 or 1.0: off).
            containment_thresh (float): after the final NMS, drop boxes lying inside a
                higher-scoring one by more than this fraction of their area (1.0 = off).
            max_detections (int): detections kept per image.
            channels_last (bool): run the convs in the channels-last layout (faster on CPUs).
            x12_mosaic (bool): run x12 once per image on all pyramid levels packed into one
                image, instead of once per level (same windows; the same scores bit for bit
                where the convolution's rounding does not depend on the image size, as
                channels-last on CPU).
            score_stages (tuple[str]): the stages whose face probabilities give a detection's
                final score (their geometric mean; ("x48",): x48's alone). Mining (``upto``)
                always uses the last stage's probability.
            flip_stages (tuple[str]): later stages ("x24", "x48") whose face probability is
                the mean over each crop and its mirror image (one more forward pass of that
                stage; boxes are regressed from the crop itself).
            bfloat16 (bool): run the networks' convolutions and fully connected layers in
                bfloat16 (``torch.autocast``; on CPUs), scores and boxes in float32.
        """
        if any(b not in BRANCHES[1:] for b in flip_stages):
            raise ValueError(f"flip_stages must name stages among {BRANCHES[1:]}, got {flip_stages!r}")
        if not score_stages or any(b not in BRANCHES for b in score_stages):
            raise ValueError(f"score_stages must name stages among {BRANCHES}, got {score_stages!r}")
        if crop_mode not in CROP_MODES:
            raise ValueError(f"crop_mode must be one of {CROP_MODES}, got {crop_mode!r}")
        self.min_face, self.pyramid_factor = min_face, pyramid_factor
        self.pyramid_uint8 = bool(pyramid_uint8)
        self.score_thresholds, self.pool_kernel = tuple(score_thresholds), pool_kernel
        self.crop_mode, self.max_proposals = crop_mode, max_proposals
        self.stage_nms_thresh, self.nms_thresh = stage_nms_thresh, nms_thresh
        self.box_voting_thresh = box_voting_thresh
        self.containment_thresh, self.max_detections = containment_thresh, max_detections
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self.x12_mosaic, self.score_stages = x12_mosaic, tuple(score_stages)
        self.flip_stages = tuple(flip_stages)
        self.bfloat16 = bool(bfloat16)

    @contextlib.contextmanager
    def settings(self, **values):
        """
        Run with some settings changed, e.g. ``with pipeline.settings(flip_stages=()):``;
        they are restored on exit. Keys are this object's attributes (constructor names,
        tuples for sequences).
        """
        unknown = [k for k in values if not hasattr(self, k)]
        if unknown:
            raise AttributeError(f"CascadeInference has no settings {unknown}")
        before = {k: getattr(self, k) for k in values}
        for k, v in values.items():
            setattr(self, k, tuple(v) if isinstance(v, list) else v)
        try:
            yield self
        finally:
            for k, v in before.items():
                setattr(self, k, v)

    @classmethod
    def from_config(cls, cfg):
        t = cfg.MODEL.FACECRAFT.TEST
        return {
            "min_face": t.MIN_FACE_SIZE,
            "pyramid_factor": t.PYRAMID_FACTOR,
            "pyramid_uint8": t.PYRAMID_UINT8,
            "score_thresholds": t.SCORE_THRESHOLDS,
            "pool_kernel": t.POOL_KERNEL,
            "crop_mode": t.CROP_MODE,
            "max_proposals": t.MAX_PROPOSALS,
            "stage_nms_thresh": t.STAGE_NMS_THRESH,
            "nms_thresh": t.NMS_THRESH,
            "box_voting_thresh": t.BOX_VOTING_THRESH,
            "containment_thresh": t.CONTAINMENT_THRESH,
            "max_detections": t.DETECTIONS_PER_IMAGE,
            "channels_last": t.CHANNELS_LAST,
            "x12_mosaic": t.X12_MOSAIC,
            "score_stages": t.SCORE_STAGES,
            "flip_stages": t.FLIP_STAGES,
            "bfloat16": t.BFLOAT16,
        }

    def _run_net(self, fn, *args, **kwargs):
        """A network call, in bfloat16 autocast if set; its tensors back in float32."""
        if not self.bfloat16:  # the default: no context, no conversions on the hot path
            return fn(*args, **kwargs)
        device = args[0].device.type
        with torch.autocast(device, dtype=torch.bfloat16):
            out = fn(*args, **kwargs)
        if isinstance(out, dict):
            return {k: tuple(t.float() for t in v) for k, v in out.items()}
        return tuple(t.float() for t in out)

    def stage1(self, model, image):
        """
        x12 over the pyramid of one (3, H, W) image (uint8 or float, 0-255), then the score
        threshold, response-map pooling within each level and at most ``max_proposals``
        regressed windows.

        Returns:
            tuple: (levels: list of (scale, (3, h, w) float image), boxes (K, 4), scores (K,)).
        """
        h, w = image.shape[-2:]
        scales = pyramid_scales(h, w, self.min_face, self.pyramid_factor)
        levels = image_pyramid(image, scales, uint8=self.pyramid_uint8)
        searched = [(s, img) for s, img in levels if min(img.shape[-2:]) >= 12]
        if not searched:
            empty = image.new_zeros((0, 4), dtype=torch.float32)
            return levels, empty, empty[:, 0]
        x12 = self._x12_mosaic if self.x12_mosaic else self._x12_per_level
        boxes, deltas, scores = x12(model, searched)
        if len(scores) > self.max_proposals:
            keep = scores.topk(self.max_proposals).indices
            boxes, deltas, scores = boxes[keep], deltas[keep], scores[keep]
        return levels, model.regress(boxes, deltas), scores

    def _x12_per_level(self, model, levels):
        """One x12 call per level -> windows (K, 4), deltas (K, 4), scores (K,)."""
        boxes, deltas, scores = [], [], []
        for s, img in levels:
            logits, reg = self._run_net(model.net.x12_dense, model.net_input(img[None]))
            prob = response_map_pool(F.softmax(logits, dim=1)[:, 1], self.pool_kernel)[0]
            ys, xs = torch.nonzero(prob >= self.score_thresholds[0], as_tuple=True)
            boxes.append(dense_windows(ys, xs, s))
            deltas.append(reg[0, :, ys, xs].t())
            scores.append(prob[ys, xs])
        return torch.cat(boxes), torch.cat(deltas), torch.cat(scores)

    def _x12_mosaic(self, model, levels):
        """
        One x12 call on the levels packed into one image (:class:`PyramidMosaic`, its layout
        cached per image size), each level's part of the dense map giving its windows: the
        output of :meth:`_x12_per_level`, in the same order.
        """
        mosaic = pyramid_mosaic(tuple(s for s, _ in levels),
                                tuple(tuple(img.shape[-2:]) for _, img in levels),
                                self.pool_kernel, levels[0][1].device)
        image = mosaic.paste([img for _, img in levels])
        logits, reg = self._run_net(model.net.x12_dense, model.net_input(image[None]))
        prob = logits.new_zeros(logits.shape[-2:])  # 0 (neutral to pooling) off the levels
        for y, x, mh, mw in mosaic.map_boxes:  # softmax per level: its rounding depends on size
            prob[y: y + mh, x: x + mw] = F.softmax(logits[:, :, y: y + mh, x: x + mw], dim=1)[0, 1]
        prob = response_map_pool(prob[None], self.pool_kernel)[0]
        ys, xs, boxes = mosaic.windows((prob >= self.score_thresholds[0]) & mosaic.valid)
        return boxes, reg[0, :, ys, xs].t(), prob[ys, xs]

    def crops(self, image, levels, boxes, size):
        """
        (K, 3, size, size) crops of the (K, 4) square boxes of one image in the crop mode
        (see :mod:`facecraft_d2.layers.crops`; "accurate" is the training samples' crop).
        """
        if len(boxes) == 0:
            return image.new_zeros((0, image.shape[0], size, size))
        if self.crop_mode == "accurate":
            return crop_resized(image, boxes, size)
        if levels[0][0] < 1.0:
            levels = [(1.0, image)] + levels
        return crop_from_pyramid(levels, boxes, size, resample=self.crop_mode == "fast")

    def __call__(self, model, images, upto=None, with_probs=False, trace=None):
        """
        Args:
            model (FaceCraftCascade): gives ``net``, ``net_input`` and ``regress``.
            images (list[Tensor]): (3, H, W) BGR images, 0-255, uint8 (a decoded photo: the
                pyramid needs no rounding) or float; stages 2 and 3 run on the crops of all
                images at once.
            upto (str): stop after this stage ("x12" or "x24"), before its squares are
                cropped for the next one and without the final NMS (hard-negative mining);
                None: the whole pipeline.
            with_probs (bool): also return each detection's face probability at every stage
                it passed (for score diagnostics: ``tools/rescore_heldout.py``).
            trace (dict or None): if given, filled with what each later stage saw, from the
                same run: ``trace["x12"]`` and ``trace["x24"]`` are lists, one per image, of
                (boxes (K, 4), scores (K,)) as :meth:`__call__` returns with that ``upto``
                (a key is absent when no box was left for its stage).
        Returns:
            list[(boxes (K, 4) XYXY, scores (K,))], one per image, in its coordinates; with
            ``with_probs``, list[(boxes, scores, probs (K, S))], S the stages run.
        """
        per_image = [self.stage1(model, img) for img in images]
        images = [img.float() for img in images]  # the crops' source
        levels = [p[0] for p in per_image]
        boxes = torch.cat([p[1] for p in per_image])
        probs = torch.cat([p[2] for p in per_image])[:, None]  # (K, stages run): each stage's
        owner = torch.cat([torch.full((len(p[1]),), i, dtype=torch.long, device=boxes.device)
                           for i, p in enumerate(per_image)])
        for stage, thresh in zip(BRANCHES[1:], self.score_thresholds[1:]):
            if self.stage_nms_thresh < 1.0:
                keep = batched_nms(boxes, probs[:, -1], owner, self.stage_nms_thresh)
                keep = keep.sort().values  # keep boxes grouped by image
                boxes, probs, owner = boxes[keep], probs[keep], owner[keep]
            if trace is not None:  # what this stage sees: the output with upto = the one before
                trace[BRANCHES[BRANCHES.index(stage) - 1]] = [
                    (b, p[:, -1]) for b, p in self._per_image(images, owner, boxes, probs)]
            if upto is not None and BRANCHES.index(stage) > BRANCHES.index(upto):
                break  # what the next stage would see
            if len(boxes) == 0:
                break
            boxes = square_boxes(boxes)
            size = STAGE_INPUT_SIZES[stage]
            # boxes stay grouped by image (owner is sorted), so the crops line up with them
            crops = torch.cat([self.crops(images[i], levels[i], boxes[owner == i], size)
                               for i in range(len(images))])
            inputs = model.net_input(crops)
            logits, deltas = self._run_net(model.net, inputs, upto=stage)[stage]
            prob = F.softmax(logits, dim=1)[:, 1]
            if stage in self.flip_stages:  # mean with the mirror image's face probability
                mirrored = self._run_net(model.net, inputs.flip(-1), upto=stage)[stage][0]
                prob = (prob + F.softmax(mirrored, dim=1)[:, 1]) / 2
            keep = prob >= thresh
            boxes = model.regress(boxes[keep], deltas[keep])
            probs, owner = torch.cat([probs[keep], prob[keep, None]], dim=1), owner[keep]
        scores = probs[:, -1] if upto is not None else self.final_scores(probs)
        results = []
        for b, s, p in self._per_image(images, owner, boxes, scores, probs):
            if upto is None:
                keep = batched_nms(b, s, torch.zeros_like(s, dtype=torch.long), self.nms_thresh)
                kept = b[keep]
                if self.box_voting_thresh < 1.0:
                    kept = vote_boxes(kept, b, s, self.box_voting_thresh)
                inside = suppress_contained(kept, s[keep], self.containment_thresh)
                keep, kept = keep[inside][: self.max_detections], kept[inside][: self.max_detections]
                b, s, p = kept, s[keep], p[keep]
            results.append((b, s, p) if with_probs else (b, s))
        return results

    @staticmethod
    def _per_image(images, owner, boxes, *columns):
        """
        Split the boxes of all images (K, 4), their ``owner`` (K,) and per-box ``columns``
        (K, ...) by image: a list of (boxes clipped to the image, without the empty ones, and
        the same rows of each column).
        """
        out = []
        for i, img in enumerate(images):
            mine = owner == i
            b = Boxes(boxes[mine])
            b.clip(tuple(img.shape[-2:]))
            valid = b.nonempty(threshold=0.0)
            out.append((b.tensor[valid], *[c[mine][valid] for c in columns]))
        return out

    def final_scores(self, probs):
        """
        Args:
            probs (Tensor): (K, S) face probability of each box at each of the S stages it
                passed (S = 3 unless no box reached x48).
        Returns:
            Tensor: (K,) the geometric mean of the probabilities of ``score_stages``.
        """
        if probs.shape[1] < len(BRANCHES):
            return probs[:, -1]  # no box went through every stage (then K = 0)
        cols = [BRANCHES.index(b) for b in self.score_stages]
        return probs[:, cols].clamp(min=1e-12).log().mean(dim=1).exp()
