# Copyright (c) facecraft_d2 contributors.
"""Box geometry shared by the cascade's sample labelling, the R-CNN's ignore regions and the
recall diagnostics."""
import torch

from detectron2.structures import Boxes, pairwise_ioa, pairwise_iou

__all__ = ["best_iou", "best_match", "covered_by_ignore"]


def covered_by_ignore(boxes: Boxes, ignore: Boxes, ioa: float) -> torch.Tensor:
    """
    Args:
        boxes (Boxes): (N, 4) candidate boxes.
        ignore (Boxes): (G, 4) ignore regions (crowds, faces too small to learn from).
        ioa (float): coverage threshold.
    Returns:
        Tensor: (N,) bool, the boxes whose area the ignore regions cover by more than ``ioa``
        (the intersections with every region, over the box's area, summed).
    """
    if len(ignore) == 0 or len(boxes) == 0:
        return torch.zeros(len(boxes), dtype=torch.bool, device=boxes.tensor.device)
    return pairwise_ioa(ignore, boxes).sum(dim=0) > ioa


def best_match(boxes: torch.Tensor, targets: torch.Tensor):
    """
    Args:
        boxes (Tensor): (N, 4) XYXY boxes; targets (Tensor): (M, 4) XYXY boxes.
    Returns:
        tuple: (N,) each box's highest IoU with the targets and (N,) the index of that target
        (0 and 0 where M = 0).
    """
    if len(boxes) == 0 or len(targets) == 0:
        return boxes.new_zeros(len(boxes)), torch.zeros(len(boxes), dtype=torch.long, device=boxes.device)
    best, index = pairwise_iou(Boxes(boxes), Boxes(targets)).max(dim=1)
    return best, index


def best_iou(faces: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
    """
    Args:
        faces (Tensor): (F, 4) XYXY faces; boxes (Tensor): (K, 4) XYXY boxes.
    Returns:
        Tensor: (F,) each face's highest IoU with any of the boxes (0 where K = 0).
    """
    return best_match(faces, boxes)[0]
