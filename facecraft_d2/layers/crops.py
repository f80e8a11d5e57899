# Copyright (c) facecraft_d2 contributors.
"""
Square crops resized to a network's input size: the one crop implementation of facecraft_d2.

The cascade's training samples (:mod:`facecraft_d2.data.crop_cache`, hard-negative mining) and
its test pipeline (the x24 / x48 crops of :class:`FaceCraftCascade`, both presets) cut their
patches with these functions, so a face looks the same to the network in training and at
test time (no train/test skew in resampling).

Every crop is a bilinear ``roi_align`` taken from the smallest level of an image pyramid on
which the box still spans at least ``size`` pixels, with ``ceil(level pixels per output
pixel)`` samples per output pixel and axis (1 or 2; roi_align's adaptive ``sampling_ratio=0``):
an output pixel then averages samples at most one level pixel apart, so shrinking never
aliases, and each level is itself anti-aliased. ``crop_resized`` uses a pyramid of octaves
(the image halved again and again); the fast test preset passes its own test pyramid.
"""

import torch
import torch.nn.functional as F
from torchvision.ops import roi_align

__all__ = ["resize_image", "octave_pyramid", "crop_level_index", "crop_from_pyramid", "crop_resized"]


def resize_image(image, scale):
    """
    Args:
        image (Tensor): (C, H, W) float image.
        scale (float): resize factor.
    Returns:
        Tensor: (C, round(H*scale), round(W*scale)), anti-aliased (triangle filter) when
        shrinking.
    """
    h, w = image.shape[-2:]
    size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    if size == (h, w):
        return image
    return F.interpolate(image[None], size=size, mode="bilinear", align_corners=False,
                         antialias=scale < 1)[0]


def octave_pyramid(image, min_scale):
    """
    The image and its successive halvings down to the first level at or below ``min_scale``
    (while the level keeps at least 2 px on each side).

    Args:
        image (Tensor): (C, H, W) float image.
        min_scale (float): the smallest scale any crop needs.
    Returns:
        list[tuple[float, Tensor]]: (scale, (C, H_s, W_s) level) pairs, scales 1, 1/2, 1/4, ...
    """
    levels = [(1.0, image)]
    h, w = image.shape[-2:]
    while levels[-1][0] > min_scale * (1 + 1e-6) and min(h, w) * levels[-1][0] / 2 >= 2:
        scale = levels[-1][0] / 2
        levels.append((scale, resize_image(levels[-1][1], 0.5)))
    return levels


def crop_level_index(scales, boxes, size, usable=None):
    """
    The level each box is resampled from: the smallest (last, as scales decrease) on which the
    box still spans at least ``size`` pixels, the top one (0) if none does.

    Args:
        scales (Tensor): (L,) level scales, decreasing.
        boxes (Tensor): (K, 4) square XYXY boxes in original image coordinates.
        size (int): output side.
        usable (Tensor or None): (L,) bool, the levels that may be chosen (a prefix of them);
            None: all.
    Returns:
        Tensor: (K,) int64 level indices.
    """
    want = size / (boxes[:, 2] - boxes[:, 0]).clamp(min=1e-3)
    ok = scales[None] >= want[:, None] * (1 - 1e-6)
    if usable is not None:
        ok = ok & usable[None]
    return (ok.long().sum(dim=1) - 1).clamp(min=0)


def crop_from_pyramid(levels, boxes, size, resample=True):
    """
    Crops of square boxes taken from a pyramid.

    * ``resample=True``: from the smallest level on which the box still spans at least
      ``size`` pixels (the top level if none), bilinearly resampled to size x size
      (``roi_align``, aligned, 1 or 2 samples per output pixel and axis).
    * ``resample=False`` (the paper's literal fast mode): a size x size patch centred on the
      box, copied without resampling from the level whose scale brings the box closest to
      ``size`` pixels (the box's scale is then off by up to half a pyramid step).

    Zeros outside the level.

    Args:
        levels (list[tuple[float, Tensor]]): (scale, (C, H_s, W_s) image) pairs, scales
            decreasing.
        boxes (Tensor): (K, 4) square XYXY boxes in original image coordinates.
        size (int): output side (e.g. 24 or 48).
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
    if resample:
        level_idx = crop_level_index(scales, boxes, size)
    else:  # the level whose scale brings the box closest to size pixels
        want = size / (boxes[:, 2] - boxes[:, 0]).clamp(min=1e-3)
        level_idx = (torch.log(want)[:, None] - torch.log(scales)[None]).abs().argmin(dim=1)
    ar = torch.arange(size, device=boxes.device)
    for li in level_idx.unique().tolist():
        sel = (level_idx == li).nonzero()[:, 0]
        scale, img = levels[li]
        if resample:
            rois = torch.cat([boxes.new_zeros((len(sel), 1)), boxes[sel] * scale], dim=1)
            out[sel] = roi_align(img[None], rois, (size, size), spatial_scale=1.0,
                                 sampling_ratio=0, aligned=True)
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


def crop_resized(image, boxes, size, levels=None):
    """
    "Accurate" crops, used for training samples and by the accurate test preset: each box
    resampled to size x size from the octave pyramid of the image (see the module docstring),
    zeros outside the image.

    Args:
        image (Tensor): (C, H, W) float image.
        boxes (Tensor): (K, 4) square XYXY boxes in image coordinates.
        size (int): output side.
        levels (list): the image's :func:`octave_pyramid`, when the caller already has it
            (it must reach the smallest scale the boxes need).
    Returns:
        Tensor: (K, C, size, size).
    """
    if len(boxes) == 0:
        return image.new_zeros((0, image.shape[0], size, size))
    if levels is None:
        side = (boxes[:, 2] - boxes[:, 0]).max().clamp(min=1e-3).item()
        levels = octave_pyramid(image, size / side)
    return crop_from_pyramid(levels, boxes.to(image.dtype), size, resample=True)
