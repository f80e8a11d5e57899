# Copyright (c) facecraft_d2 contributors.
"""MTCNNDetector (facenet-pytorch's MTCNN) as a Detectron2 model, on a real photo, offline."""
import cv2
import numpy as np
import pytest
import torch

# The single face of matplotlib's grace_hopper.jpg (512 x 600), XYXY.
GRACE_HOPPER_FACE = (170.0, 110.0, 354.0, 328.0)

pytestmark = pytest.mark.usefixtures("no_network")


def to_input(image_hwc, **extra):
    """(H, W, 3) ndarray -> Detectron2 input dict with a (3, H, W) uint8 tensor."""
    return dict(image=torch.as_tensor(np.ascontiguousarray(image_hwc.transpose(2, 0, 1))), **extra)


def iou(a, b):
    """IoU of two XYXY boxes."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_defaults_are_the_comparison_settings(mtcnn_detector):
    assert mtcnn_detector.min_face_size == 24 and mtcnn_detector.factor == pytest.approx(0.709)
    assert mtcnn_detector.thresholds == pytest.approx([0.6, 0.7, 0.7])
    m = mtcnn_detector.mtcnn
    assert (m.min_face_size, m.factor, m.keep_all, m.post_process) == (24, 0.709, True, False)
    assert not mtcnn_detector.training


def test_one_face_at_the_right_place(mtcnn_detector, grace_hopper_bgr):
    (out,) = mtcnn_detector([to_input(grace_hopper_bgr)])
    inst = out["instances"]
    assert inst.image_size == (600, 512)
    assert len(inst) == 1
    assert float(inst.scores[0]) > 0.99
    assert inst.pred_classes.tolist() == [0]
    assert iou(inst.pred_boxes.tensor[0].tolist(), GRACE_HOPPER_FACE) > 0.85


def test_channel_order_matters(mtcnn_detector, grace_hopper_bgr):
    # the wrapper converts BGR to RGB: the image given as BGR scores higher than its RGB twin
    bgr = mtcnn_detector.detect_bgr(grace_hopper_bgr)[1]
    swapped = mtcnn_detector.detect_bgr(np.ascontiguousarray(grace_hopper_bgr[:, :, ::-1]))[1]
    assert bgr.max() > swapped.max()


def test_honours_height_width(mtcnn_detector, grace_hopper_bgr):
    half = cv2.resize(grace_hopper_bgr, (256, 300), interpolation=cv2.INTER_AREA)
    (out,) = mtcnn_detector([to_input(half, height=600, width=512)])
    inst = out["instances"]
    assert inst.image_size == (600, 512) and len(inst) == 1
    assert iou(inst.pred_boxes.tensor[0].tolist(), GRACE_HOPPER_FACE) > 0.8


@pytest.mark.parametrize("shape", [(200, 300), (23, 40), (12, 12), (5, 7)])
def test_no_face_uniform_and_tiny_images(mtcnn_detector, shape):
    outputs = mtcnn_detector([to_input(np.full(shape + (3,), 128, np.uint8))])
    inst = outputs[0]["instances"]
    assert len(inst) == 0 and inst.image_size == shape
    assert inst.pred_boxes.tensor.shape == (0, 4) and inst.scores.shape == (0,)


def test_tiny_random_image(mtcnn_detector):
    noise = np.random.RandomState(0).randint(0, 256, (30, 40, 3)).astype(np.uint8)
    (out,) = mtcnn_detector([to_input(noise)])
    assert out["instances"].image_size == (30, 40)
