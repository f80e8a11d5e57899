# Copyright (c) facecraft_d2 contributors.
"""Fixtures for the evaluator tests: throw-away datasets and fake model outputs."""

import uuid

import numpy as np
import pytest
import torch

from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import Boxes, BoxMode, Instances


@pytest.fixture
def register_dataset():
    """
    ``register_dataset(dicts, **metadata)`` registers ``dicts`` under a unique name and
    returns it; the dataset and its metadata are removed after the test.
    """
    names = []

    def _register(dicts, **metadata):
        name = "facecraft_eval_test_" + uuid.uuid4().hex[:10]
        DatasetCatalog.register(name, lambda: dicts)
        MetadataCatalog.get(name).set(**metadata)
        names.append(name)
        return name

    yield _register
    for name in names:
        DatasetCatalog.remove(name)
        MetadataCatalog.remove(name)


@pytest.fixture
def make_record():
    """``make_record(image_id, boxes_xyxy, height=480, width=640, iscrowd=None, ellipses=None)``."""

    def _make(image_id, boxes, height=480, width=640, iscrowd=None, ellipses=None):
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        iscrowd = [0] * len(boxes) if iscrowd is None else iscrowd
        annotations = []
        for i, box in enumerate(boxes):
            ann = {
                "bbox": box.tolist(),
                "bbox_mode": BoxMode.XYXY_ABS,
                "category_id": 0,
                "iscrowd": int(iscrowd[i]),
            }
            if ellipses is not None:
                ann["ellipse"] = list(ellipses[i])
            annotations.append(ann)
        return {
            "file_name": "/nonexistent/{}.jpg".format(image_id),
            "image_id": image_id,
            "height": height,
            "width": width,
            "annotations": annotations,
        }

    return _make


@pytest.fixture
def run_evaluator():
    """
    ``run_evaluator(evaluator, {image_id: (boxes_xyxy (N, 4), scores (N,))}, sizes=None)``
    feeds fake model outputs image by image and returns ``evaluator.evaluate()``.
    """

    def _run(evaluator, detections, height=480, width=640):
        evaluator.reset()
        for image_id, (boxes, scores) in detections.items():
            boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
            inst = Instances((height, width))
            inst.pred_boxes = Boxes(boxes)
            inst.scores = torch.as_tensor(np.asarray(scores, dtype=np.float32).reshape(-1))
            inst.pred_classes = torch.zeros(len(boxes), dtype=torch.int64)
            evaluator.process(
                [{"image_id": image_id, "height": height, "width": width}], [{"instances": inst}]
            )
        return evaluator.evaluate()

    return _run
