#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Choose a cascade's stage thresholds and its default score threshold on the validation split
(the widerface_train images its training never saw, ``MODEL.FACECRAFT.SAMPLER.VAL_FRACTION``).

For every (x12, x24) threshold pair of the grid (x48's stays at ``--x48``), the cascade runs
over the held-out images; its detections are matched greedily by score to the faces (IoU >=
0.5). Faces smaller than the test's minimum face, crowd and invalid faces are *ignored*: a
detection on them is neither a hit nor a false positive. For each pair it prints the faces'
average precision (VOC's, as WIDER FACE's), the recall at the score threshold that leaves at
most ``--fp-per-image`` false positives per image, the recall at any score, and the time per
image; then the pair and score threshold it picks (the highest ``--select`` figure: by default
the recall at that false-positive rate).

    DETECTRON2_DATASETS=../data/train_root .venv/bin/python tools/tune_cascade.py \
        --config-file configs/cascade/joint.yaml MODEL.WEIGHTS output/cascade/joint/model_final.pth \
        --x12 0.3 0.4 0.5 0.6 --x24 0.3 0.5 0.7 --out results/cascade/tuning_joint.json
"""
import json
import os
import time

import torch

from detectron2.engine import default_argument_parser

import facecraft_d2  # noqa: F401  registers the datasets
from facecraft_d2.evaluation.heldout_metrics import match_detections, summarize_matches
from facecraft_d2.evaluation.run import build_heldout_run
from facecraft_d2.utils.io import atomic_write_json


def main():
    p = default_argument_parser()
    p.add_argument("--x12", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    p.add_argument("--x24", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--x48", type=float, default=0.3, help="x48's stage threshold (low: the score threshold decides)")
    p.add_argument("--fp-per-image", type=float, default=0.1)
    p.add_argument("--max-images", type=int, default=150)
    p.add_argument("--select", choices=["recall_at_fp_rate", "ap"], default="recall_at_fp_rate",
                   help="the figure that picks the best pair (ap: the held-out faces' average "
                   "precision, as WIDER FACE's, which rewards recall at any score)")
    p.add_argument("--out", default=None, help="JSON file for every figure")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg, model, images, gts = build_heldout_run(args.config_file, args.opts, args.max_images)
    min_face = cfg.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE
    num_faces = sum(len(f) for f, _ in gts)
    rows = []
    for t1 in args.x12:
        for t2 in args.x24:
            with model.test_settings(score_thresholds=(t1, t2, args.x48)):
                start = time.perf_counter()
                dets = [model.detect([img])[0] for img in images]
                ms = 1000 * (time.perf_counter() - start) / len(images)
            per_image = [match_detections(b, s, f, i) for (b, s), (f, i) in zip(dets, gts)]
            row = {"x12": t1, "x24": t2, "x48": args.x48, "ms_per_image": round(ms, 1),
                   **summarize_matches(per_image, num_faces, args.fp_per_image)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    best = max(rows, key=lambda r: (round(r[args.select], 3), -r["ms_per_image"]))
    result = {"config": args.config_file, "weights": cfg.MODEL.WEIGHTS, "images": len(images),
              "faces": num_faces, "min_face": min_face, "fp_per_image": args.fp_per_image,
              "select": args.select, "rows": rows, "best": best}
    print("best:", json.dumps(best))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
