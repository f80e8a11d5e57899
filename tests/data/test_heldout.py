# Copyright (c) facecraft_d2 contributors.
import cv2
import numpy as np
import torch

from detectron2.data import DatasetCatalog
from detectron2.structures import BoxMode

from facecraft_d2.config import build_config
from facecraft_d2.data import split_train_val
from facecraft_d2.data.heldout import load_heldout_images


def test_heldout_images_are_the_validation_split_with_faces_and_ignore_regions(tmp_path):
    dicts = []
    for i in range(100):
        path = str(tmp_path / f"{i}.jpg")
        cv2.imwrite(path, np.full((40, 60, 3), i, np.uint8))
        dicts.append({"file_name": path, "image_id": f"heldout_test_{i}", "height": 40, "width": 60,
                      "annotations": [
                          {"bbox": [2, 3, 30, 30], "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": 0},
                          {"bbox": [40, 5, 10, 10], "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": 0},
                          {"bbox": [0, 0, 50, 30], "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": 1}]})
    DatasetCatalog.register("heldout_test_set", lambda: dicts)
    cfg = build_config("configs/cascade/separate_x48.yaml", device="cpu")
    _, val = split_train_val(dicts, cfg.MODEL.FACECRAFT.SAMPLER.VAL_FRACTION)
    assert 1 <= len(val) < 100

    images, gts = load_heldout_images(cfg, 100, dataset="heldout_test_set")

    assert len(images) == len(gts) == len(val)
    for img, (faces, ignore), d in zip(images, gts, val):
        assert img.dtype == torch.uint8 and img.shape == (3, 40, 60)
        assert int(img[0, 0, 0]) == int(d["file_name"].split("/")[-1][:-4])  # the image's own pixels
        # 30 px face kept (min face 24); the 10 px face and the crowd are ignore regions
        assert torch.equal(faces, torch.tensor([[2.0, 3.0, 32.0, 33.0]]))
        assert ignore.shape == (2, 4)
    assert len(load_heldout_images(cfg, 1, dataset="heldout_test_set")[0]) == 1
