# Copyright (c) facecraft_d2 contributors.
"""Helpers of the RPN + Fast R-CNN tests: configs from configs/rcnn and synthetic inputs."""
import os

import torch

from detectron2.config import get_cfg
from detectron2.structures import Boxes, Instances

from facecraft_d2 import add_facecraft_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RCNN_CONFIGS = os.path.join(ROOT, "configs", "rcnn")


def rcnn_cfg(config="Base-ZF-RCNN.yaml", *opts):
    """A config of configs/rcnn on the CPU, made small (narrow ZF, few RoIs) for tests."""
    cfg = get_cfg()
    add_facecraft_config(cfg)
    cfg.merge_from_file(os.path.join(RCNN_CONFIGS, config))
    cfg.merge_from_list(
        ["MODEL.DEVICE", "cpu", "MODEL.ZF.WIDTH_MULT", 0.125, "MODEL.ROI_HEADS.BATCH_SIZE_PER_IMAGE", 32,
         "MODEL.RPN.BATCH_SIZE_PER_IMAGE", 64, "MODEL.ROI_BOX_HEAD.FC_DIM", 32, *opts]
    )
    return cfg


def synthetic_inputs(seed=0, sizes=((96, 128), (80, 112))):
    """
    Two images with faces and precomputed proposals, as DatasetMapper would give them.

    Returns:
        list[dict]: "image" (3, H, W) uint8-range floats, "instances" (gt_boxes,
        gt_classes), "proposals" (proposal_boxes (20, 4), objectness_logits (20,)),
        "height", "width".
    """
    g = torch.Generator().manual_seed(seed)
    inputs = []
    for h, w in sizes:
        gt = torch.tensor([[10.0, 12.0, 50.0, 52.0], [60.0, 20.0, 92.0, 52.0]])
        inst = Instances((h, w), gt_boxes=Boxes(gt), gt_classes=torch.zeros(2, dtype=torch.int64))
        jitter = (torch.rand(10, 2, 4, generator=g) - 0.5) * 16
        boxes = (gt[None] + jitter).reshape(-1, 4)
        boxes = torch.cat([boxes[:, :2].min(boxes[:, 2:]), boxes[:, :2].max(boxes[:, 2:]) + 1], 1)
        props = Instances(
            (h, w), proposal_boxes=Boxes(boxes.clamp(0, min(h, w) - 1)),
            objectness_logits=torch.rand(20, generator=g),
        )
        image = torch.rand(3, h, w, generator=g) * 255
        inputs.append({"image": image, "instances": inst, "proposals": props, "height": h, "width": w})
    return inputs
