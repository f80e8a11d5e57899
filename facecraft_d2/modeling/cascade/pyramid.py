# Copyright (c) facecraft_d2 contributors.
"""
Test-time building blocks of the FaceCraft pipeline (paper section 4.3 and 6.5): the image
pyramid, response-map max pooling, the stage-1 windows and box squaring. The crops fed to the
later stages come from :mod:`facecraft_d2.layers.crops` (the same code cuts the training
samples): "accurate" resamples each box from an octave pyramid of the image, "fast" from the
test pyramid's level just large enough, "copy" copies it from the nearest level without
resampling (the paper's literal fast mode). Everything works on whole tensors.
"""
import torch
import torch.nn.functional as F

from detectron2.structures import Boxes, pairwise_ioa

from ...layers import crop_from_pyramid, crop_resized, resize_image

__all__ = [
    "pyramid_scales",
    "resize_image",
    "response_map_pool",
    "dense_windows",
    "square_boxes",
    "crop_resized",
    "crop_from_pyramid",
    "suppress_contained",
]


def pyramid_scales(height, width, min_face, factor, window=12, max_face=None):
    """
    Scales of the image pyramid: s_k = (window / min_face) * factor**k, while the scaled
    image's shorter side still holds a ``window``-pixel window (and faces <= max_face).

    Returns:
        list[float]: decreasing scales.
    """
    if not 0 < factor < 1:
        raise ValueError(f"pyramid factor must be in (0, 1), got {factor}")
    scales, s = [], window / float(min_face)
    min_scale = window / float(min(height, width) if max_face is None else min(max_face, min(height, width)))
    while s >= min_scale - 1e-9:
        scales.append(s)
        s *= factor
    return scales


def response_map_pool(scores, kernel):
    """
    Response-map max pooling (section 4.3): in every kernel x kernel neighbourhood only the
    highest score is kept, the others are zeroed; the map keeps its resolution. With the
    first stage's stride of 2, kernel 2 behaves like NMS at IoU 0.5.

    Args:
        scores (Tensor): (N, H, W) face probabilities.
        kernel (int): neighbourhood size (1 keeps everything).
    Returns:
        Tensor: (N, H, W) scores with the non-maxima set to 0.
    """
    if kernel <= 1:
        return scores
    pad = kernel // 2
    pooled = F.max_pool2d(scores[:, None], kernel, stride=1, padding=pad)[:, 0]
    pooled = pooled[:, : scores.shape[1], : scores.shape[2]]
    return torch.where(scores >= pooled, scores, torch.zeros_like(scores))


def dense_windows(ys, xs, scale, window=12, stride=2):
    """
    Boxes (XYXY, original image coordinates) of the first stage's windows at map cells
    (ys, xs) of the pyramid level with the given scale. Tensors of shape (K,) -> (K, 4).
    """
    x1 = xs.float() * stride / scale
    y1 = ys.float() * stride / scale
    side = window / scale
    return torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


def square_boxes(boxes):
    """(K, 4) XYXY boxes -> squares with the same centre and side max(w, h)."""
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    half = torch.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]) / 2
    return torch.stack([cx - half, cy - half, cx + half, cy + half], dim=1)


def suppress_contained(boxes, scores, thresh):
    """
    Drop boxes that lie mostly inside a higher-scoring box (intersection over their own area
    above ``thresh``), which IoU-based NMS keeps because nested boxes of different sizes have a
    small IoU (a face and its parts). Vectorized: a box is dropped if any higher-scoring box
    contains it, kept or not.

    Args:
        boxes (Tensor): (K, 4) XYXY boxes sorted by decreasing score.
        scores (Tensor): (K,) scores, sorted decreasingly.
        thresh (float): containment above which the lower-scoring box goes (>= 1 keeps all).
    Returns:
        Tensor: (K,) bool, the boxes to keep.
    """
    k = len(boxes)
    if thresh >= 1.0 or k < 2:
        return torch.ones(k, dtype=torch.bool, device=boxes.device)
    b = Boxes(boxes)
    contained = pairwise_ioa(b, b).t() > thresh  # [i, j]: box i inside box j (over i's area)
    higher = torch.ones(k, k, dtype=torch.bool, device=boxes.device).tril(-1)  # j before i
    return ~(contained & higher).any(dim=1)
