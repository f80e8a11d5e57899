# Copyright (c) facecraft_d2 contributors.
"""PeerDetector's Detectron2 plumbing, on a fake peer (no third-party package needed)."""
import sys

import numpy as np
import pytest
import torch

from detectron2.evaluation import DatasetEvaluator, inference_on_dataset

from facecraft_d2.peers import PEER_DETECTOR_REGISTRY, PeerDetector, build_peer_detector



def to_input(image_hwc, **extra):
    """(H, W, 3) ndarray -> Detectron2 input dict with a (3, H, W) uint8 tensor."""
    return dict(image=torch.as_tensor(np.ascontiguousarray(image_hwc.transpose(2, 0, 1))), **extra)


class _FakePeer(PeerDetector):
    """Returns fixed boxes (unsorted scores) and records the images it was given."""

    def __init__(self, boxes, scores, **kwargs):
        super().__init__(**kwargs)
        self.boxes, self.scores, self.seen = boxes, scores, []

    def detect_bgr(self, image):
        self.seen.append(image)
        return np.asarray(self.boxes, np.float32), np.asarray(self.scores, np.float32)


def _image(h=40, w=60):
    """(H, W, 3) uint8 with distinct B, G, R planes."""
    img = np.zeros((h, w, 3), np.uint8)
    img[..., 0], img[..., 1], img[..., 2] = 10, 20, 30
    return img


def test_instances_sorted_clipped_and_typed():
    peer = _FakePeer([[1, 2, 11, 12], [-5, 30, 70, 50], [5, 5, 5, 9]], [0.2, 0.9, 0.5])
    (out,) = peer([to_input(_image())])
    inst = out["instances"]
    assert inst.image_size == (40, 60)
    # the empty box (zero width) is dropped, the rest clipped to the image and sorted
    assert inst.scores.tolist() == pytest.approx([0.9, 0.2])
    assert inst.pred_boxes.tensor.tolist() == [[0, 30, 60, 40], [1, 2, 11, 12]]
    assert inst.pred_classes.dtype == torch.long and inst.pred_classes.tolist() == [0, 0]
    assert peer.seen[0].shape == (40, 60, 3) and peer.seen[0].dtype == np.uint8
    assert peer.seen[0].flags["C_CONTIGUOUS"]


def test_rescales_to_height_width():
    peer = _FakePeer([[10, 4, 20, 8]], [1.0])
    (out,) = peer([to_input(_image(20, 30), height=40, width=90)])
    assert out["instances"].image_size == (40, 90)
    assert out["instances"].pred_boxes.tensor.tolist() == [[30, 8, 60, 16]]


def test_rgb_input_is_converted_to_bgr():
    peer = _FakePeer(np.zeros((0, 4)), [], input_format="RGB")
    peer([to_input(_image()[:, :, ::-1])])  # an RGB image
    assert peer.seen[0][0, 0].tolist() == [10, 20, 30]  # BGR again
    with pytest.raises(ValueError):
        _FakePeer([], [], input_format="YUV")


def test_no_detection_gives_empty_instances():
    (out,) = _FakePeer(np.zeros((0, 4)), np.zeros(0))([to_input(_image())])
    inst = out["instances"]
    assert len(inst) == 0 and inst.pred_boxes.tensor.shape == (0, 4) and inst.scores.shape == (0,)


def test_works_with_inference_on_dataset():
    class _Collect(DatasetEvaluator):
        def reset(self):
            self.n = 0

        def process(self, inputs, outputs):
            self.n += len(outputs)

        def evaluate(self):
            return {"n": self.n}

    peer = _FakePeer([[1, 1, 9, 9]], [0.7])
    peer.train()
    loader = [[to_input(_image(), image_id=i)] for i in range(3)]
    assert inference_on_dataset(peer, loader, _Collect()) == {"n": 3}
    assert peer.training  # mode restored by inference_context


def test_registry_and_missing_package_message(monkeypatch):
    assert "mtcnn" in PEER_DETECTOR_REGISTRY
    with pytest.raises(KeyError, match="unknown peer detector 'nope'"):
        build_peer_detector("nope")
    monkeypatch.setitem(sys.modules, "facenet_pytorch", None)  # import fails
    hint = r"pip install --no-deps facenet-pytorch==2\.6\.0 requests"
    with pytest.raises(ImportError, match=hint):
        build_peer_detector("mtcnn")


def test_network_guard_blocks(no_network):
    import socket
    import urllib.request

    with pytest.raises(AssertionError, match="network"):
        socket.create_connection(("example.org", 80))
    with pytest.raises(AssertionError, match="network"):
        urllib.request.urlopen("http://example.org")
