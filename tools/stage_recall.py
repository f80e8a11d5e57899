#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Where a cascade loses faces: on the held-out WIDER train images (the validation split its
training never saw, ``facecraft_d2.data.heldout``), the share of faces that one of the boxes
leaving each test stage covers at IoU >= 0.5 (and >= 0.3, to tell a missed face from a badly
placed box), by face size, with the boxes per image at each stage:

    after x12   the boxes x24 sees (x12's survivors, regressed, NMS)
    after x24   the boxes x48 sees
    final       the detections (x48's stage threshold)
    default     the detections at ``TEST.FACES.SCORE_THRESH``

    DETECTRON2_DATASETS=../data/train_root .venv/bin/python tools/stage_recall.py \
        --config-file configs/cascade/joint.yaml --max-images 150 \
        --out results/cascade/stage_recall_joint.json MODEL.WEIGHTS facecraft://cascade_joint
"""
import json
import os

import torch

from detectron2.engine import default_argument_parser

import facecraft_d2  # noqa: F401  registers the datasets
from facecraft_d2.evaluation.run import build_heldout_run
from facecraft_d2.layers import best_iou
from facecraft_d2.utils.io import atomic_write_json

SIZE_BINS = (24, 32, 48, 96, float("inf"))
IOUS = (0.5, 0.3)


def recall_table(best, sides):
    """{iou: {bin label: recall}} from per-face best IoUs (F,) and face sides (F,)."""
    out = {}
    for thr in IOUS:
        row = {"all": float((best >= thr).float().mean()) if len(best) else 0.0}
        for lo, hi in zip(SIZE_BINS[:-1], SIZE_BINS[1:]):
            sel = (sides >= lo) & (sides < hi)
            label = f"{lo}-{hi}" if hi != float("inf") else f">={lo}"
            row[label] = float((best[sel] >= thr).float().mean()) if sel.any() else None
        out[str(thr)] = row
    return out


def main():
    p = default_argument_parser()
    p.add_argument("--max-images", type=int, default=150)
    p.add_argument("--out", default=None, help="JSON file for every figure")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg, model, images, gts = build_heldout_run(args.config_file, args.opts, args.max_images)
    default = cfg.TEST.FACES.SCORE_THRESH
    stages = {"after_x12": [], "after_x24": [], "final": [], "default": []}
    counts = {k: 0 for k in stages}
    sides = []
    for img, (faces, _) in zip(images, gts):
        wh = (faces[:, 2:] - faces[:, :2]).clamp(min=0)
        sides.append((wh[:, 0] * wh[:, 1]).sqrt())
        trace = {}  # what x24 and x48 saw, from the same run
        (b48, s48), = model.detect([img], trace=trace)
        none = torch.zeros(0, 4)
        b12, b24 = (trace[k][0][0] if k in trace else none for k in ("x12", "x24"))
        for key, boxes in (("after_x12", b12), ("after_x24", b24), ("final", b48),
                           ("default", b48[s48 >= default])):
            stages[key].append(best_iou(faces, boxes))
            counts[key] += len(boxes)
    sides = torch.cat(sides)
    result = {"config": args.config_file, "weights": cfg.MODEL.WEIGHTS, "images": len(images),
              "faces": len(sides), "min_face": cfg.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE,
              "thresholds": list(model.test_thresholds), "default_score_threshold": default,
              "stages": {}}
    for key, best in stages.items():
        result["stages"][key] = {"boxes_per_image": counts[key] / max(len(images), 1),
                                 "recall": recall_table(torch.cat(best), sides)}
        print(key, json.dumps(result["stages"][key]), flush=True)
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
