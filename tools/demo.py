#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Run a shipped facecraft_d2 face detector on an image, print the faces and write the image
with their boxes drawn (``make demo``): :class:`facecraft_d2.FaceDetector` and the drawing of
``facecraft detect``.

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

from detectron2.data.detection_utils import read_image

from facecraft_d2 import FaceDetector
from facecraft_d2.cli.writers import draw_faces


def default_image():
    return matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--input", default=None, help="image (default: matplotlib's grace_hopper.jpg)")
    parser.add_argument("--output", default="output/demo/faces.jpg", help="annotated image to write")
    parser.add_argument("--model", default="cascade_joint", help="shipped model name (see MODEL_ZOO.md)")
    parser.add_argument("--config-file", default=None, help="a config instead of a shipped model")
    parser.add_argument("--score-thresh", type=float, default=None,
                        help="faces below this are not shown (default: the model's own)")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE config overrides")
    args = parser.parse_args()

    detector = FaceDetector(args.model, config_file=args.config_file, score_threshold=args.score_thresh,
                            opts=args.opts)
    path = args.input or default_image()
    image = read_image(path, format="BGR")
    start = time.perf_counter()
    faces = detector.detect(image, format="BGR")
    elapsed = time.perf_counter() - start
    print(f"{path}: {image.shape[1]}x{image.shape[0]}, {len(faces)} face(s) with score >= "
          f"{detector.score_threshold} ({detector.name}) in {elapsed * 1000:.0f} ms")
    for (x1, y1, x2, y2), s in zip(faces.boxes.tolist(), faces.scores.tolist()):
        print(f"  face x1={x1:.1f} y1={y1:.1f} x2={x2:.1f} y2={y2:.1f} score={s:.3f}")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    cv2.imwrite(args.output, draw_faces(image, faces))
    print(f"annotated image written to {args.output}")


if __name__ == "__main__":
    main()
