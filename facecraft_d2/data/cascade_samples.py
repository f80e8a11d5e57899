# Copyright (c) facecraft_d2 contributors.
"""
Training-sample categories of the FaceCraft cascade and the candidate boxes they come from.

A training sample is a square box of a training image, cut to the network's 48 x 48 input by
:func:`facecraft_d2.layers.crop_resized` (the crop the test pipeline uses). Its category is
set by its best IoU with the image's faces, in bands, as the detectors that reach MTCNN's
accuracy do (Zhang et al. 2016):

=============  ==========================  =========================================
category       IoU band                    trains
=============  ==========================  =========================================
``POSITIVE``   ``iou >= pos_iou`` (0.65)   face classification and box regression
``PART``       ``part_iou <= iou < pos``   box regression only (part faces, loose boxes)
``NEGATIVE``   ``iou < neg_iou`` (0.3)     face classification (background)
``IGNORED``    ``neg_iou <= iou < part``   nothing: too ambiguous to be either
=============  ==========================  =========================================

Candidates (:func:`candidate_boxes`) are random squares anywhere in the image (almost all
negatives), squares jittered around each usable face (positives and parts: small shifts
and scale changes) and squares near each face (its parts, its neighbourhood: hard
negatives). Mined boxes (:mod:`facecraft_d2.engine.hard_negatives`) are labelled by the same
:func:`label_boxes`. Faces too small to learn from, and crowd regions, are *ignore regions*:
a negative may cover them with at most ``ignore_ioa`` of its own area.
"""
import math
from typing import Dict

import torch

from detectron2.structures import Boxes, BoxMode, pairwise_iou

from ..layers import covered_by_ignore

__all__ = [
    "POSITIVE",
    "PART",
    "NEGATIVE",
    "IGNORED",
    "categorize",
    "faces_and_ignore",
    "candidate_boxes",
    "label_boxes",
    "inside_image",
]

POSITIVE, PART, NEGATIVE, IGNORED = 2, 1, 0, -1


def categorize(ious, pos_iou=0.65, part_iou=0.4, neg_iou=0.3):
    """
    Args:
        ious (Tensor): (N,) best IoU of each sample with a face.
        pos_iou, part_iou, neg_iou (float): the band edges, ``neg_iou <= part_iou <= pos_iou``.
    Returns:
        Tensor: (N,) int64 categories POSITIVE / PART / NEGATIVE / IGNORED.
    """
    if not neg_iou <= part_iou <= pos_iou:
        raise ValueError(f"need neg_iou <= part_iou <= pos_iou, got {neg_iou}, {part_iou}, {pos_iou}")
    cat = torch.full(ious.shape, IGNORED, dtype=torch.long)
    cat[ious < neg_iou] = NEGATIVE
    cat[(ious >= part_iou) & (ious < pos_iou)] = PART
    cat[ious >= pos_iou] = POSITIVE
    return cat


def faces_and_ignore(dataset_dict: dict, min_face: float):
    """
    Split a dataset dict's annotations into faces to learn from and ignore regions.

    Returns:
        (faces (F, 4), ignore (G, 4)): float32 XYXY boxes. Faces are the non-crowd boxes whose
        geometric-mean side ``sqrt(w*h)`` is at least ``min_face``; crowd regions and smaller
        faces are ignore regions.
    """
    faces, ignore = [], []
    for a in dataset_dict.get("annotations", []):
        box = BoxMode.convert(list(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS)
        w, h = box[2] - box[0], box[3] - box[1]
        if w <= 0 or h <= 0:
            continue
        small = math.sqrt(w * h) < min_face
        (ignore if a.get("iscrowd", 0) or small else faces).append(box)
    as_tensor = lambda b: torch.tensor(b, dtype=torch.float32).reshape(-1, 4)  # noqa: E731
    return as_tensor(faces), as_tensor(ignore)


def _squares(cx, cy, side):
    half = side / 2
    return torch.stack([cx - half, cy - half, cx + half, cy + half], dim=1)


def _around(faces, n, shift, log_scale, generator):
    """n squares per face: centre shifted by U(-shift, shift) face sides, side x exp(U(+-log_scale))."""
    if len(faces) == 0 or n == 0:
        return faces.new_zeros((0, 4))
    f = faces.repeat_interleave(n, dim=0)
    side = torch.sqrt((f[:, 2] - f[:, 0]) * (f[:, 3] - f[:, 1]))
    u = torch.rand((len(f), 3), generator=generator) * 2 - 1
    cx = (f[:, 0] + f[:, 2]) / 2 + u[:, 0] * shift * side
    cy = (f[:, 1] + f[:, 3]) / 2 + u[:, 1] * shift * side
    return _squares(cx, cy, side * torch.exp(u[:, 2] * log_scale))


def candidate_boxes(faces, height, width, *, num_random=50, per_face=10, near_per_face=4,
                    min_side=12.0, shift=0.25, log_scale=math.log(1.3), near_shift=1.0,
                    near_log_scale=math.log(2.0), generator=None):
    """
    Candidate square boxes of one image (see the module docstring).

    Args:
        faces (Tensor): (F, 4) XYXY faces to learn from.
        height, width (int): image size.
        num_random (int): random squares anywhere, side log-uniform in [min_side, min(H, W)].
        per_face (int): squares jittered around each face (shift up to ``shift`` face sides,
            side times exp(U(-log_scale, log_scale))): positives and parts.
        near_per_face (int): squares near each face (``near_shift``, ``near_log_scale``):
            mostly hard negatives, some parts.
        min_side (float): smallest side of a random square.
        generator (torch.Generator): the source of randomness.
    Returns:
        Tensor: (N, 4) float32 XYXY squares with a side >= min_side.
    """
    out = [_around(faces, per_face, shift, log_scale, generator),
           _around(faces, near_per_face, near_shift, near_log_scale, generator)]
    short = float(min(height, width))
    if num_random > 0 and short >= min_side:
        u = torch.rand((num_random, 3), generator=generator)
        side = min_side * (short / min_side) ** u[:, 0]
        x1, y1 = u[:, 1] * (width - side), u[:, 2] * (height - side)
        out.append(torch.stack([x1, y1, x1 + side, y1 + side], dim=1))
    boxes = torch.cat(out)
    return boxes[(boxes[:, 2] - boxes[:, 0]) >= min_side]


def label_boxes(boxes, faces, ignore, box2box, *, neg_iou=0.3,
                ignore_ioa=0.3) -> Dict[str, torch.Tensor]:
    """
    Label candidate or mined boxes of one image.

    Args:
        boxes (Tensor): (N, 4) XYXY square boxes.
        faces (Tensor): (F, 4) faces; ignore (Tensor): (G, 4) ignore regions.
        box2box (Box2BoxTransform): the model's box encoding (``get_deltas``).
        neg_iou (float): boxes below it are negatives; they are dropped when ignore regions
            cover more than ``ignore_ioa`` of their area.
    Returns:
        dict: "boxes" (M, 4), "ious" (M,) best IoU with a face (0 without faces), "deltas"
        (M, 4) regression targets to the best face (0 without faces), "keep" (N,) bool.
    """
    n = len(boxes)
    ious = boxes.new_zeros(n)
    deltas = boxes.new_zeros((n, 4))
    if len(faces):
        iou = pairwise_iou(Boxes(boxes), Boxes(faces))  # (N, F)
        ious, best = iou.max(dim=1)
        deltas = box2box.get_deltas(boxes, faces[best]).float()
    keep = ~((ious < neg_iou) & covered_by_ignore(Boxes(boxes), Boxes(ignore), ignore_ioa))
    return {"boxes": boxes[keep], "ious": ious[keep], "deltas": deltas[keep], "keep": keep}


def inside_image(boxes, height, width, max_outside=0.25):
    """(N,) bool: no edge of the box lies more than ``max_outside`` of its side outside the image."""
    side = (boxes[:, 2] - boxes[:, 0]) * max_outside
    return ((boxes[:, 0] >= -side) & (boxes[:, 1] >= -side)
            & (boxes[:, 2] <= width + side) & (boxes[:, 3] <= height + side))
