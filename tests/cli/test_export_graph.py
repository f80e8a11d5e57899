# Copyright (c) facecraft_d2 contributors.
"""The whole fast-preset pipeline as one ONNX graph (facecraft_d2.export.onnx_graph): the same
detections as the PyTorch pipeline, any input size, empty results, the CLI format."""
import cv2
import matplotlib.cbook
import numpy as np
import pytest
import torch

from facecraft_d2 import FaceDetector
from facecraft_d2.cli import main
from facecraft_d2.export import GRAPH_FILE, CascadeGraph, OnnxCascadeGraphPipeline
from facecraft_d2.utils.testing import synthetic_face_image

# ONNX Runtime's anti-aliased Resize rounds 8-bit pyramid pixels a little differently from
# PyTorch's (measured on grace_hopper: boxes within 0.01 px, scores within 1e-4)
BOX_TOL = 0.5  # pixels
SCORE_TOL = 0.01


@pytest.fixture(scope="module")
def fast_model():
    return FaceDetector("cascade_joint", preset="fast", score_threshold=0.0).model


@pytest.fixture(scope="module")
def photo():
    """matplotlib's grace_hopper.jpg (600 x 512) as a (3, H, W) uint8 BGR tensor."""
    image = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    return torch.from_numpy(image).permute(2, 0, 1).contiguous()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``facecraft export --format onnx-graph`` (in-process) -> the graph's path."""
    out = tmp_path_factory.mktemp("graph")
    assert main(["export", "--model", "cascade_joint", "--format", "onnx-graph", "--out",
                 str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [GRAPH_FILE]
    return str(out / GRAPH_FILE)


def _by_score(boxes, scores):
    order = torch.argsort(scores, descending=True, stable=True)
    return boxes[order], scores[order]


def test_graph_in_pytorch_is_the_pipeline(fast_model, photo):
    """Run eagerly, the traced module gives the pipeline's detections exactly."""
    graph = CascadeGraph(fast_model).eval()
    synthetic = torch.from_numpy(synthetic_face_image(120, 160)).permute(2, 0, 1).contiguous()
    for image in (photo, synthetic):
        ref_b, ref_s = _by_score(*fast_model.detect([image])[0])
        with torch.no_grad():
            b, s = _by_score(*graph(image[None]))
        assert len(ref_s) > 0 and b.shape == ref_b.shape
        torch.testing.assert_close(b, ref_b, atol=1e-3, rtol=0)
        torch.testing.assert_close(s, ref_s, atol=1e-5, rtol=0)


def test_onnx_graph_matches_pytorch(fast_model, photo, exported):
    """ONNX Runtime on the one graph vs the PyTorch pipeline: the same faces above 0.3, on the
    photo at three sizes (the input size is dynamic)."""
    pipeline = OnnxCascadeGraphPipeline(exported, num_threads=1)
    for size in [None, (300, 256), (397, 611)]:
        image = photo if size is None else torch.from_numpy(cv2.resize(
            photo.permute(1, 2, 0).numpy(), size[::-1])).permute(2, 0, 1).contiguous()
        ref_b, ref_s = fast_model.detect([image])[0]
        b, s = pipeline(fast_model, [image])[0]
        assert b.dtype == torch.float32 and b.shape[1] == 4 and s.shape == (len(b),)
        ref_b, ref_s = ref_b[ref_s >= 0.3], ref_s[ref_s >= 0.3]
        b, s = b[s >= 0.3], s[s >= 0.3]
        assert len(ref_s) >= 1 and len(s) == len(ref_s), (size, s, ref_s)
        assert (b - ref_b).abs().max() <= BOX_TOL and (s - ref_s).abs().max() <= SCORE_TOL


def test_attach_onnx_graph_to_a_model(photo, exported):
    """A cascade whose pipeline is the graph: detect() and Detectron2-style inference."""
    from facecraft_d2.export import attach_onnx_graph

    detector = FaceDetector("cascade_joint", preset="fast")
    model = attach_onnx_graph(detector.model, exported)
    assert model.min_face == 24
    boxes, scores = model.detect([photo])[0]
    # grace_hopper: one face at the model's default threshold
    assert (scores >= detector.score_threshold).sum() == 1
    inst = model([{"image": photo}])[0]["instances"]
    assert len(inst) == len(scores) and torch.equal(inst.scores, scores)


def test_onnx_graph_small_and_empty_images(exported):
    """Images too small for any window, or with nothing left after a stage, give (0, 4) / (0,)."""
    pipeline = OnnxCascadeGraphPipeline(exported, num_threads=1)
    for shape in [(3, 11, 300), (3, 20, 20), (3, 64, 48)]:
        b, s = pipeline(None, [torch.zeros(shape, dtype=torch.uint8)])[0]
        assert b.shape == (0, 4) and s.shape == (0,)
    with pytest.raises(NotImplementedError):
        pipeline(None, [torch.zeros((3, 64, 64), dtype=torch.uint8)], upto="x12")


def test_graph_needs_the_fast_crop_mode(tmp_path, capsys):
    accurate = FaceDetector("cascade_joint", preset="accurate").model
    with pytest.raises(ValueError, match="fast crop mode"):
        CascadeGraph(accurate)
    # R-CNN models have no cascade pipeline to export: a one-line error, nothing written
    assert main(["export", "--model", "rcnn_two_step", "--format", "onnx-graph", "--out",
                 str(tmp_path / "x")]) != 0
    assert "FaceCraftCascade models, not JointRCNN" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
