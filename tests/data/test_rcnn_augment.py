# Copyright (c) facecraft_d2 contributors.
"""R-CNN training augmentation (data/rcnn_augment.py) on tiny synthetic images, and its loader
on a face-free fixture folder (background-only images must reach the batches)."""
import os

import numpy as np
import pytest
from detectron2.data import transforms as T

from facecraft_d2.config import build_config
from facecraft_d2.data.datasets.background import register_background_images
from facecraft_d2.data.rcnn_augment import (
    RandomGrayscale,
    RandomLumaSaturation,
    build_rcnn_train_augmentation,
    build_rcnn_train_loader,
)
from facecraft_d2.engine import Trainer

BASE = os.path.join(os.path.dirname(__file__), "..", "..", "configs", "rcnn", "Base-ZF-RCNN.yaml")


def rcnn_cfg(*opts):
    return build_config(BASE, ["MODEL.DEVICE", "cpu", *opts])


def _image(seed=0, h=6, w=5):
    return np.random.RandomState(seed).randint(0, 256, (h, w, 3), dtype=np.uint8)


def _apply(aug, image):
    return aug.get_transform(image).apply_image(image)


def test_grayscale_uses_the_luma_of_the_channel_order():
    img = np.zeros((2, 2, 3), np.uint8)
    img[..., 0] = 200  # pure blue in BGR, pure red in RGB
    bgr = _apply(RandomGrayscale(1.0, "BGR"), img)
    rgb = _apply(RandomGrayscale(1.0, "RGB"), img)
    assert (bgr == bgr[..., :1]).all() and (rgb == rgb[..., :1]).all()  # three equal channels
    assert bgr[0, 0, 0] == int(200 * 0.114) and rgb[0, 0, 0] == int(200 * 0.299)


def test_grayscale_probability_zero_keeps_the_image():
    img = _image()
    assert isinstance(RandomGrayscale(0.0).get_transform(img), T.NoOpTransform)
    np.testing.assert_array_equal(_apply(RandomGrayscale(0.0), img), img)
    with pytest.raises(ValueError, match="prob"):
        RandomGrayscale(1.5)


def test_saturation_blends_with_grey():
    img = _image(1)
    np.testing.assert_array_equal(_apply(RandomLumaSaturation(1.0, 1.0), img), img)
    grey = _apply(RandomLumaSaturation(0.0, 0.0), img)
    np.testing.assert_array_equal(grey, _apply(RandomGrayscale(1.0), img))
    more = _apply(RandomLumaSaturation(1.5, 1.5), img).astype(int)
    assert np.abs(more - grey.astype(int)).sum() > np.abs(img.astype(int) - grey.astype(int)).sum()
    with pytest.raises(ValueError, match="image_format"):
        RandomLumaSaturation(0.5, 1.5, "YUV")


def test_augmentation_list_follows_the_config():
    cfg = rcnn_cfg()
    augs = build_rcnn_train_augmentation(cfg)
    assert [type(a) for a in augs] == [
        T.ResizeShortestEdge, T.RandomFlip, T.RandomBrightness, T.RandomContrast,
        RandomLumaSaturation, RandomGrayscale,
    ]
    assert augs[-1].prob == cfg.INPUT.PHOTOMETRIC.GRAYSCALE_PROB > 0
    cfg.merge_from_list(["INPUT.PHOTOMETRIC.BRIGHTNESS", 0.0, "INPUT.PHOTOMETRIC.CONTRAST", 0.0,
                         "INPUT.PHOTOMETRIC.SATURATION", 0.0, "INPUT.PHOTOMETRIC.GRAYSCALE_PROB", 0.0])
    assert [type(a) for a in build_rcnn_train_augmentation(cfg)] == [T.ResizeShortestEdge, T.RandomFlip]


def test_trainer_loader_keeps_face_free_images(tmp_path, make_image):
    for i in range(3):
        make_image(tmp_path / "neg" / f"{i}.jpg", 80, 60)
    name = "rcnn_augment_negatives_fixture"
    register_background_images(name, str(tmp_path / "neg"))
    cfg = rcnn_cfg("DATASETS.TRAIN", (name,), "DATALOADER.NUM_WORKERS", 0,
                   "INPUT.MIN_SIZE_TRAIN", (48,), "SOLVER.IMS_PER_BATCH", 2)
    assert cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS is False  # the R-CNN configs keep them
    batch = next(iter(Trainer.build_train_loader(cfg)))
    assert len(batch) == 2
    for d in batch:
        assert d["image"].shape == (3, 48, 64) and len(d["instances"]) == 0
    assert type(build_rcnn_train_loader(cfg)) is type(Trainer.build_train_loader(cfg))
