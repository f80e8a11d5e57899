# Copyright (c) facecraft_d2 contributors.
"""
Per-branch labels, the threshold-control layers and the joint loss (paper section 4.1).

For branch b, a training patch is a positive if its IoU with a face exceeds ``pos_iou[b]``
(lowered for later branches, so they see harder samples), a negative if its IoU is below
``neg_iou``, and otherwise takes no part in that branch's loss. The threshold-control layers
then drop, from x24's losses, the patches whose x12 face score is below ``thresholds[0]``,
and from x48's losses those that also fail x24's ``thresholds[1]``: the later branches learn
on the hard samples that pass the earlier ones.

Each branch's loss is equation 1: softmax cross-entropy over its valid patches plus
``reg_weight`` x smooth-L1 of the normalized box offsets over its valid positives; the joint
loss is equation 6, a weighted sum over the branches.
"""
import torch
import torch.nn.functional as F

__all__ = ["branch_labels", "threshold_masks", "branch_loss"]


def branch_labels(ious, pos_iou, neg_iou):
    """
    Args:
        ious (Tensor): (N,) max IoU of each patch with a (non-ignored) face.
        pos_iou (float): positives have IoU > pos_iou.
        neg_iou (float): negatives have IoU < neg_iou.
    Returns:
        Tensor: (N,) int64 labels, 1 face, 0 background, -1 not used by this branch.
    """
    labels = torch.full_like(ious, -1, dtype=torch.long)
    labels[ious < neg_iou] = 0
    labels[ious > pos_iou] = 1
    return labels


def threshold_masks(logits, branches, thresholds):
    """
    The threshold-control layers: which patches reach each branch's loss.

    Args:
        logits (dict[str, Tensor]): per branch, (N, 2) scores.
        branches (list[str]): branch names in cascade order, e.g. ["x12", "x24", "x48"].
        thresholds (list[float]): face-probability threshold after each branch but the last.
    Returns:
        dict[str, Tensor]: per branch, (N,) bool mask (the first branch sees everything).
    """
    n = next(iter(logits.values())).shape[0]
    device = next(iter(logits.values())).device
    mask = torch.ones(n, dtype=torch.bool, device=device)
    masks = {}
    for i, name in enumerate(branches):
        masks[name] = mask
        if i < len(thresholds) and name in logits:
            with torch.no_grad():
                mask = mask & (F.softmax(logits[name], dim=1)[:, 1] >= thresholds[i])
    return masks


def branch_loss(logits, deltas, labels, targets, mask, reg_weight=1.0, beta=1.0,
                reg_mask=None, ohem_fraction=1.0, box_valid=None):
    """
    Equation 1 for one branch, with part faces in the regression term and online hard
    example mining in the classification term.

    Args:
        logits (Tensor): (N, 2) scores.
        deltas (Tensor): (N, 4) predicted normalized box offsets.
        labels (Tensor): (N,) 1 / 0 / -1 (see :func:`branch_labels`).
        targets (Tensor): (N, 4) normalized regression targets (used for positives only).
        mask (Tensor): (N,) bool, patches that passed the threshold-control layers.
        reg_weight (float): lambda of equation 1.
        beta (float): smooth-L1 transition point.
        reg_mask (Tensor): (N,) bool, further patches whose box is regressed although they
            are no positives (part faces); None: positives only.
        ohem_fraction (float): online hard example mining: only this fraction of the valid
            patches, those with the highest classification loss, count (1.0: all).
        box_valid (Tensor): (N,) bool, patches whose targets may train the regression at all
            (False: classification only); None: all.
    Returns:
        (loss_cls, loss_reg): scalars; cross-entropy averaged over the (mined) valid patches,
        smooth-L1 averaged over the regressed patches (zero, still differentiable, when there
        are none).
    """
    if not 0 < ohem_fraction <= 1:
        raise ValueError(f"ohem_fraction must be in (0, 1], got {ohem_fraction}")
    valid = mask & (labels >= 0)
    reg = valid & (labels == 1)
    if reg_mask is not None:
        reg = reg | (mask & reg_mask)
    if box_valid is not None:
        reg = reg & box_valid
    per_sample = F.cross_entropy(logits[valid], labels[valid], reduction="none")
    if ohem_fraction < 1 and len(per_sample):
        k = max(1, int(round(ohem_fraction * len(per_sample))))
        per_sample = per_sample.topk(k).values
    loss_cls = per_sample.sum() / max(len(per_sample), 1)
    loss_reg = F.smooth_l1_loss(deltas[reg], targets[reg], beta=beta, reduction="sum")
    loss_reg = reg_weight * loss_reg / reg.sum().clamp(min=1)
    return loss_cls, loss_reg
