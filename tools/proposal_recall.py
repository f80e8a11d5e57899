#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Recall of the RPN proposals of R-CNN models on a dataset: the share of its faces that one of an
image's proposals (at most ``MODEL.RPN.POST_NMS_TOPK_TEST``, images resized as at test time)
covers at IoU >= ``--iou``, and the median of each image's highest objectness logit.

    DETECTRON2_DATASETS=../shared/datasets .venv/bin/python tools/proposal_recall.py \\
        rpn=configs/rcnn/two_step.yaml:output/rcnn/rpn/model_final.pth \\
        four_step=configs/rcnn/four_step.yaml:output/rcnn/four_step_frcnn_shared/model_final.pth \\
        [--dataset fddb_folds_01_05] [--iou 0.5] [--min-face 0] [--output results.json]

Each detector is ``NAME=CONFIG.yaml[:WEIGHTS]``, built as ``tools/eval_table.py`` builds it
(weights default to the config's ``<OUTPUT_DIR>/model_final.pth``; ``facecraft://<name>``
works). Prints a markdown table.
"""
import argparse

import torch

from detectron2.data import DatasetCatalog, build_detection_test_loader

from facecraft_d2.engine.proposals import compute_proposals, proposal_recall
from facecraft_d2.evaluation.run import build_eval_model, parse_detector
from facecraft_d2.utils.io import atomic_write_json



def get_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("detectors", nargs="+", help="NAME=CONFIG.yaml[:WEIGHTS]")
    p.add_argument("--dataset", default="fddb_folds_01_05")
    p.add_argument("--iou", type=float, default=0.5)
    p.add_argument("--min-face", type=float, default=0.0,
                   help="count only faces with sqrt(w * h) >= this many pixels")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads(N)")
    p.add_argument("--output", default=None, help="JSON file for every figure")
    return p


def parse_spec(spec):
    """"NAME=CONFIG.yaml[:WEIGHTS]" -> (name, config file, weights or None); peers have no RPN."""
    det = parse_detector(spec)
    if det["kind"] != "config":
        raise ValueError(f"expected NAME=CONFIG.yaml[:WEIGHTS] (a model with an RPN), got {spec!r}")
    return det["name"], det["config_file"], det["weights"]


def main(args):
    torch.set_num_threads(args.threads)
    specs = [parse_spec(spec) for spec in args.detectors]  # a bad spec fails before any work
    dicts = DatasetCatalog.get(args.dataset)
    rows = []
    for name, config, weights in specs:
        model, cfg = build_eval_model(config, weights, ["MODEL.LOAD_PROPOSALS", "False"])
        loader = build_detection_test_loader(cfg, args.dataset)
        stats = proposal_recall(compute_proposals(model, loader), dicts, args.iou, args.min_face)
        rows.append({"name": name, "config": config, "weights": cfg.MODEL.WEIGHTS,
                     "proposals_per_image": cfg.MODEL.RPN.POST_NMS_TOPK_TEST, **stats})
    print(f"| model | recall @ IoU {args.iou} | faces | images | proposals per image | "
          "median top objectness logit |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {100 * r['recall']:.1f} | {r['faces']} | {r['images']} | "
              f"{r['proposals_per_image']} | {r['median_top_logit']:.2f} |")
    if args.output:
        atomic_write_json(args.output, {"dataset": args.dataset, "iou": args.iou,
                                        "min_face": args.min_face, "rows": rows})


if __name__ == "__main__":
    main(get_parser().parse_args())
