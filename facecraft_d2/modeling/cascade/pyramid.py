# Copyright (c) facecraft_d2 contributors.
"""
Test-time building blocks of the FaceCraft pipeline (paper section 4.3 and 6.5): the image
pyramid, response-map max pooling, and the crops fed to the later stages, either resized
from the image ("accurate") or taken without resizing from the pyramid level twice (four
times) as large ("fast"). Everything works on whole tensors: no per-box Python loops.
"""
import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

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


def resize_image(image, scale):
    """
    Args:
        image (Tensor): (C, H, W) float image.
        scale (float): resize factor.
    Returns:
        Tensor: (C, round(H*scale), round(W*scale)), area-averaged when shrinking.
    """
    h, w = image.shape[-2:]
    size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    if size == (h, w):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                         antialias=scale < 1)[0]


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


def crop_resized(image, boxes, size):
    """
    "Accurate" crops: each box region resized to size x size (area-averaged), zero outside
    the image.

    Args:
        image (Tensor): (C, H, W) float image.
        boxes (Tensor): (K, 4) XYXY boxes in image coordinates.
        size (int): output side.
    Returns:
        Tensor: (K, C, size, size).
    """
    if len(boxes) == 0:
        return image.new_zeros((0, image.shape[0], size, size))
    rois = torch.cat([boxes.new_zeros((len(boxes), 1)), boxes], dim=1)
    return roi_align(image[None], rois, (size, size), spatial_scale=1.0, sampling_ratio=0,
                     aligned=True)


def crop_from_pyramid(levels, boxes, size, resample=True):
    """
    "Fast" crops (section 6.5): instead of resizing each box from the full image, take it
    from a pyramid level, which is already resized.

    * ``resample=True``: from the smallest level on which the box still spans at least
      ``size`` pixels (the top level if none), bilinearly resampled to size x size
      (``roi_align``, 2x2 samples per output pixel): the box is matched exactly, and the
      level is at most one pyramid step larger than needed, so no aliasing.
    * ``resample=False`` (the paper's literal version): a size x size patch centred on the
      box, copied without resampling from the level whose scale brings the box closest to
      ``size`` pixels (the box's scale is then off by up to half a pyramid step).

    Zeros outside the level.

    Args:
        levels (list[tuple[float, Tensor]]): (scale, (C, H_s, W_s) image) pairs, scales
            decreasing.
        boxes (Tensor): (K, 4) square XYXY boxes in original image coordinates.
        size (int): output side (24 or 48).
        resample (bool): see above.
    Returns:
        Tensor: (K, C, size, size).
    """
    k = len(boxes)
    channels = levels[0][1].shape[0]
    out = boxes.new_zeros((k, channels, size, size))
    if k == 0:
        return out
    scales = boxes.new_tensor([s for s, _ in levels])
    want = size / (boxes[:, 2] - boxes[:, 0]).clamp(min=1e-3)
    if resample:  # last level with scale >= want (levels decrease), else the top one
        level_idx = ((scales[None] >= want[:, None] * (1 - 1e-6)).sum(dim=1) - 1).clamp(min=0)
    else:
        level_idx = (torch.log(want)[:, None] - torch.log(scales)[None]).abs().argmin(dim=1)
    ar = torch.arange(size, device=boxes.device)
    for li in level_idx.unique().tolist():
        sel = (level_idx == li).nonzero()[:, 0]
        scale, img = levels[li]
        if resample:
            rois = torch.cat([boxes.new_zeros((len(sel), 1)), boxes[sel] * scale], dim=1)
            out[sel] = roi_align(img[None], rois, (size, size), spatial_scale=1.0,
                                 sampling_ratio=2, aligned=True)
            continue
        h, w = img.shape[-2:]
        cx = (boxes[sel, 0] + boxes[sel, 2]) / 2 * scale
        cy = (boxes[sel, 1] + boxes[sel, 3]) / 2 * scale
        rows = torch.round(cy - size / 2).long()[:, None] + ar[None]  # (n, size)
        cols = torch.round(cx - size / 2).long()[:, None] + ar[None]
        inside = (((rows >= 0) & (rows < h))[:, :, None] & ((cols >= 0) & (cols < w))[:, None, :])
        patch = img[:, rows.clamp(0, h - 1)[:, :, None], cols.clamp(0, w - 1)[:, None, :]]
        out[sel] = patch.permute(1, 0, 2, 3) * inside[:, None]
    return out


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
    lt = torch.maximum(boxes[:, None, :2], boxes[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], boxes[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=2)  # (K, K)
    area = (boxes[:, 2:] - boxes[:, :2]).clamp(min=0).prod(dim=1)
    contained = inter / area[:, None].clamp(min=1e-6) > thresh  # row i inside column j
    higher = torch.ones(k, k, dtype=torch.bool, device=boxes.device).tril(-1)  # j before i
    return ~(contained & higher).any(dim=1)
