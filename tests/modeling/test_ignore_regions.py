# Copyright (c) facecraft_d2 contributors.
"""Ignore regions of the R-CNN training: mapper flags, RPN anchor labels, Fast R-CNN proposals."""
import cv2
import numpy as np
import pytest
import torch

from detectron2.data import transforms as T
from detectron2.modeling import build_model
from detectron2.structures import Boxes, BoxMode, Instances, pairwise_iou
from detectron2.utils.events import EventStorage

from facecraft_d2.data.rcnn_augment import IgnoreRegionMapper
from facecraft_d2.modeling import IgnoreRegionRPN
from facecraft_d2.layers import covered_by_ignore
from facecraft_d2.modeling.ignore_regions import drop_ignored_proposals, split_ignore

from rcnn_common import rcnn_cfg, synthetic_inputs

IGNORE = ["MODEL.IGNORE_REGIONS.ENABLED", True, "MODEL.IGNORE_REGIONS.MIN_FACE", 16.0,
          "MODEL.PROPOSAL_GENERATOR.NAME", "IgnoreRegionRPN"]
FACE, TINY, CROWD = [10.0, 10.0, 50.0, 50.0], [70.0, 10.0, 78.0, 18.0], [60.0, 40.0, 120.0, 90.0]


def _gt(h=96, w=128):
    boxes = torch.tensor([FACE, TINY, CROWD])
    return Instances((h, w), gt_boxes=Boxes(boxes), gt_classes=torch.zeros(3, dtype=torch.int64),
                     gt_ignore=torch.tensor([False, True, True]))


def test_mapper_flags_crowds_and_faces_below_min_face_after_the_resize(tmp_path):
    path = tmp_path / "a.png"
    cv2.imwrite(str(path), np.random.default_rng(0).integers(0, 255, (96, 128, 3), dtype=np.uint8))
    annos = [{"bbox": b, "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0, "iscrowd": c}
             for b, c in ((FACE, 0), (TINY, 0), (CROWD, 1), ([20.0, 60.0, 38.0, 78.0], 0))]
    cfg = rcnn_cfg("Base-ZF-RCNN.yaml", *IGNORE)
    mapper = IgnoreRegionMapper(cfg, is_train=True, augmentations=[T.Resize((96, 128))])
    out = mapper({"file_name": str(path), "height": 96, "width": 128, "annotations": annos})
    inst = out["instances"]
    assert inst.gt_ignore.tolist() == [False, True, True, False]  # 18 px >= 16 > 8 px; crowd
    # at half the size the 18 px face is 9 px: an ignore region too
    half = IgnoreRegionMapper(cfg, is_train=True, augmentations=[T.Resize((48, 64))])
    out = half({"file_name": str(path), "height": 96, "width": 128, "annotations": annos})
    assert out["instances"].gt_ignore.tolist() == [False, True, True, True]
    np.testing.assert_allclose(out["instances"].gt_boxes.tensor[0].numpy(), [5, 5, 25, 25])


def test_split_and_coverage():
    faces, ignore = split_ignore(_gt())
    assert len(faces) == 1 and not faces.has("gt_ignore") and len(ignore) == 2
    boxes = Boxes(torch.tensor([[70.0, 50.0, 110.0, 80.0], [0.0, 0.0, 60.0, 60.0], [40.0, 30.0, 80.0, 70.0]]))
    assert covered_by_ignore(boxes, ignore, 0.5).tolist() == [True, False, False]  # 1.0, 0, 0.375
    plain = Instances((96, 128), gt_boxes=Boxes(torch.tensor([FACE])))
    assert split_ignore(plain)[0] is plain and len(split_ignore(plain)[1]) == 0


def test_rpn_never_samples_anchors_on_ignore_regions_as_background_nor_matches_them():
    model = build_model(rcnn_cfg("Base-ZF-RCNN.yaml", *IGNORE, "MODEL.RPN.BATCH_SIZE_PER_IMAGE", 100000))
    rpn = model.proposal_generator
    assert isinstance(rpn, IgnoreRegionRPN)
    anchors = rpn.anchor_generator([torch.zeros(1, 8, 6, 8)])
    gt = _gt()
    labels, matched = rpn.label_and_sample_anchors(anchors, [gt])
    all_anchors = Boxes.cat(anchors)
    on_ignore = covered_by_ignore(all_anchors, gt.gt_boxes[gt.gt_ignore], 0.5)
    assert on_ignore.sum() > 5 and (labels[0][on_ignore] != 0).all()
    assert (labels[0] == 0).sum() > 100  # elsewhere background as before
    pos = labels[0] == 1
    assert pos.any() and (matched[0][pos] == torch.tensor(FACE)).all()  # the face, never a crowd
    # without the flags the labels are those of detectron2's RPN (same random subsampling)
    plain = Instances((96, 128), gt_boxes=Boxes(torch.tensor([FACE, CROWD])))
    torch.manual_seed(0)
    mine = rpn.label_and_sample_anchors(anchors, [plain])[0][0]
    torch.manual_seed(0)
    base = super(IgnoreRegionRPN, rpn).label_and_sample_anchors(anchors, [plain])[0][0]
    assert torch.equal(mine, base)


def test_fast_rcnn_drops_background_proposals_on_ignore_regions_only():
    gt = _gt()
    props = Instances((96, 128), proposal_boxes=Boxes(torch.tensor(
        [[62.0, 42.0, 118.0, 88.0],    # on the crowd: background there, dropped
         [12.0, 10.0, 52.0, 50.0],     # the face
         [0.0, 60.0, 40.0, 95.0]])),   # plain background
        objectness_logits=torch.zeros(3))
    kept, faces = drop_ignored_proposals([props], [gt], ioa=0.5, bg_iou=0.5)
    assert kept[0].proposal_boxes.tensor[:, 0].tolist() == [12.0, 0.0]
    assert len(faces[0]) == 1 and pairwise_iou(faces[0].gt_boxes, Boxes(torch.tensor([FACE]))).item() == 1


def test_joint_rcnn_trains_with_ignore_regions_and_refuses_a_plain_rpn():
    inputs = synthetic_inputs()
    for x in inputs:
        g = x["instances"]
        g.gt_ignore = torch.tensor([False, True])
    torch.manual_seed(0)
    cfg = rcnn_cfg("Base-ZF-RCNN.yaml")
    assert cfg.MODEL.IGNORE_REGIONS.ENABLED and cfg.MODEL.PROPOSAL_GENERATOR.NAME == "IgnoreRegionRPN"
    model = build_model(cfg).train()
    with EventStorage():
        losses = model(inputs)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    plain = build_model(rcnn_cfg("Base-ZF-RCNN.yaml", "MODEL.PROPOSAL_GENERATOR.NAME", "RPN")).train()
    with EventStorage(), pytest.raises(ValueError, match="IgnoreRegionRPN"):
        plain(inputs)
