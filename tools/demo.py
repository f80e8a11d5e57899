#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Run a shipped facecraft_d2 face detector on an image, print the faces and write the image
with their boxes drawn.

    python tools/demo.py                          # shipped joint cascade on grace_hopper.jpg
    python tools/demo.py --input photo.jpg --output faces.jpg --model cascade_separate
    python tools/demo.py --config-file cfg.yaml --opts MODEL.WEIGHTS model.pth

The default image is matplotlib's bundled sample photo of Grace Hopper (it ships with the
installed packages, so the demo needs no data).
"""
import argparse
import os
import time

import cv2
import matplotlib.cbook
import torch

from detectron2.config import get_cfg
from detectron2.data.detection_utils import read_image
from detectron2.engine import DefaultPredictor

from facecraft_d2 import add_facecraft_config
from facecraft_d2.engine import FaceCraftCheckpointer
from facecraft_d2.model_zoo import get_config


def default_image():
    return matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def build_cfg(args):
    if args.config_file:
        cfg = get_cfg()
        add_facecraft_config(cfg)
        cfg.merge_from_file(args.config_file)
    else:
        cfg = get_config(args.model)
    cfg.merge_from_list(args.opts)
    if not torch.cuda.is_available():
        cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    return cfg


def _without_weights(cfg):
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.WEIGHTS = ""
    cfg.freeze()
    return cfg


def draw(image_bgr, boxes, scores):
    out = image_bgr.copy()
    for (x1, y1, x2, y2), s in zip(boxes.tolist(), scores.tolist()):
        p1, p2 = (int(round(x1)), int(round(y1))), (int(round(x2)), int(round(y2)))
        cv2.rectangle(out, p1, p2, (0, 255, 0), 2)
        cv2.putText(out, f"{s:.2f}", (p1[0], max(12, p1[1] - 4)), cv2.FONT_HERSHEY_SIMPLEX, 0.5,
                    (0, 255, 0), 1, cv2.LINE_AA)
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=None, help="image (default: matplotlib's grace_hopper.jpg)")
    parser.add_argument("--output", default="output/demo/faces.jpg", help="annotated image to write")
    parser.add_argument("--model", default="cascade_joint", help="shipped model name (see MODEL_ZOO.md)")
    parser.add_argument("--config-file", default="", help="a config instead of a shipped model")
    parser.add_argument("--score-thresh", type=float, default=0.9, help="faces below this are not shown")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE config overrides")
    args = parser.parse_args()

    cfg = build_cfg(args)
    # DefaultPredictor would load MODEL.WEIGHTS with DetectionCheckpointer; load them
    # weights-only (never running code from the file) with FaceCraftCheckpointer instead.
    predictor = DefaultPredictor(_without_weights(cfg))
    FaceCraftCheckpointer(predictor.model).load(cfg.MODEL.WEIGHTS)
    path = args.input or default_image()
    image = read_image(path, format="BGR")
    start = time.perf_counter()
    inst = predictor(image)["instances"].to("cpu")
    elapsed = time.perf_counter() - start
    keep = inst.scores >= args.score_thresh
    boxes, scores = inst.pred_boxes.tensor[keep], inst.scores[keep]
    print(f"{path}: {image.shape[1]}x{image.shape[0]}, {len(boxes)} face(s) with score >= "
          f"{args.score_thresh} in {elapsed * 1000:.0f} ms")
    for (x1, y1, x2, y2), s in zip(boxes.tolist(), scores.tolist()):
        print(f"  face x1={x1:.1f} y1={y1:.1f} x2={x2:.1f} y2={y2:.1f} score={s:.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    cv2.imwrite(args.output, draw(image, boxes, scores))
    print(f"annotated image written to {args.output}")


if __name__ == "__main__":
    main()
