# Copyright (c) facecraft_d2 contributors.
"""Proposal files: RPN proposals dumped on images, loaded back by Detectron2's data pipeline."""
import copy
import pickle

import numpy as np
import pytest
import torch

from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from detectron2.data.build import load_proposals_into_dataset
from detectron2.modeling import build_model
from detectron2.structures import BoxMode

from facecraft_d2.engine.proposals import compute_proposals, proposal_recall, save_proposals

from rcnn_common import rcnn_cfg


def test_proposal_dump_load_round_trip(tmp_path):
    torch.manual_seed(5)
    cfg = rcnn_cfg("Base-ZF-RCNN.yaml", "MODEL.RPN.POST_NMS_TOPK_TEST", 40)
    model = build_model(cfg).eval()
    # two "original" images, resized by 2 and 1.5 at test time as the test loader does
    originals = [(60, 80), (64, 96)]
    resize = [T.ResizeTransform(60, 80, 120, 160), T.ResizeTransform(64, 96, 96, 144)]
    g = torch.Generator().manual_seed(0)
    batch = [
        {"image": torch.rand(3, t.new_h, t.new_w, generator=g) * 255, "image_id": f"img{i}",
         "height": h, "width": w}
        for i, ((h, w), t) in enumerate(zip(originals, resize))
    ]
    dumped = compute_proposals(model, [batch[:1], batch[1:]])
    assert model.training is False and dumped["ids"] == ["img0", "img1"]
    assert dumped["bbox_mode"] == BoxMode.XYXY_ABS

    path = str(tmp_path / "props" / "proposals_train.pkl")
    save_proposals(dumped, path)
    with open(path, "rb") as f:
        assert pickle.load(f)["ids"] == ["img0", "img1"]

    # what the RPN proposes in the resized images (one image per batch, as dumped)
    raw = []
    with torch.no_grad():
        for x in batch:
            images = model.preprocess_image([x])
            raw += model.proposal_generator(images, model.backbone(images.tensor), None)[0]

    # Detectron2 loads the file into the dataset dicts (MODEL.LOAD_PROPOSALS) ...
    dataset = [{"image_id": f"img{i}", "height": h, "width": w} for i, (h, w) in enumerate(originals)]
    loaded = load_proposals_into_dataset(copy.deepcopy(dataset), path)
    for i, d in enumerate(loaded):
        boxes = dumped["boxes"][i]
        assert 0 < len(boxes) <= 40 and boxes.dtype == np.float32
        np.testing.assert_array_equal(d["proposal_boxes"], boxes)
        np.testing.assert_array_equal(d["proposal_objectness_logits"], dumped["objectness_logits"][i])
        assert (boxes[:, 2] <= originals[i][1]).all() and (boxes[:, 3] <= originals[i][0]).all()
        # ... and DatasetMapper maps them into the resized image: the RPN's own boxes again
        utils.transform_proposals(d, (resize[i].new_h, resize[i].new_w), T.TransformList([resize[i]]),
                                  proposal_topk=40)
        back = d["proposals"].proposal_boxes.tensor
        expected = raw[i].proposal_boxes.tensor
        expected = expected[raw[i].proposal_boxes.nonempty()]
        assert back.shape == expected.shape
        assert torch.allclose(back, expected, atol=1e-3)
        assert torch.allclose(d["proposals"].objectness_logits, raw[i].objectness_logits[: len(back)])


def test_proposal_recall_counts_covered_faces():
    """Faces covered at IoU >= 0.5 by some proposal of their image; crowd boxes and images
    without proposals are not counted; the median of each image's top logit."""
    def ann(box, crowd=0):
        return {"bbox": box, "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": crowd}

    dicts = [
        {"image_id": 1, "annotations": [ann([0, 0, 10, 10]), ann([50, 50, 10, 10]),
                                        ann([0, 40, 10, 10], crowd=1)]},
        {"image_id": "2", "annotations": [ann([20, 20, 20, 20])]},
        {"image_id": 3, "annotations": [ann([0, 0, 5, 5])]},  # no proposals dumped
    ]
    props = {
        "ids": [1, "2"],
        "boxes": [np.array([[0, 0, 10, 11], [0, 40, 10, 50], [55, 55, 65, 65]], np.float32),
                  np.array([[20, 20, 40, 40]], np.float32)],
        "objectness_logits": [np.array([2.0, 1.0, 0.5], np.float32), np.array([-1.0], np.float32)],
    }
    r = proposal_recall(props, dicts, iou_thresh=0.5)
    # image 1: face 1 IoU 0.91 (covered), face 2 IoU 25/175 = 0.14 (not), the crowd box not
    # counted; image 2: covered
    assert (r["faces"], r["covered"], r["images"]) == (3, 2, 2)
    assert r["recall"] == pytest.approx(2 / 3) and r["median_top_logit"] == pytest.approx(0.5)
    assert proposal_recall(props, dicts, iou_thresh=0.95)["covered"] == 1
    # faces under 15 px not counted: the 10 px faces of image 1 drop out
    assert proposal_recall(props, dicts, min_face=15)["faces"] == 1
