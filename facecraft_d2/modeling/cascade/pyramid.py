# Copyright (c) facecraft_d2 contributors.
"""
Test-time building blocks of the FaceCraft pipeline (paper section 4.3 and 6.5): the image
pyramid, response-map max pooling, the stage-1 windows and box squaring. The crops fed to the
later stages come from :mod:`facecraft_d2.layers.crops` (the same code cuts the training
samples): "accurate" resamples each box from an octave pyramid of the image, "fast" from the
test pyramid's level just large enough, "copy" copies it from the nearest level without
resampling (the paper's literal fast mode). Everything works on whole tensors.

x12 runs once per image on the whole pyramid: :class:`PyramidMosaic` packs the levels into one
image and maps the cells of its dense score map back to each level's windows.
"""
import functools

import torch

from detectron2.structures import Boxes, pairwise_ioa, pairwise_iou

from ...layers import crop_from_pyramid, crop_resized, resize_image

__all__ = [
    "pyramid_scales",
    "image_pyramid",
    "resize_image",
    "response_map_pool",
    "dense_windows",
    "square_boxes",
    "crop_resized",
    "crop_from_pyramid",
    "suppress_contained",
    "vote_boxes",
    "x12_map_size",
    "pack_pyramid",
    "PyramidMosaic",
    "pyramid_mosaic",
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


def image_pyramid(image, scales, uint8=False):
    """
    The levels of the test pyramid, each resized from the image, anti-aliased (triangle
    filter) when shrinking (:func:`resize_image`).

    Args:
        image (Tensor): (C, H, W) image, 0-255, uint8 or float.
        scales (list[float]): decreasing scales (:func:`pyramid_scales`).
        uint8 (bool): resize the image as 8 bits per channel, channels last (the image rounded
            to whole grey levels first, and every level after its resize), which PyTorch's
            CPU kernels vectorize: the same filter, levels within one grey level of the
            float resize, about 6x less time on a VGA photo.
    Returns:
        list[tuple[float, Tensor]]: (scale, (C, round(H * scale), round(W * scale)) float).
    """
    if not uint8:
        image = image.float()
        return [(s, resize_image(image, s)) for s in scales]
    if image.dtype != torch.uint8:
        image = image.round().clamp(0, 255)
    # (C, H, W) uint8 in channels-last memory (one copy, from either layout): resize_image's
    # interpolate then keeps that layout
    src = image.permute(1, 2, 0).to(torch.uint8).contiguous().permute(2, 0, 1)
    return [(s, resize_image(src, s).float().contiguous()) for s in scales]


def response_map_pool(scores, kernel):
    """
    Response-map max pooling (section 4.3): in every kernel x kernel neighbourhood only the
    highest score is kept, the others are zeroed; the map keeps its resolution. With the
    first stage's stride of 2, kernel 2 behaves like NMS at IoU 0.5.

    The neighbourhood of cell (i, j) is rows and columns ``i - kernel // 2`` to
    ``i - kernel // 2 + kernel - 1`` inside the map (``F.max_pool2d`` with padding
    ``kernel // 2``, cropped to the map), computed as running maxima of shifted views, row
    then column: the same values as the pooling, several times faster on small CPU maps.

    Args:
        scores (Tensor): (N, H, W) face probabilities.
        kernel (int): neighbourhood size (1 keeps everything).
    Returns:
        Tensor: (N, H, W) scores with the non-maxima set to 0.
    """
    if kernel <= 1:
        return scores
    pooled = _window_max(_window_max(scores, kernel, -1), kernel, -2)
    return torch.where(scores >= pooled, scores, 0.0)


def _window_max(x, kernel, dim):
    """Max of x over the window [i - kernel // 2, i - kernel // 2 + kernel - 1] along ``dim``."""
    n, out = x.shape[dim], x.clone()
    for d in range(-(kernel // 2), kernel - kernel // 2):
        if d == 0 or abs(d) >= n:
            continue
        o = out.narrow(dim, max(0, -d), n - abs(d))
        torch.maximum(o, x.narrow(dim, max(0, d), n - abs(d)), out=o)
    return out


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
    if thresh >= 1.0:
        return torch.ones(len(boxes), dtype=torch.bool, device=boxes.device)
    b = Boxes(boxes)
    contained = pairwise_ioa(b, b).t() > thresh  # [i, j]: box i inside box j (over i's area)
    higher = torch.ones_like(contained).tril(-1)  # j before i (no Python sizes: traceable)
    return ~(contained & higher).any(dim=1)


def vote_boxes(kept, boxes, scores, thresh):
    """
    Box voting (Gidaris and Komodakis, ICCV 2015): each box kept by the NMS is replaced by the
    score-weighted mean of all the boxes that overlap it at IoU >= ``thresh`` (itself
    included), which places it better than any single regression did. Scores are unchanged.

    Args:
        kept (Tensor): (M, 4) XYXY boxes kept by the NMS.
        boxes (Tensor): (K, 4) XYXY boxes before the NMS (those of ``kept`` among them).
        scores (Tensor): (K,) their scores.
        thresh (float): IoU with a kept box from which a box votes for it.
    Returns:
        Tensor: (M, 4) voted boxes.
    """
    if len(kept) == 0:
        return kept
    weights = (pairwise_iou(Boxes(kept), Boxes(boxes)) >= thresh).to(scores.dtype) * scores[None]
    return (weights @ boxes) / weights.sum(dim=1, keepdim=True).clamp(min=1e-12)


def x12_map_size(side):
    """
    Cells of x12's dense score map along an image side of ``side`` pixels: conv 3x3 (side - 2),
    max-pool 3x3 / 2, conv 4x4, i.e. ``(side - 11) // 2 + 1`` (one 12x12 window every 2 pixels;
    on an odd side the last window reads 11 pixels of the image). 0 if the side is under 11.
    """
    return max(0, (side - 11) // 2 + 1)


def _skyline_pack(footprints, width):
    """
    Bottom-left skyline packing of (h, w) rectangles, in order, into a strip of ``width``.
    Returns ([(y, x)], strip height).
    """
    profile = [0] * width  # height of the skyline over each column
    xs, places = {0}, []
    for h, w in footprints:
        best = None
        for x in sorted(xs):
            if x + w > width:
                continue
            y = max(profile[x: x + w])
            if best is None or y < best[0]:
                best = (y, x)
        y, x = best
        profile[x: x + w] = [y + h] * w
        xs.add(x + w)
        places.append((y, x))
    return places, max(profile)


def pack_pyramid(sizes, pool_kernel=1):
    """
    Places of the pyramid levels in one mosaic image on which x12 runs once. A level at an even
    pixel offset (y, x) has its own dense map at cells (y/2, x/2) of the mosaic's map, with the
    same values as on the level alone (each window reads pixels of one level only); the cells of
    windows straddling two levels or lying in the gaps are not any level's. Levels are separated
    so that their maps are at least ``pool_kernel // 2`` cells apart: response-map max pooling
    on the mosaic's map, with the foreign cells zeroed, equals pooling each level alone.

    Args:
        sizes (list[tuple[int, int]]): (h, w) of the levels, largest first, each side >= 12.
        pool_kernel (int): the response-map pooling kernel.
    Returns:
        tuple: ([(y, x)] even pixel offsets of the levels, (height, width) of the mosaic).
    """
    pad = pool_kernel // 2

    def footprint(side):  # even, and long enough for the map plus the gap
        side = max(side, 2 * (x12_map_size(side) + pad))
        return side + side % 2

    foot = [(footprint(h), footprint(w)) for h, w in sizes]
    best = None
    for k in range(1, min(3, len(foot)) + 1):  # strip widths: the first 1, 2 or 3 levels abreast
        width = sum(w for _, w in foot[:k])
        places, _ = _skyline_pack(foot, width)
        extent = (max(y + h for (y, _), (h, _) in zip(places, sizes)),
                  max(x + w for (_, x), (_, w) in zip(places, sizes)))
        if best is None or extent[0] * extent[1] < best[1][0] * best[1][1]:
            best = (places, extent)
    return best


class PyramidMosaic:
    """
    The levels of one image size's pyramid packed into one image (:func:`pack_pyramid`), so
    that x12 runs once per image instead of once per level, and the way back from the cells of
    the mosaic's dense map to each level's windows. Build it with :func:`pyramid_mosaic`
    (cached per image size and settings).

    Attributes:
        scales (list[float]): the levels' scales.
        sizes (list[tuple[int, int]]): the levels' (h, w).
        offsets (list[tuple[int, int]]): the levels' (y, x) pixel offsets in the mosaic (even).
        shape (tuple[int, int]): (H, W) of the mosaic.
        map_boxes (list[tuple[int, int, int, int]]): each level's part of the mosaic's dense
            map, (row, column, rows, columns).
        level_of (Tensor): (H', W') int16, the level of each map cell, -1 for cells of no
            level (windows across a gap or two levels); H' = x12_map_size(H).
        valid (Tensor): (H', W') bool, ``level_of >= 0``.
    """

    def __init__(self, scales, sizes, pool_kernel=1, device="cpu"):
        """
        Args:
            scales (list[float]): level scales, decreasing.
            sizes (list[tuple[int, int]]): level (h, w), each side >= 12.
            pool_kernel (int): the response-map pooling kernel (sets the gaps).
            device (str or torch.device): where the lookup tensors live.
        """
        self.scales, self.sizes = list(scales), list(sizes)
        self.offsets, self.shape = pack_pyramid(self.sizes, pool_kernel)
        # each level's part of the map: (row, column, rows, columns); x12's stride is 2
        self.map_boxes = [(y // 2, x // 2, x12_map_size(h), x12_map_size(w))
                          for (y, x), (h, w) in zip(self.offsets, self.sizes)]
        level_of = torch.full((x12_map_size(self.shape[0]), x12_map_size(self.shape[1])), -1,
                              dtype=torch.int16)
        for i, (y, x, mh, mw) in enumerate(self.map_boxes):
            level_of[y: y + mh, x: x + mw] = i
        self.level_of = level_of.to(device)
        self.valid = self.level_of >= 0
        # per level: map origin (L, 2), and scale and window side (L,) in float32 as
        # dense_windows computes them (the side in float64 first)
        self._origin = torch.tensor([b[:2] for b in self.map_boxes], dtype=torch.long,
                                    device=device)
        self._scale = torch.tensor(self.scales, dtype=torch.float32, device=device)
        self._side = torch.tensor([12 / s for s in self.scales], dtype=torch.float32, device=device)

    def paste(self, images):
        """
        Args:
            images (list[Tensor]): the levels, (C, h, w) each, in the order of ``sizes``.
        Returns:
            Tensor: (C, H, W) the mosaic, zeros between the levels.
        """
        mosaic = images[0].new_zeros((images[0].shape[0],) + tuple(self.shape))
        for (y, x), img in zip(self.offsets, images):
            mosaic[:, y: y + img.shape[-2], x: x + img.shape[-1]] = img
        return mosaic

    def windows(self, keep):
        """
        The windows at the True cells of a mosaic map.

        Args:
            keep (Tensor): (H', W') bool over the mosaic's map (cells of no level must be False).
        Returns:
            tuple: map cells (ys, xs) (K,) each and their windows' boxes (K, 4) XYXY in
            original image coordinates, ordered level by level and row-major within a level
            (the order of :func:`dense_windows` on each level in turn).
        """
        ys, xs = torch.nonzero(keep, as_tuple=True)
        level = self.level_of[ys, xs].long()
        order = torch.argsort(level, stable=True)
        ys, xs, level = ys[order], xs[order], level[order]
        origin, scale = self._origin[level], self._scale[level]
        x1 = (xs - origin[:, 1]).float() * 2 / scale
        y1 = (ys - origin[:, 0]).float() * 2 / scale
        side = self._side[level]
        return ys, xs, torch.stack([x1, y1, x1 + side, y1 + side], dim=1)


@functools.lru_cache(maxsize=16)
def pyramid_mosaic(scales, sizes, pool_kernel, device):
    """A :class:`PyramidMosaic` for tuples of scales and (h, w) sizes, cached (16 layouts)."""
    return PyramidMosaic(scales, sizes, pool_kernel, device)
