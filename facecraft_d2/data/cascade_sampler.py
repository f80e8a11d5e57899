# Copyright (c) facecraft_d2 contributors.
"""
Training patches for the FaceCraft cascade (Qin et al., CVPR 2016, Sec. 4.2).

The paper slides windows of a fixed size (12 px at the x12 input, stride 8 on 48x48 crops)
over an image pyramid with an interval of 5 levels per octave. Seen from the original image
that is a set of *square windows* of sizes ``w_k = min_window * 2**(k / scales_per_octave)``
with a stride proportional to the window (``w_k * 8/48``). :class:`CascadeWindowSampler`
enumerates these windows implicitly (no window list is ever materialised), labels them by IoU
with the ground truth and crops them, resized to ``input_size``, in a few batched
``roi_align`` calls on an anti-aliased image pyramid.

Labelling rules (all thresholds are constructor arguments):

* **faces** are the annotations with ``iscrowd == 0``; a face whose geometric-mean side
  ``sqrt(w*h)`` is below ``min_window`` is *too small*: it is never a positive target and is
  treated as an ignore region for negatives (it still counts in the IoU of negatives).
* **ignore regions** are annotations with ``iscrowd == 1`` plus the too-small faces.
* **positives**: windows whose max IoU with a face is ``>= pos_iou_min`` and whose
  best-matching face is not too small. Grid windows are found exactly (a per-face search in
  the neighbourhood where IoU >= pos_iou_min is possible); optionally ``jitter`` squares
  (random shift/scale of each face's square box) are added. Every positive carries its max
  IoU so that the model can relabel it per branch (the paper lowers the positive threshold
  from 0.8 in stage one for the later stages).
* **negatives**: windows uniformly drawn from the whole grid with max IoU with every face
  ``< neg_iou`` and whose intersection with every ignore region covers at most
  ``ignore_ioa`` of the window's area (intersection over *window* area: a window mostly
  inside an ignore region is never a negative, while a large window holding a tiny ignored
  face still is -- its IoU with that face is tiny anyway).
* **near negatives** (optional, ``near_negatives_per_face``): random squares around each
  usable face -- its parts, boxes holding it with much background, its neighbourhood --
  with max IoU ``< neg_iou`` and the same ignore-region rule. Uniform grid negatives are
  almost all plain background, while the cascade's worst test-time false positives overlap
  faces; these are the hard negatives next to the faces. They keep their (non-zero) IoU.
* windows in between are not returned.
"""
import math
from typing import Dict, NamedTuple, Optional

import numpy as np
import torch
from torchvision.ops import box_iou

from detectron2.config import configurable
from detectron2.data import detection_utils as utils
from detectron2.structures import Boxes, BoxMode, pairwise_ioa
from detectron2.structures.boxes import matched_pairwise_iou

from ..layers import cascade_box2box, crop_resized

__all__ = ["WindowGrid", "CascadeWindowSampler", "crop_and_resize"]

_BOX2BOX = cascade_box2box()  # the model's encoding (facecraft_d2.layers)
_EPS = 1e-6


class WindowGrid(NamedTuple):
    """
    The sliding-window grid of one image size, level ``k`` holding square windows of side
    ``sizes[k]`` at ``(ix * strides[k], iy * strides[k])`` for ``ix < nx[k]``, ``iy < ny[k]``.
    Window ``(k, iy, ix)`` has the linear index ``starts[k] + iy * nx[k] + ix``.

    Attributes:
        sizes, strides (Tensor): float64 (K,) window side and stride in pixels.
        nx, ny, starts (Tensor): int64 (K,) columns, rows and first linear index per level.
    """

    sizes: torch.Tensor
    strides: torch.Tensor
    nx: torch.Tensor
    ny: torch.Tensor
    starts: torch.Tensor

    @property
    def num_windows(self) -> int:
        return int((self.nx * self.ny).sum())

    def boxes(self, index: Optional[torch.Tensor] = None) -> torch.Tensor:
        """
        Args:
            index (Tensor): int64 (N,) linear window indices; default all windows.
        Returns:
            Tensor: float32 (N, 4) XYXY window boxes in image coordinates.
        """
        if index is None:
            index = torch.arange(self.num_windows)
        ends = self.starts + self.nx * self.ny
        level = torch.searchsorted(ends, index, right=True)
        local = index - self.starts[level]
        nx = self.nx[level]
        x0 = (local % nx).double() * self.strides[level]
        y0 = torch.div(local, nx, rounding_mode="floor").double() * self.strides[level]
        size = self.sizes[level]
        return torch.stack([x0, y0, x0 + size, y0 + size], dim=1).float()


def crop_and_resize(image: np.ndarray, boxes: torch.Tensor, output_size: int) -> torch.Tensor:
    """
    Crop square boxes from an image and resize them to ``output_size``, with the crop function
    of the test pipeline and the crop caches (:func:`facecraft_d2.layers.crop_resized`).

    Args:
        image (ndarray): uint8 (H, W, C) or (H, W) image, e.g. BGR from ``read_image``.
        boxes (Tensor): float (M, 4) XYXY square boxes in image coordinates.
        output_size (int): side S of the output patches.
    Returns:
        Tensor: float32 (M, C, S, S) patches in the image's value range (0-255).
    """
    pixels = image if image.ndim == 3 else image[:, :, None]
    tensor = torch.from_numpy(np.ascontiguousarray(pixels)).permute(2, 0, 1).float()
    return crop_resized(tensor, boxes.float(), output_size)


class CascadeWindowSampler:
    """
    Callable turning one Detectron2 dataset dict into cascade training patches.

    ``sampler(dataset_dict, generator)`` returns a dict with

    * "images": float32 (M, 3, S, S) BGR patches, 0-255, not mean-subtracted;
    * "ious": float32 (M,) max IoU of the (un-flipped) window with a face; 0 for grid
      negatives (their IoU is only known to be below ``neg_iou``);
    * "deltas": float32 (M, 4) targets (tx, ty, tw, th) of the paper's Eq. 2-5 from the window
      to its best-matching face (tx negated for flipped patches); 0 for negatives;
    * "boxes": float32 (M, 4) XYXY window boxes in image coordinates (not flipped);
    * "flipped": bool (M,) which patches were flipped horizontally.

    Positives come first, then negatives. All randomness comes from ``generator``.
    """

    @configurable
    def __init__(
        self,
        *,
        min_window: float = 12,
        scales_per_octave: int = 5,
        stride_fraction: float = 8 / 48,
        pos_iou_min: float = 0.65,
        neg_iou: float = 0.5,
        ignore_ioa: float = 0.3,
        jitter_positives_per_face: int = 4,
        max_positives_per_image: int = 16,
        negatives_per_image: int = 128,
        input_size: int = 48,
        flip: bool = True,
        jitter_shift: float = 0.1,
        jitter_log2_scale: float = 0.25,
        near_negatives_per_face: int = 0,
        near_shift: float = 1.0,
        near_log2_scale: float = 1.5,
    ):
        """
        Args:
            min_window: side of the smallest window, in image pixels.
            scales_per_octave: pyramid levels per factor 2 of window size (the paper's 5).
            stride_fraction: window stride as a fraction of the window side (8/48).
            pos_iou_min: IoU with a face from which a window is a positive.
            neg_iou: windows with max IoU below this are negatives.
            ignore_ioa: a negative may cover ignore regions with at most this fraction of
                its area.
            jitter_positives_per_face: extra positives per face from random shifts/scales of
                its square box (0: grid windows only, as in the paper).
            max_positives_per_image: random subset size of the positives of one image.
            negatives_per_image: random subset size of the negatives of one image.
            input_size: side S of the returned patches.
            flip: flip each patch horizontally with probability 0.5.
            jitter_shift: max centre shift of a jittered box, as a fraction of the face side.
            jitter_log2_scale: max |log2| of the size change of a jittered box.
            near_negatives_per_face: near negatives drawn around each usable face (0: none).
            near_shift: max centre shift of a near negative, as a fraction of the face side.
            near_log2_scale: max |log2| of a near negative's side over the face's side.
        """
        if not 0 < neg_iou <= pos_iou_min <= 1:
            raise ValueError(f"need 0 < neg_iou <= pos_iou_min <= 1, got {neg_iou}, {pos_iou_min}")
        if min_window <= 0 or scales_per_octave <= 0 or stride_fraction <= 0:
            raise ValueError("min_window, scales_per_octave and stride_fraction must be > 0")
        self.min_window = float(min_window)
        self.scales_per_octave = int(scales_per_octave)
        self.stride_fraction = float(stride_fraction)
        self.pos_iou_min = float(pos_iou_min)
        self.neg_iou = float(neg_iou)
        self.ignore_ioa = float(ignore_ioa)
        self.jitter_positives_per_face = int(jitter_positives_per_face)
        self.max_positives_per_image = int(max_positives_per_image)
        self.negatives_per_image = int(negatives_per_image)
        self.input_size = int(input_size)
        self.flip = bool(flip)
        self.jitter_shift = float(jitter_shift)
        self.jitter_log2_scale = float(jitter_log2_scale)
        self.near_negatives_per_face = int(near_negatives_per_face)
        self.near_shift = float(near_shift)
        self.near_log2_scale = float(near_log2_scale)

    @classmethod
    def from_config(cls, cfg):
        s = cfg.MODEL.FACECRAFT.SAMPLER
        return {
            "min_window": s.MIN_WINDOW,
            "scales_per_octave": s.SCALES_PER_OCTAVE,
            "stride_fraction": s.STRIDE_FRACTION,
            "pos_iou_min": s.POS_IOU_MIN,
            "neg_iou": s.NEG_IOU,
            "ignore_ioa": s.IGNORE_IOA,
            "jitter_positives_per_face": s.JITTER_POSITIVES,
            "max_positives_per_image": s.MAX_POSITIVES_PER_IMAGE,
            "negatives_per_image": s.NEGATIVES_PER_IMAGE,
            "input_size": s.INPUT_SIZE,
            "flip": s.FLIP,
            "near_negatives_per_face": s.NEAR_NEGATIVES_PER_FACE,
            "near_shift": s.NEAR_SHIFT,
            "near_log2_scale": s.NEAR_LOG2_SCALE,
        }

    # ------------------------------------------------------------------ windows
    def window_grid(self, height: int, width: int) -> WindowGrid:
        """The sliding-window grid of an image: levels up to the image's shorter side."""
        short = min(height, width)
        num_levels = 0
        if short >= self.min_window:
            octaves = math.log2(short / self.min_window)
            num_levels = int(math.floor(self.scales_per_octave * octaves + _EPS)) + 1
        k = torch.arange(num_levels, dtype=torch.float64)
        sizes = self.min_window * torch.pow(2.0, k / self.scales_per_octave)
        strides = sizes * self.stride_fraction
        nx = torch.floor((width - sizes) / strides + _EPS).long() + 1
        ny = torch.floor((height - sizes) / strides + _EPS).long() + 1
        counts = nx * ny
        starts = torch.cumsum(counts, 0) - counts
        return WindowGrid(sizes, strides, nx, ny, starts)

    def _grid_positives(self, grid: WindowGrid, faces: torch.Tensor):
        """All grid windows with IoU >= pos_iou_min with some face: (boxes, iou, face index)."""
        t = self.pos_iou_min
        empty = (torch.zeros((0, 4)), torch.zeros(0), torch.zeros(0, dtype=torch.long))
        if len(faces) == 0 or len(grid.sizes) == 0:
            return empty
        f = faces.double()
        fw, fh = f[:, 2] - f[:, 0], f[:, 3] - f[:, 1]
        s = grid.sizes[:, None]
        inter_max = torch.minimum(s, fw) * torch.minimum(s, fh)
        iou_max = inter_max / (s * s + fw * fh - inter_max)  # best IoU of a level with a face
        lvl, fi = torch.nonzero(iou_max >= t - _EPS, as_tuple=True)
        if len(lvl) == 0:
            return empty
        s, st = grid.sizes[lvl], grid.strides[lvl]
        # IoU >= t implies an overlap of >= t*s along each axis: x0 in [fx0-(1-t)s, fx1-t*s]
        lo = torch.ceil((f[fi, :2] - (1 - t) * s[:, None]) / st[:, None] - _EPS).long().clamp(min=0)
        hi = torch.floor((f[fi, 2:] - t * s[:, None]) / st[:, None] + _EPS).long()
        hi = torch.minimum(hi, torch.stack([grid.nx[lvl], grid.ny[lvl]], 1) - 1)
        count = (hi - lo + 1).clamp(min=0)  # (P, 2) candidate columns / rows per pair
        kx, ky = int(count[:, 0].max()), int(count[:, 1].max())
        if kx == 0 or ky == 0:
            return empty
        ox = torch.arange(kx)[None, None, :]
        oy = torch.arange(ky)[None, :, None]
        valid = (ox < count[:, 0, None, None]) & (oy < count[:, 1, None, None])
        p, jy, jx = torch.nonzero(valid, as_tuple=True)
        ix, iy = lo[p, 0] + jx, lo[p, 1] + jy
        x0, y0, side = ix.double() * st[p], iy.double() * st[p], s[p]
        boxes = torch.stack([x0, y0, x0 + side, y0 + side], 1)
        iou = matched_pairwise_iou(Boxes(boxes), Boxes(f[fi[p]]))
        keep = iou >= t
        ids = (grid.starts[lvl[p]] + iy * grid.nx[lvl[p]] + ix)[keep]
        boxes, iou, face = boxes[keep], iou[keep], fi[p][keep]
        # a window found from several faces: keep its best face (any face with IoU >= t is here)
        order = torch.argsort(iou, descending=True, stable=True)
        ids, boxes, iou, face = ids[order], boxes[order], iou[order], face[order]
        uniq, inv = torch.unique(ids, return_inverse=True)
        first = torch.full((len(uniq),), len(ids), dtype=torch.long)
        first = first.scatter_reduce(0, inv, torch.arange(len(ids)), reduce="amin")
        return boxes[first].float(), iou[first].float(), face[first]

    def _squares_around(self, faces, usable, n, shift, log2_scale, generator):
        """
        ``4 * n`` random squares around each usable face (a random subset of at most
        ``max_positives_per_image`` faces): centre moved by up to ``shift`` face sides, side
        scaled by up to ``2**log2_scale`` either way. Returns (K, 4 * n, 4), K faces (K may
        be 0).
        """
        src = torch.nonzero(usable).flatten()
        if n <= 0 or len(src) == 0:
            return torch.zeros((0, 4 * max(n, 0), 4))
        if len(src) > self.max_positives_per_image:  # enough faces to fill the image's quota
            src = src[torch.randperm(len(src), generator=generator)[: self.max_positives_per_image]]
        f = faces[src]
        side = torch.sqrt((f[:, 2] - f[:, 0]) * (f[:, 3] - f[:, 1]))[:, None]
        cx, cy = ((f[:, 0] + f[:, 2]) / 2)[:, None], ((f[:, 1] + f[:, 3]) / 2)[:, None]
        u = torch.rand((3, len(src), 4 * n), generator=generator) * 2 - 1
        half = side * torch.pow(2.0, u[0] * log2_scale) / 2
        cx = cx + u[1] * shift * side
        cy = cy + u[2] * shift * side
        return torch.stack([cx - half, cy - half, cx + half, cy + half], -1)

    @staticmethod
    def _first_n_per_row(ok, n):
        """(K, D) bool -> flat (K * D,) bool keeping the first ``n`` True of each row."""
        return (ok & (torch.cumsum(ok.int(), dim=1) <= n)).flatten()

    def _clear_of_ignore(self, boxes, ignore):
        """(N,) bool: the boxes covering ignore regions with at most ``ignore_ioa`` of their area."""
        if len(ignore) == 0:
            return torch.ones(len(boxes), dtype=torch.bool)
        return pairwise_ioa(Boxes(ignore), Boxes(boxes)).max(dim=0).values <= self.ignore_ioa

    def _near_negatives(self, faces, usable, ignore, generator):
        """Random squares around usable faces with max IoU < neg_iou: (boxes, iou)."""
        n = self.near_negatives_per_face
        squares = self._squares_around(faces, usable, n, self.near_shift, self.near_log2_scale,
                                       generator)
        boxes = squares.reshape(-1, 4)
        if len(boxes) == 0:
            return boxes, torch.zeros(0)
        iou = box_iou(boxes, faces).max(dim=1).values
        ok = (iou < self.neg_iou) & (boxes[:, 2] - boxes[:, 0] >= self.min_window)
        ok &= self._clear_of_ignore(boxes, ignore)
        keep = self._first_n_per_row(ok.view(squares.shape[:2]), n)
        return boxes[keep], iou[keep]

    def _jitter_positives(self, faces, usable, generator):
        """Random squares around usable faces with max IoU >= pos_iou_min: (boxes, iou, face)."""
        n = self.jitter_positives_per_face
        squares = self._squares_around(faces, usable, n, self.jitter_shift,
                                       self.jitter_log2_scale, generator)
        boxes = squares.reshape(-1, 4)
        if len(boxes) == 0:
            return boxes, torch.zeros(0), torch.zeros(0, dtype=torch.long)
        iou, face = box_iou(boxes, faces).max(dim=1)
        ok = (iou >= self.pos_iou_min) & usable[face]
        keep = self._first_n_per_row(ok.view(squares.shape[:2]), n)
        return boxes[keep], iou[keep], face[keep]

    def _negatives(self, grid: WindowGrid, faces, ignore, generator):
        """Random grid windows with max IoU < neg_iou that avoid the ignore regions."""
        n, total = self.negatives_per_image, grid.num_windows
        if n <= 0 or total == 0:
            return torch.zeros((0, 4))
        draws = min(total, 4 * n + 64)  # rejection sampling: oversample, filter, keep n
        if total <= 8 * draws:
            index = torch.randperm(total, generator=generator)[:draws]
        else:
            index = torch.unique(torch.randint(total, (draws,), generator=generator))
            index = index[torch.randperm(len(index), generator=generator)]
        boxes = grid.boxes(index)
        keep = self._clear_of_ignore(boxes, ignore)
        if len(faces):
            keep &= box_iou(boxes, faces).max(dim=1).values < self.neg_iou
        return boxes[keep][:n]

    # ------------------------------------------------------------------ main entry
    def sample_windows(self, dataset_dict: dict, generator: Optional[torch.Generator] = None,
                       height: Optional[int] = None, width: Optional[int] = None) -> Dict:
        """
        Choose the windows of one image and their targets, without reading the image.

        Args:
            dataset_dict (dict): Detectron2 dataset dict.
            generator (torch.Generator): source of all randomness.
            height, width (int): image size; default the dict's "height" / "width".
        Returns:
            dict: "boxes" float32 (M, 4), "ious" (M,), "deltas" (M, 4) (tx negated where
            flipped) and "flipped" bool (M,); positives first.
        """
        height = dataset_dict["height"] if height is None else height
        width = dataset_dict["width"] if width is None else width
        annos = dataset_dict.get("annotations", [])
        faces, ignore = [], []
        for a in annos:
            box = BoxMode.convert(list(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS)
            (ignore if a.get("iscrowd", 0) else faces).append(box)
        faces = torch.tensor(faces, dtype=torch.float32).reshape(-1, 4)
        ignore = torch.tensor(ignore, dtype=torch.float32).reshape(-1, 4)
        fw, fh = faces[:, 2] - faces[:, 0], faces[:, 3] - faces[:, 1]
        usable = (fw > 0) & (fh > 0) & (torch.sqrt((fw * fh).clamp(min=0)) >= self.min_window)
        faces, usable = faces[(fw > 0) & (fh > 0)], usable[(fw > 0) & (fh > 0)]
        ignore = torch.cat([ignore, faces[~usable]])  # too-small faces: never negatives

        grid = self.window_grid(height, width)
        gb, giou, gface = self._grid_positives(grid, faces)
        ok = usable[gface]
        jb, jiou, jface = self._jitter_positives(faces, usable, generator)
        pos = torch.cat([gb[ok], jb])
        pos_iou = torch.cat([giou[ok], jiou])
        pos_face = torch.cat([gface[ok], jface])
        if len(pos) > self.max_positives_per_image:
            sel = torch.randperm(len(pos), generator=generator)[: self.max_positives_per_image]
            pos, pos_iou, pos_face = pos[sel], pos_iou[sel], pos_face[sel]
        neg = self._negatives(grid, faces, ignore, generator)
        near, near_iou = self._near_negatives(faces, usable, ignore, generator)

        boxes = torch.cat([pos, neg, near]).float()
        ious = torch.cat([pos_iou, torch.zeros(len(neg)), near_iou]).float()
        deltas = torch.zeros((len(boxes), 4))
        if len(pos):
            deltas[: len(pos)] = _BOX2BOX.get_deltas(pos.float(), faces[pos_face]).float()
        flipped = torch.zeros(len(boxes), dtype=torch.bool)
        if self.flip and len(boxes):
            flipped = torch.rand(len(boxes), generator=generator) < 0.5
            deltas[flipped, 0] = -deltas[flipped, 0]
        return {"boxes": boxes, "ious": ious, "deltas": deltas, "flipped": flipped}

    def __call__(self, dataset_dict: dict, generator: Optional[torch.Generator] = None) -> Dict:
        """
        Args:
            dataset_dict (dict): Detectron2 dataset dict (file_name, height, width, annotations).
            generator (torch.Generator): source of all randomness (default: torch's global RNG).
        Returns:
            dict: "images" (M, 3, S, S), "ious" (M,), "deltas" (M, 4), "boxes" (M, 4), all
            float32, and "flipped" bool (M,) (see :meth:`sample_windows`).
        """
        image = utils.read_image(dataset_dict["file_name"], format="BGR")
        utils.check_image_size(dataset_dict, image)
        out = self.sample_windows(dataset_dict, generator, image.shape[0], image.shape[1])
        images = crop_and_resize(image, out["boxes"], self.input_size)
        flipped = out["flipped"]
        images[flipped] = images[flipped].flip(-1)
        out["images"] = images
        return out
