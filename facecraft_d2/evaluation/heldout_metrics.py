# Copyright (c) facecraft_d2 contributors.
"""
Scoring detections on the held-out WIDER train images (``facecraft_d2.data.heldout``), as the
threshold tuning and the score diagnostics use it (``tools/tune_cascade.py``,
``tools/rescore_heldout.py``): greedy matching by score at IoU 0.5 with ignore regions, then
the recall at a false-positive rate, the recall at any score and the faces' average precision.
"""
import torch

from detectron2.structures import Boxes, pairwise_iou

from .common import voc_ap

__all__ = ["match_detections", "summarize_matches"]


def match_detections(boxes, scores, faces, ignore):
    """
    Match one image's detections to its faces, greedily by descending score at IoU >= 0.5.

    Args:
        boxes (Tensor): (N, 4) XYXY detections; scores (Tensor): (N,).
        faces (Tensor): (F, 4) XYXY faces that count; ignore (Tensor): (G, 4) ignore regions
            (crowds, faces below the minimum size).
    Returns:
        tuple: (scores (N,) sorted descending, is_hit (N,) bool, is_false_positive (N,) bool).
        A detection that is neither (on an ignore region at IoU >= 0.3, or a duplicate of a
        found face) counts for nothing.
    """
    order = scores.argsort(descending=True)
    boxes, scores = boxes[order], scores[order]
    hit = torch.zeros(len(boxes), dtype=torch.bool)
    fp = torch.zeros(len(boxes), dtype=torch.bool)
    iou_f = pairwise_iou(Boxes(boxes), Boxes(faces)) if len(faces) else torch.zeros(len(boxes), 0)
    iou_i = pairwise_iou(Boxes(boxes), Boxes(ignore)) if len(ignore) else torch.zeros(len(boxes), 0)
    taken = torch.zeros(len(faces), dtype=torch.bool)
    for k in range(len(boxes)):
        if len(faces):
            cand = iou_f[k].clone()
            cand[taken] = -1
            j = int(cand.argmax())
            if cand[j] >= 0.5:
                taken[j], hit[k] = True, True
                continue
        if len(ignore) and iou_i[k].max() >= 0.3 or len(faces) and iou_f[k].max() >= 0.5:
            continue  # on an ignored face, or a duplicate of a found one that NMS kept
        fp[k] = True
    return scores, hit, fp


def summarize_matches(per_image, num_faces, fp_per_image):
    """
    Args:
        per_image (list[tuple]): :func:`match_detections` of each image.
        num_faces (int): faces that count, over all images.
        fp_per_image (float): the false-positive rate of the operating point.
    Returns:
        dict: "ap" (VOC average precision of the faces over all images' detections ranked
        together, as WIDER FACE's), "recall_at_fp_rate" and its "score_threshold" (the
        lowest score that leaves at most ``fp_per_image`` false positives per image),
        "recall_any_score", "false_positives_any_score_per_image".
    """
    scores = torch.cat([p[0] for p in per_image])
    hit = torch.cat([p[1] for p in per_image])
    fp = torch.cat([p[2] for p in per_image])
    order = scores.argsort(descending=True)
    scores, hit, fp = scores[order], hit[order], fp[order]
    tp_c, fp_c = hit.cumsum(0).float(), fp.cumsum(0).float()
    allowed = fp_per_image * len(per_image)
    ok = torch.nonzero(fp_c <= allowed)[:, 0]
    k = int(ok.max()) if len(ok) else -1
    precision = (tp_c / (tp_c + fp_c).clamp(min=1)).numpy()
    return {
        "ap": voc_ap((tp_c / num_faces).numpy(), precision) if len(scores) and num_faces else 0.0,
        "recall_at_fp_rate": float(tp_c[k] / num_faces) if k >= 0 else 0.0,
        "score_threshold": float(scores[k]) if k >= 0 else 1.0,
        "recall_any_score": float(hit.sum() / num_faces) if num_faces else 0.0,
        "false_positives_any_score_per_image": float(fp.sum() / len(per_image)),
    }
