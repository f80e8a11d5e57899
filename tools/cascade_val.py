#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Patch-level validation of a FaceCraft cascade on the held-out split of its training data
(MODEL.FACECRAFT.SAMPLER.VAL_FRACTION of the images, never trained on): for each branch,
the face recall and the background pass rate at several thresholds, and what the cascade
keeps before x48 at the training thresholds. (Whole-image detection on the same split, and
the choice of the test thresholds: tools/tune_cascade.py.)

    python tools/cascade_val.py --config-file configs/cascade/joint.yaml \
        MODEL.WEIGHTS output/cascade/joint/model_final.pth
"""
import torch
import torch.nn.functional as F

from detectron2.data import DatasetCatalog
from detectron2.engine import default_argument_parser

from facecraft_d2.config import build_config
from facecraft_d2.data import CascadeWindowSampler, split_train_val
from facecraft_d2.model_zoo import load_model
from facecraft_d2.modeling.cascade import BRANCHES


def collect_patches(cfg, num_images, seed=0):
    dicts = [d for n in cfg.DATASETS.TRAIN for d in DatasetCatalog.get(n)]
    _, val = split_train_val(dicts, cfg.MODEL.FACECRAFT.SAMPLER.VAL_FRACTION)
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.FACECRAFT.SAMPLER.FLIP = False
    sampler = CascadeWindowSampler(cfg)
    gen = torch.Generator().manual_seed(seed)
    outs = [sampler(d, generator=gen) for d in val[:num_images]]
    return {k: torch.cat([o[k] for o in outs]) for k in ("images", "ious", "deltas")}, len(val)


@torch.no_grad()
def evaluate(model, patches, batch=1024):
    model.eval()
    probs = {b: [] for b in BRANCHES}
    for i in range(0, len(patches["ious"]), batch):
        out = model.net(model.normalize(patches["images"][i : i + batch]))
        for b in BRANCHES:
            probs[b].append(F.softmax(out[b][0], dim=1)[:, 1])
    return {b: torch.cat(p) for b, p in probs.items()}


def main():
    parser = default_argument_parser()
    parser.add_argument("--num-images", type=int, default=60)
    args = parser.parse_args()
    cfg = build_config(args.config_file, args.opts, device="cpu")
    model = load_model(cfg)
    patches, n_val = collect_patches(cfg, args.num_images)
    probs = evaluate(model, patches)
    fc = cfg.MODEL.FACECRAFT
    ious = patches["ious"]
    neg = ious < fc.NEG_IOU
    print(f"{len(ious)} patches from {min(args.num_images, n_val)} of {n_val} validation images")
    passed = torch.ones_like(neg)
    for i, b in enumerate(BRANCHES):
        pos = ious > fc.POS_IOU[i]
        p = probs[b]
        line = [f"{b}: {int(pos.sum())} faces (IoU>{fc.POS_IOU[i]}), {int(neg.sum())} background"]
        for t in (0.003, 0.1, 0.5):
            line.append(f"@{t}: recall {float((p[pos] >= t).float().mean()):.3f} "
                        f"bg-pass {float((p[neg] >= t).float().mean()):.4f}")
        if i < 2:
            passed = passed & (p >= fc.TRAIN_THRESHOLDS[i])
        print(" | ".join(line))
    print(f"cascade at the training thresholds keeps {float(passed[ious > fc.POS_IOU[2]].float().mean()):.3f} "
          f"of faces and {float(passed[neg].float().mean()):.4f} of background before x48")


if __name__ == "__main__":
    main()
