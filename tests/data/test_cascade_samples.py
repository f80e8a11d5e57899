# Copyright (c) facecraft_d2 contributors.
"""Sample categories and their IoU bands, candidate squares, labelling with ignore regions."""
import math

import pytest
import torch

from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import BoxMode

from facecraft_d2.data.cascade_samples import (
    IGNORED,
    NEGATIVE,
    PART,
    POSITIVE,
    candidate_boxes,
    categorize,
    faces_and_ignore,
    inside_image,
    label_boxes,
)

BOX2BOX = Box2BoxTransform(weights=(1.0, 1.0, 1.0, 1.0))


def test_categorize_bands_and_edges():
    ious = torch.tensor([0.0, 0.29, 0.3, 0.39, 0.4, 0.64, 0.65, 1.0])
    cat = categorize(ious, pos_iou=0.65, part_iou=0.4, neg_iou=0.3)
    assert cat.tolist() == [NEGATIVE, NEGATIVE, IGNORED, IGNORED, PART, PART, POSITIVE, POSITIVE]
    with pytest.raises(ValueError):
        categorize(ious, pos_iou=0.4, part_iou=0.65, neg_iou=0.3)


def test_faces_and_ignore_splits_small_and_crowd():
    d = {"annotations": [
        {"bbox": [10, 10, 40, 40], "bbox_mode": BoxMode.XYWH_ABS},  # 40 px face
        {"bbox": [100, 100, 10, 10], "bbox_mode": BoxMode.XYWH_ABS},  # too small
        {"bbox": [0, 0, 50, 50], "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": 1},
        {"bbox": [5, 5, 0, 8], "bbox_mode": BoxMode.XYWH_ABS},  # degenerate: dropped
    ]}
    faces, ignore = faces_and_ignore(d, min_face=20)
    assert faces.tolist() == [[10, 10, 50, 50]]
    assert sorted(ignore.tolist()) == [[0, 0, 50, 50], [100, 100, 110, 110]]


def test_candidates_cover_every_category_around_a_face():
    faces = torch.tensor([[100.0, 100.0, 160.0, 172.0]])
    gen = torch.Generator().manual_seed(0)
    boxes = candidate_boxes(faces, 400, 500, num_random=200, per_face=200, near_per_face=100,
                            min_side=12, shift=0.2, log_scale=0.2, generator=gen)
    side = boxes[:, 2] - boxes[:, 0]
    assert torch.allclose(side, boxes[:, 3] - boxes[:, 1]) and (side >= 12).all()  # squares
    lab = label_boxes(boxes, faces, faces.new_zeros((0, 4)), BOX2BOX)
    counts = torch.bincount(categorize(lab["ious"]) + 1, minlength=4)
    assert (counts[1:] > 10).all(), counts  # negatives, parts and positives all present
    # random squares lie inside the image
    rand = boxes[-200:]
    assert (rand[:, :2] >= 0).all() and (rand[:, 2] <= 500).all() and (rand[:, 3] <= 400).all()


def test_label_boxes_targets_decode_to_the_face_and_ignore_rule():
    faces = torch.tensor([[100.0, 100.0, 160.0, 172.0], [300.0, 50.0, 340.0, 90.0]])
    ignore = torch.tensor([[0.0, 0.0, 40.0, 40.0]])
    boxes = torch.tensor([
        [105.0, 110.0, 165.0, 170.0],  # near face 0
        [302.0, 48.0, 342.0, 88.0],  # near face 1
        [0.0, 0.0, 30.0, 30.0],  # inside the ignore region: no negative
        [200.0, 200.0, 260.0, 260.0],  # plain background
    ])
    lab = label_boxes(boxes, faces, ignore, BOX2BOX, neg_iou=0.3, ignore_ioa=0.3)
    assert lab["keep"].tolist() == [True, True, False, True]
    decoded = BOX2BOX.apply_deltas(lab["deltas"][:2], lab["boxes"][:2])
    torch.testing.assert_close(decoded, faces, atol=1e-3, rtol=0)
    assert lab["ious"][2].item() == 0.0
    # an image without faces: everything is background with zero targets
    lab = label_boxes(boxes, faces.new_zeros((0, 4)), faces.new_zeros((0, 4)), BOX2BOX)
    assert lab["keep"].all() and (lab["ious"] == 0).all() and (lab["deltas"] == 0).all()


def test_inside_image_tolerance():
    boxes = torch.tensor([[-5.0, 0.0, 35.0, 40.0], [-15.0, 0.0, 25.0, 40.0], [70.0, 70.0, 110.0, 110.0]])
    assert inside_image(boxes, 100, 100, max_outside=0.25).tolist() == [True, False, True]
    assert math.isclose(0.25 * 40, 10.0)
