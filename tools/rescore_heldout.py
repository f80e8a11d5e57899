#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Could a cascade's own detections be ranked or placed better than its test settings do?

On the held-out WIDER train images (as ``tools/tune_cascade.py``), the cascade runs without
its final NMS and keeps every detection with its face probability at x12, x24 and x48. The
images after the first ``--eval-images`` fit two corrections:

- a logistic regression of "covers a face at IoU >= 0.5" on the three stages' logits (with
  ``--size``, also on log2 of the box side): a learnt final score in place of the config's
  geometric mean (``MODEL.FACECRAFT.TEST.SCORE_STAGES``);
- one box correction: the median centre shift and width / height factors from each
  detection (score >= 0.5) to the face it overlaps at IoU >= 0.4.

Then the first ``--eval-images`` images are scored (final NMS at the config's IoU, average
precision, recall at ``--fp-per-image`` false positives per image, recall at any score) with
the config's scores, x48's alone, the learnt score, and the config's scores on corrected boxes.

    DETECTRON2_DATASETS=../data/train_root .venv/bin/python tools/rescore_heldout.py \
        --config-file configs/cascade/joint.yaml --max-images 341 MODEL.WEIGHTS facecraft://cascade_joint
"""
import json
import os

import torch
import torch.nn.functional as F
from torchvision.ops import nms

from detectron2.engine import default_argument_parser

import facecraft_d2  # noqa: F401  registers the datasets
from facecraft_d2.evaluation.heldout_metrics import match_detections, summarize_matches
from facecraft_d2.evaluation.run import build_heldout_run
from facecraft_d2.layers import best_match
from facecraft_d2.utils.io import atomic_write_json


def collect(model, images):
    """Every detection before the final NMS: [(boxes (K, 4), probs (K, 3))] per image."""
    pipeline = model.inference_pipeline
    pipeline.nms_thresh, pipeline.containment_thresh, pipeline.max_detections = 1.01, 1.0, 10 ** 9
    out = []
    with torch.inference_mode():
        for img in images:
            (boxes, _, probs), = pipeline(model, [img], with_probs=True)
            if probs.shape[1] < 3:  # no box reached x48
                boxes, probs = boxes.new_zeros((0, 4)), probs.new_zeros((0, 3))
            out.append((boxes.clone(), probs.clone()))
    return out


def features(boxes, probs, size):
    """(K, 3 or 4): the stages' logits, and log2 of the box side / 24 with ``size``."""
    cols = [torch.logit(probs, eps=1e-6)]
    if size:
        side = ((boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])).clamp(min=1).sqrt()
        cols.append(torch.log2(side / 24)[:, None])
    return torch.cat(cols, dim=1)


def fit_score(dets, gts, size):
    """A logistic regression (L-BFGS) of detection-covers-a-face -> score function."""
    xs, ys, ws = [], [], []
    for (boxes, probs), (faces, ignore) in zip(dets, gts):
        label = (best_match(boxes, faces)[0] >= 0.5).float()
        weight = torch.ones(len(boxes))
        on_ignore = best_match(boxes, ignore)[0] >= 0.3  # background there teaches nothing
        weight[on_ignore & (label == 0)] = 0
        xs.append(features(boxes, probs, size))
        ys.append(label)
        ws.append(weight)
    x, y, w = torch.cat(xs), torch.cat(ys), torch.cat(ws)
    mean, std = x.mean(0), x.std(0).clamp(min=1e-6)
    coef = torch.zeros(x.shape[1], requires_grad=True)
    bias = torch.zeros(1, requires_grad=True)
    opt = torch.optim.LBFGS([coef, bias], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        z = (x - mean) / std @ coef + bias
        loss = (F.binary_cross_entropy_with_logits(z, y, reduction="none") * w).sum() / w.sum()
        loss = loss + 1e-4 * coef.pow(2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    coef, bias = coef.detach(), bias.detach()
    info = {"coef_per_feature": (coef / std).tolist(), "positives": int(y.sum()), "detections": len(y)}
    return (lambda boxes, probs: torch.sigmoid((features(boxes, probs, size) - mean) / std @ coef + bias)), info


def fit_box_correction(dets, gts, score_fn):
    """Median (dx, dy) centre shift in box widths / heights and (sw, sh) size factors."""
    rows = []
    for (boxes, probs), (faces, _) in zip(dets, gts):
        best, j = best_match(boxes, faces)
        sel = (best >= 0.4) & (score_fn(boxes, probs) >= 0.5)
        if not sel.any():
            continue
        b, f = boxes[sel], faces[j[sel]]
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
        rows.append(torch.stack([
            ((f[:, 0] + f[:, 2]) - (b[:, 0] + b[:, 2])) / 2 / w,
            ((f[:, 1] + f[:, 3]) - (b[:, 1] + b[:, 3])) / 2 / h,
            (f[:, 2] - f[:, 0]) / w,
            (f[:, 3] - f[:, 1]) / h,
        ], dim=1))
    if not rows:  # no detection near a face: no correction
        return [0.0, 0.0, 1.0, 1.0]
    return torch.cat(rows).median(0).values.tolist()


def correct_boxes(boxes, correction):
    """(K, 4) XYXY boxes moved by (dx, dy) of their size and scaled by (sw, sh)."""
    dx, dy, sw, sh = correction
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    cx, cy = boxes[:, 0] + w * (0.5 + dx), boxes[:, 1] + h * (0.5 + dy)
    return torch.stack([cx - w * sw / 2, cy - h * sh / 2, cx + w * sw / 2, cy + h * sh / 2], dim=1)


def evaluate(dets, gts, score_fn, nms_thresh, fp_per_image, correction=None):
    per_image, num_faces = [], 0
    for (boxes, probs), (faces, ignore) in zip(dets, gts):
        scores = score_fn(boxes, probs)
        if correction is not None:
            boxes = correct_boxes(boxes, correction)
        keep = nms(boxes, scores, nms_thresh)
        per_image.append(match_detections(boxes[keep], scores[keep], faces, ignore))
        num_faces += len(faces)
    return summarize_matches(per_image, num_faces, fp_per_image)


def main():
    p = default_argument_parser()
    p.add_argument("--max-images", type=int, default=341, help="held-out images in all")
    p.add_argument("--eval-images", type=int, default=150,
                   help="the first N images are scored; the others fit the corrections")
    p.add_argument("--size", action="store_true", help="the learnt score also sees the box size")
    p.add_argument("--fp-per-image", type=float, default=0.1)
    p.add_argument("--out", default=None, help="JSON file for every figure")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg, model, images, gts = build_heldout_run(args.config_file, args.opts, args.max_images)
    nms_thresh = model.inference_pipeline.nms_thresh
    final_scores = model.inference_pipeline.final_scores
    dets = collect(model, images)
    n = args.eval_images
    learnt, fit_info = fit_score(dets[n:], gts[n:], args.size)
    config_score = lambda boxes, probs: final_scores(probs)  # noqa: E731
    correction = fit_box_correction(dets[n:], gts[n:], config_score)
    variants = {
        "config scores": (config_score, None),
        "x48 alone": (lambda boxes, probs: probs[:, 2], None),
        "logistic regression": (learnt, None),
        "config scores, corrected boxes": (config_score, correction),
    }
    rows = {}
    for name, (fn, corr) in variants.items():
        rows[name] = {part: evaluate(d, g, fn, nms_thresh, args.fp_per_image, corr)
                      for part, d, g in (("eval", dets[:n], gts[:n]), ("fit", dets[n:], gts[n:]))}
        print(name, json.dumps({k: round(v["ap"], 4) for k, v in rows[name].items()}),
              json.dumps({k: round(v["recall_at_fp_rate"], 4) for k, v in rows[name].items()}))
    result = {"config": args.config_file, "weights": cfg.MODEL.WEIGHTS, "eval_images": n,
              "fit_images": len(images) - n, "regression": fit_info,
              "box_correction_dx_dy_sw_sh": correction, "rows": rows}
    print(json.dumps({"regression": fit_info, "box_correction_dx_dy_sw_sh": correction}))
    if args.out:
        os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
        atomic_write_json(args.out, result)


if __name__ == "__main__":
    main()
