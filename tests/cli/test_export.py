# Copyright (c) facecraft_d2 contributors.
"""ONNX export round trip: same boxes as PyTorch within a stated tolerance."""
import json

import numpy as np
import pytest
import torch

from facecraft_d2 import FaceDetector
from facecraft_d2.cli import main
from facecraft_d2.utils.testing import synthetic_face_image

from .conftest import run_facecraft

BOX_TOL = 1e-2  # pixels; measured differences are about 1e-4 (float32 rounding)
SCORE_TOL = 1e-4


def test_export_round_trip_via_cli(tmp_path, small_photo, capsys):
    """``facecraft export`` (in-process), then ``facecraft detect --backend onnxruntime``
    (subprocess, JSON on stdout) against PyTorch."""
    exported = tmp_path / "cascade_joint_onnx"
    assert main(["export", "--model", "cascade-joint", "--format", "onnx", "--out",
                 str(exported)]) == 0
    assert str(exported) in capsys.readouterr().out
    assert sorted(p.name for p in exported.iterdir()) == [
        "facecraft_onnx.json", "x12.onnx", "x24.onnx", "x48.onnx"]
    ort_run = run_facecraft("detect", small_photo, "--json", "--threshold", "0.05",
                            "--backend", "onnxruntime", "--model", exported)
    assert ort_run.returncode == 0, ort_run.stderr
    assert json.loads(ort_run.stdout)["backend"] == "onnxruntime"
    b = json.loads(ort_run.stdout)["images"][0]["faces"]
    ref = FaceDetector("cascade_joint", score_threshold=0.05).detect(str(small_photo))
    assert len(ref) == len(b) > 0
    boxes = np.array([f["box"] for f in b])  # JSON boxes are rounded to 0.01 px
    assert np.abs(ref.boxes - boxes).max() <= BOX_TOL / 2 + 0.005
    assert np.abs(ref.scores - np.array([f["score"] for f in b])).max() <= SCORE_TOL


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    cache = tmp_path_factory.mktemp("cache")
    mp = pytest.MonkeyPatch()
    mp.setenv("FACECRAFT_CACHE", str(cache))
    try:
        yield (FaceDetector("cascade_joint", score_threshold=0.0),
               FaceDetector("cascade_joint", score_threshold=0.0, backend="onnxruntime"))
    finally:
        mp.undo()


def test_dynamic_input_sizes(both):
    """x12 runs on any image size; x24 / x48 on any number of crops."""
    torch_det, ort_det = both
    net, sessions = torch_det.model.net, ort_det.model.net.sessions
    for shape in [(1, 3, 12, 12), (2, 3, 37, 64), (1, 3, 101, 77)]:
        x = torch.randn(*shape)
        ref = net.x12_dense(x)
        out = sessions["x12"].run(None, {"images": x.numpy()})
        for r, o in zip(ref, out):
            assert r.shape == o.shape
            np.testing.assert_allclose(r.detach().numpy(), o, atol=1e-4)
    for stage, size in (("x24", 24), ("x48", 48)):
        for n in (1, 7):
            x = torch.randn(n, 3, size, size)
            ref = net(x, upto=stage)[stage]
            out = sessions[stage].run(None, {"patches": x.numpy()})
            for r, o in zip(ref, out):
                np.testing.assert_allclose(r.detach().numpy(), o, atol=1e-4)


@pytest.mark.parametrize("size,seed", [((96, 128), 0), ((150, 90), 3)])
def test_same_boxes_as_torch(both, size, seed):
    torch_det, ort_det = both
    img = synthetic_face_image(*size, seed=seed)
    a, b = torch_det.detect(img), ort_det.detect(img)
    assert len(a) == len(b)
    if len(a):
        diff = np.abs(a.boxes - b.boxes).max()
        print(f"ONNX vs torch on {size}: {len(a)} boxes, max box diff {diff:.2e} px")
        assert diff <= BOX_TOL
        assert np.abs(a.scores - b.scores).max() <= SCORE_TOL


def test_onnxruntime_inputs_are_nchw(both):
    """attach_onnxruntime normalizes straight into NCHW arrays (no channels-last round trip):
    the same boxes, bit for bit, as with channels-last inputs."""
    pipe = both[1].model.inference_pipeline
    assert pipe.memory_format == torch.contiguous_format
    img = synthetic_face_image(96, 128, seed=0)
    nchw = both[1].detect(img, format="BGR")
    pipe.memory_format = torch.channels_last
    try:
        channels_last = both[1].detect(img, format="BGR")
    finally:
        pipe.memory_format = torch.contiguous_format
    assert len(nchw) == len(channels_last) > 0
    assert np.array_equal(nchw.boxes, channels_last.boxes)
    assert np.array_equal(nchw.scores, channels_last.scores)


def test_stale_cache_is_reexported(tmp_path, monkeypatch):
    from facecraft_d2.export import onnx_export_dir

    monkeypatch.setenv("FACECRAFT_CACHE", str(tmp_path))
    first = onnx_export_dir("cascade_joint")
    manifest = tmp_path / "onnx" / "cascade_joint" / "facecraft_onnx.json"
    stamp = manifest.stat().st_mtime_ns
    assert onnx_export_dir("cascade-joint") == first and manifest.stat().st_mtime_ns == stamp, \
        "an up-to-date export is reused"
    data = json.loads(manifest.read_text())
    data["weights_sha256"] = "0" * 64  # as if the shipped weights had been retrained
    manifest.write_text(json.dumps(data))
    assert onnx_export_dir("cascade_joint") == first
    assert json.loads(manifest.read_text())["weights_sha256"] != "0" * 64
    (manifest.parent / "x24.onnx").unlink()  # an incomplete export is redone too
    onnx_export_dir("cascade_joint")
    assert (manifest.parent / "x24.onnx").is_file()
    assert [p.name for p in tmp_path.joinpath("onnx").iterdir()] == ["cascade_joint"]


def test_only_cascades_export(tmp_path):
    """An R-CNN config is refused with a clear error (it runs with PyTorch only)."""
    from facecraft_d2.export import export_model
    from facecraft_d2.model_zoo import get_config_file

    config = get_config_file("tests/zf_rcnn_tiny.yaml")
    weights = tmp_path / "w.pth"
    torch.save({"model": {}}, weights)
    with pytest.raises(ValueError, match="ONNX export supports FaceCraftCascade models, not "):
        export_model(config_file=config, weights=str(weights), out_dir=str(tmp_path / "x"))

