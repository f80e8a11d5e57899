#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Where detectors lose WIDER FACE AP: from the prediction files an evaluation wrote (the official
layout, e.g. ``<eval_table output>/<detector>/widerface_val/widerface_predictions``), for each
detector and setting, the precision at fixed recalls (is the AP capped by recall or by
ranking?) and what the false positives are, by rank among all detections:

    loc   IoU 0.3-0.5 with a face (a badly placed box)
    part  IoU 0.05-0.3 with a face (part of a face, or a box over several)
    bg    no face under it

    .venv/bin/python tools/wider_breakdown.py \
        joint=output/table/joint/widerface_val/widerface_predictions \
        mtcnn=output/table/mtcnn/widerface_val/widerface_predictions --setting easy

Scored as the official evaluation (:mod:`facecraft_d2.evaluation.widerface_evaluation`: min-max
normalised scores, IoU 0.5, detections on faces outside the setting ignored).
"""
import argparse
import os

import numpy as np

from facecraft_d2.evaluation.widerface_evaluation import (
    evaluate_wider,
    load_wider_ground_truth,
    normalize_scores,
    read_wider_predictions,
    wider_bbox_overlaps,
    wider_image_eval,
)

RECALLS = (0.5, 0.6, 0.7, 0.8)
RANK_BINS = (1000, 2000, 3000, 4000, 6000)


def detection_kinds(predictions, ground_truth, setting):
    """(scores (D,), kinds (D,) of "tp", "ignored", "dup", "loc", "part", "bg"), sorted by score."""
    scores, kinds = [], []
    for name, pred in normalize_scores(predictions).items():
        pred = pred[np.argsort(-pred[:, 4], kind="stable")]
        boxes, keep = ground_truth[name]
        kind = np.full(len(pred), "bg", dtype=object)
        if len(pred) and len(boxes):
            recall, proposals = wider_image_eval(pred, boxes, keep[setting])
            xyxy = lambda b: np.concatenate([b[:, :2], b[:, :2] + b[:, 2:4]], 1)  # noqa: E731
            best = wider_bbox_overlaps(xyxy(pred), xyxy(boxes)).max(1)
            kind[best > 0.05], kind[best >= 0.3], kind[best >= 0.5] = "part", "loc", "dup"
            kind[np.diff(recall, prepend=0) > 0] = "tp"
            kind[proposals == -1] = "ignored"
        scores.append(pred[:, 4])
        kinds.append(kind)
    scores, kinds = np.concatenate(scores), np.concatenate(kinds)
    order = np.argsort(-scores, kind="stable")
    return scores[order], kinds[order]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("detectors", nargs="+", metavar="NAME=FOLDER")
    p.add_argument("--setting", default="easy", choices=("easy", "medium", "hard"))
    p.add_argument("--ground-truth", default=os.path.join(
        os.environ.get("DETECTRON2_DATASETS", "datasets"), "widerface", "eval_tools", "ground_truth"))
    args = p.parse_args()
    gt = load_wider_ground_truth(args.ground_truth)
    for spec in args.detectors:
        name, _, folder = spec.partition("=")
        predictions = read_wider_predictions(folder)
        res = evaluate_wider(predictions, gt)[args.setting]
        recall, precision = np.nan_to_num(res["recall"]), np.nan_to_num(res["precision"])
        at = ["P@R{:.1f} {:.3f}".format(r, precision[recall >= r].max() if (recall >= r).any() else 0.0)
              for r in RECALLS]
        print("{}: {} AP {:.1f}, max recall {:.3f}, {}".format(
            name, args.setting, 100 * res["ap"], recall.max(), ", ".join(at)))
        scores, kinds = detection_kinds(predictions, gt, args.setting)
        lo = 0
        for hi in RANK_BINS:
            if lo >= len(kinds):
                break
            k = kinds[lo:hi]
            counts = ", ".join("{} {}".format(c, int((k == c).sum()))
                               for c in ("tp", "ignored", "dup", "loc", "part", "bg"))
            print("  ranks {:5d}-{:5d} (score >= {:.3f}): {}".format(lo, lo + len(k), scores[lo + len(k) - 1], counts))
            lo = hi


if __name__ == "__main__":
    main()
