# Copyright (c) facecraft_d2 contributors.
"""The shipped models: checksums, the facecraft:// handler, and the demo on a bundled photo."""
import json
import os
import shutil
import subprocess
import sys

import pytest
import torch

from detectron2.checkpoint import DetectionCheckpointer
from detectron2.modeling import build_model
from detectron2.utils.file_io import PathManager

from facecraft_d2 import model_zoo
from facecraft_d2.model_zoo import model_zoo as zoo_module

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_every_shipped_model_loads_with_its_checksum():
    assert {"cascade_joint", "cascade_separate", "rcnn_two_step", "rcnn_four_step"} <= set(model_zoo.list_models())
    for name in model_zoo.list_models():
        path = model_zoo.get_checkpoint_path(name)
        assert os.path.getsize(path) < 20 * 2**20  # "a few MB"
        assert PathManager.get_local_path(f"facecraft://{name}") == path
        cfg = model_zoo.get_config(name)
        cfg.MODEL.DEVICE = "cpu"
        model = build_model(cfg)
        DetectionCheckpointer(model).load(cfg.MODEL.WEIGHTS)
        state = torch.load(path, map_location="cpu", weights_only=True)["model"]
        assert state.keys() == model.state_dict().keys()
        assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
        if hasattr(model, "delta_stats_ready"):  # the cascades
            assert bool(model.delta_stats_ready)


def test_a_tampered_weights_file_is_refused(tmp_path, monkeypatch):
    name = model_zoo.list_models()[0]
    weights = tmp_path / "weights"
    weights.mkdir()
    src = model_zoo.get_checkpoint_path(name)
    dst = weights / os.path.basename(src)
    shutil.copy(src, dst)
    with open(dst, "r+b") as f:
        f.seek(100)
        f.write(b"\x00\x01\x02")
    monkeypatch.setattr(zoo_module, "_WEIGHTS_DIR", str(weights))
    with pytest.raises(model_zoo.ChecksumMismatchError, match="SHA-256"):
        model_zoo.get_checkpoint_path(name)


def test_registry_records_training_provenance():
    with open(os.path.join(ROOT, "facecraft_d2", "model_zoo", "models.json")) as f:
        registry = json.load(f)
    for entry in registry.values():
        assert entry["total_iterations"] > 0 and entry["total_wall_time_s"] > 0
        assert "widerface_train" in entry["training_data"]
        assert os.path.isfile(model_zoo.get_config_file(entry["config"]))


def test_demo_finds_grace_hoppers_face(tmp_path):
    out = tmp_path / "faces.jpg"
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "demo.py"), "--output", str(out)],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    faces = [line.split() for line in res.stdout.splitlines() if line.strip().startswith("face")]
    assert faces, res.stdout
    # matplotlib's grace_hopper.jpg (512x600) shows one face around x 170-354, y 110-328
    x1, y1, x2, y2 = (float(t.split("=")[1]) for t in faces[0][1:5])
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    assert 170 < cx < 354 and 110 < cy < 328, faces[0]
    assert out.stat().st_size > 0


def test_default_threshold_gives_grace_hoppers_one_face_in_colour_and_grey():
    """`make demo`'s photo: exactly one face at the shipped joint cascade's default threshold,
    and the same face in a grey copy of the photo."""
    import cv2
    import matplotlib.cbook

    from facecraft_d2 import FaceDetector

    detector = FaceDetector("cascade_joint")
    bgr = cv2.imread(matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False))
    grey = cv2.cvtColor(cv2.cvtColor(bgr, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    boxes = []
    for image in (bgr, grey):
        faces = detector.detect(image, format="BGR")
        assert len(faces) == 1, (faces.boxes, faces.scores)
        boxes.append(faces.boxes[0])
        x1, y1, x2, y2 = faces.boxes[0]
        assert 170 < (x1 + x2) / 2 < 354 and 110 < (y1 + y2) / 2 < 328
    (ax1, ay1, ax2, ay2), (bx1, by1, bx2, by2) = boxes
    inter = max(0, min(ax2, bx2) - max(ax1, bx1)) * max(0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    assert inter / union > 0.5
