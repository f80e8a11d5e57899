#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Choose a cascade's stage thresholds and its default score threshold on the validation split
(the widerface_train images its training never saw, ``MODEL.FACECRAFT.SAMPLER.VAL_FRACTION``).

For every (x12, x24) threshold pair of the grid (x48's stays at ``--x48``), the cascade runs
over the held-out images; its detections are matched greedily by score to the faces (IoU >=
0.5). Faces smaller than the test's minimum face, crowd and invalid faces are *ignored*: a
detection on them is neither a hit nor a false positive. For each pair it prints the recall at
the score threshold that leaves at most ``--fp-per-image`` false positives per image, the
recall at any score, and the time per image; then the pair and score threshold it picks (the
highest recall at that false-positive rate).

    DETECTRON2_DATASETS=../data/train_root .venv/bin/python tools/tune_cascade.py \
        --config-file configs/cascade/joint.yaml MODEL.WEIGHTS output/cascade/joint/model_final.pth \
        --x12 0.3 0.4 0.5 0.6 --x24 0.3 0.5 0.7 --out results/cascade/tuning_joint.json
"""
import json
import os
import time

import torch

from detectron2.engine import default_argument_parser
from detectron2.structures import Boxes, pairwise_iou

import facecraft_d2  # noqa: F401  registers the datasets
from facecraft_d2.evaluation.run import build_heldout_run
from facecraft_d2.utils.io import atomic_write_json


def match(boxes, scores, faces, ignore):
    """(scores, is_hit, is_fp) of one image's detections, greedy by score at IoU 0.5."""
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


def summarize(per_image, num_faces, fp_per_image):
    scores = torch.cat([p[0] for p in per_image])
    hit = torch.cat([p[1] for p in per_image])
    fp = torch.cat([p[2] for p in per_image])
    order = scores.argsort(descending=True)
    scores, hit, fp = scores[order], hit[order], fp[order]
    tp_c, fp_c = hit.cumsum(0).float(), fp.cumsum(0).float()
    allowed = fp_per_image * len(per_image)
    ok = torch.nonzero(fp_c <= allowed)[:, 0]
    k = int(ok.max()) if len(ok) else -1
    return {
        "recall_at_fp_rate": float(tp_c[k] / num_faces) if k >= 0 else 0.0,
        "score_threshold": float(scores[k]) if k >= 0 else 1.0,
        "recall_any_score": float(hit.sum() / num_faces),
        "false_positives_any_score_per_image": float(fp.sum() / len(per_image)),
    }


def main():
    p = default_argument_parser()
    p.add_argument("--x12", type=float, nargs="+", default=[0.3, 0.4, 0.5, 0.6])
    p.add_argument("--x24", type=float, nargs="+", default=[0.3, 0.5, 0.7])
    p.add_argument("--x48", type=float, default=0.3, help="x48's stage threshold (low: the score threshold decides)")
    p.add_argument("--fp-per-image", type=float, default=0.1)
    p.add_argument("--max-images", type=int, default=150)
    p.add_argument("--out", default=None, help="JSON file for every figure")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg, model, images, gts = build_heldout_run(args.config_file, args.opts, args.max_images)
    min_face = cfg.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE
    num_faces = sum(len(f) for f, _ in gts)
    rows = []
    for t1 in args.x12:
        for t2 in args.x24:
            model.test_thresholds = (t1, t2, args.x48)
            start = time.perf_counter()
            dets = [model.detect([img])[0] for img in images]
            ms = 1000 * (time.perf_counter() - start) / len(images)
            per_image = [match(b, s, f, i) for (b, s), (f, i) in zip(dets, gts)]
            row = {"x12": t1, "x24": t2, "x48": args.x48, "ms_per_image": round(ms, 1),
                   **summarize(per_image, num_faces, args.fp_per_image)}
            rows.append(row)
            print(json.dumps(row), flush=True)
    best = max(rows, key=lambda r: (round(r["recall_at_fp_rate"], 3), -r["ms_per_image"]))
    result = {"config": args.config_file, "weights": cfg.MODEL.WEIGHTS, "images": len(images),
              "faces": num_faces, "min_face": min_face, "fp_per_image": args.fp_per_image,
              "rows": rows, "best": best}
    print("best:", json.dumps(best))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
