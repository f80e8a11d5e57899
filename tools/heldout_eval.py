#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Score any detectors, cascades and peers alike, on the cascades' validation split: the held-out
WIDER train images their training never saw (``facecraft_d2.data.heldout``), with the figures
``tools/tune_cascade.py`` chooses thresholds by (the faces' AP, the recall at a false-positive
rate, the recall at any score). It tells whether a gap seen on the dev set is visible where the
cascades are tuned.

    DETECTRON2_DATASETS=../data/train_root .venv/bin/python tools/heldout_eval.py \
        separate=configs/cascade/separate_x48.yaml:facecraft://cascade_separate mtcnn \
        --max-images 150 --out results/cascade/heldout_vs_mtcnn.json

Detectors as in ``tools/eval_table.py`` (``NAME=CONFIG.yaml[:WEIGHTS]``, ``PEER``, ``NAME=PEER``).
"""
import argparse
import json
import os
import time

import torch

import facecraft_d2  # noqa: F401  registers the datasets
from facecraft_d2.config import build_config
from facecraft_d2.data.heldout import load_heldout_images
from facecraft_d2.evaluation.heldout_metrics import match_detections, summarize_matches
from facecraft_d2.evaluation.run import build_detector, parse_detector
from facecraft_d2.utils.io import atomic_write_json


def detect_all(model, images):
    """[(boxes (K, 4) XYXY, scores (K,))] of a Detectron2-style face detector on (3, H, W) images."""
    out = []
    with torch.no_grad():
        for img in images:
            inst = model([{"image": img, "height": img.shape[1], "width": img.shape[2]}])[0]["instances"]
            out.append((inst.pred_boxes.tensor.cpu(), inst.scores.cpu()))
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("detectors", nargs="+", metavar="DETECTOR")
    p.add_argument("--split-config", default="configs/cascade/separate_x48.yaml",
                   help="the cascade config whose validation split and minimum face size are used")
    p.add_argument("--dataset", default="widerface_train", help="the registered set to split")
    p.add_argument("--max-images", type=int, default=150)
    p.add_argument("--fp-per-image", type=float, default=0.1)
    p.add_argument("--out", default=None, help="JSON file for every figure")
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    detectors = [parse_detector(s) for s in args.detectors]  # a bad spec fails before any work
    split_cfg = build_config(args.split_config, [], device="cpu")
    images, gts = load_heldout_images(split_cfg, args.max_images, dataset=args.dataset)
    num_faces = sum(len(f) for f, _ in gts)
    rows = []
    for det in detectors:
        model, _ = build_detector(det)
        start = time.perf_counter()
        dets = detect_all(model, images)
        ms = 1000 * (time.perf_counter() - start) / max(len(images), 1)
        per_image = [match_detections(b, s, f, i) for (b, s), (f, i) in zip(dets, gts)]
        row = {"detector": det["name"], "ms_per_image": round(ms, 1),
               **summarize_matches(per_image, num_faces, args.fp_per_image)}
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"split_config": args.split_config, "images": len(images), "faces": num_faces,
              "min_face": split_cfg.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE,
              "fp_per_image": args.fp_per_image, "detectors": args.detectors, "rows": rows}
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
