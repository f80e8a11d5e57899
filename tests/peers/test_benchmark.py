# Copyright (c) facecraft_d2 contributors.
"""tools/benchmark.py end to end on two images (a smoke test: no speed thresholds), and the
timing helpers of facecraft_d2.utils.speed."""
import json
import math
import os
import subprocess
import sys

import cv2
import numpy as np
import pytest

from facecraft_d2.model_zoo import list_models
from facecraft_d2.utils.testing import load_tool
from facecraft_d2.utils.speed import latency_stats, sample_vga_images, time_detectors, to_vga

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DETECTORS = ["facecraft_fast", "facecraft_fast_onnx", "facecraft_fast_onnx_graph", "facecraft_accurate", "rcnn", "rcnn_four_step",
             "rcnn_R18", "mtcnn", "haar", "yunet", "retinaface"]
TIMING_KEYS = {"ms_median", "ms_p90", "ms_mean", "ms_min", "fps", "calls"}
ACCURACY_KEYS = {"fddb_tpr_1000fp", "fddb_tpr_scaled_fp", "wider_easy", "wider_medium", "wider_hard"}


def test_to_vga_keeps_aspect_and_crops_centre():
    image = np.zeros((300, 800, 3), np.uint8)
    image[:, 390:410] = 255  # a vertical bar at the centre
    vga = to_vga(image)
    assert vga.shape == (480, 640, 3) and vga.flags["C_CONTIGUOUS"]
    # scaled by 1.6 to cover 480 rows, then cropped: the bar stays at the centre, 32 px wide
    assert vga[240, 320].tolist() == [255] * 3 and vga[240, 300].tolist() == [0] * 3
    assert to_vga(np.zeros((10, 10, 3), np.uint8)).shape == (480, 640, 3)


def test_latency_stats_and_interleaved_timing():
    stats = latency_stats([0.010, 0.020, 0.030, 0.040])
    assert stats["ms_median"] == pytest.approx(25.0) and stats["fps"] == pytest.approx(40.0)
    assert stats["ms_p90"] == pytest.approx(37.0) and stats["ms_min"] == pytest.approx(10.0)
    calls = []
    out = time_detectors({"a": lambda im: calls.append("a"), "b": lambda im: calls.append("b")},
                         [np.zeros((2, 2, 3), np.uint8)] * 2, repeats=2, warmup=1)
    assert calls == ["a", "b"] + ["a", "b"] * 4  # warm-up, then image by image, interleaved
    assert out["a"]["calls"] == out["b"]["calls"] == 4


def test_timing_images_fall_back_to_the_sample(grace_hopper_path):
    images = sample_vga_images(["no_such_dataset"], 3, grace_hopper_path)
    assert [f for f, _ in images] == [grace_hopper_path]
    assert images[0][1].shape == (480, 640, 3)


@pytest.fixture
def grace_hopper_path():
    from matplotlib import cbook

    return cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


def test_benchmark_smoke(tmp_path):
    """Every detector of the benchmark on 2 VGA images (+ 2 FDDB images scored when
    DETECTRON2_DATASETS is set): the JSON schema, timings of each available detector, the table
    and the plot."""
    have_data = bool(os.environ.get("DETECTRON2_DATASETS"))
    out, work = tmp_path / "out", tmp_path / "work"
    cmd = [sys.executable, os.path.join(ROOT, "tools", "benchmark.py"), "--num-images", "2",
           "--repeats", "1", "--warmup", "1", "--max-eval-images", "2", "--throughput-images", "1",
           "--batch-size", "2", "--output", str(out), "--work-dir", str(work),
           "--datasets", "fddb" if have_data else ""]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]

    record = json.loads((out / "benchmark.json").read_text())  # strict JSON (no NaN)
    assert set(record) == {"machine", "git", "settings", "detectors", "throughput", "table"}
    assert isinstance(record["git"]["changed_files"], list)
    assert record["machine"]["cpu_count"] >= 1 and record["machine"]["cpu"]
    num_images = 2 if have_data else 1  # without data: matplotlib's sample photo only
    assert record["settings"]["num_images"] == num_images
    assert record["settings"]["image_size"] == [640, 480]
    assert list(record["detectors"]) == DETECTORS
    available = [n for n, d in record["detectors"].items() if d["available"]]
    # the shipped cascade and the peers of `make setup` must all run; the R-CNN models when shipped
    rcnn = {"rcnn": "rcnn_two_step", "rcnn_four_step": "rcnn_four_step", "rcnn_R18": "rcnn_joint_R18"}
    assert set(DETECTORS) - set(rcnn) <= set(available)
    for name, model in rcnn.items():
        assert (name in available) == (model in list_models()), name
    for name, det in record["detectors"].items():
        assert det["label"] in record["table"]
        if not det["available"]:
            assert det["reason"] and "timing" not in det
            continue
        t = det["timing"]
        assert set(t) == TIMING_KEYS and t["calls"] == num_images
        assert 0 < t["ms_min"] <= t["ms_median"] <= t["ms_p90"]
        assert t["fps"] == pytest.approx(1000.0 / t["ms_median"])
        if have_data:
            acc = det["accuracy"]
            assert set(acc) == ACCURACY_KEYS and acc["wider_easy"] is None  # FDDB only
            assert 0 <= acc["fddb_tpr_scaled_fp"] <= acc["fddb_tpr_1000fp"] <= 100
    assert record["detectors"]["yunet"]["min_face_size"] is None
    assert record["detectors"]["haar"]["min_face_size"] == 24
    assert record["detectors"]["facecraft_fast"]["min_face_size"] == 24
    runs = record["throughput"]["runs"]
    assert [(r["mode"], r["threads"]) for r in runs] == [
        ("sequential", 1), ("sequential", 2), ("streams", 2), ("batched", 2)]
    assert all(r["images"] == 1 and r["images_per_s"] > 0 and math.isfinite(r["seconds"]) for r in runs)
    assert (out / "benchmark.md").read_text() == record["table"]
    if have_data:  # speed vs the accuracy scored in the run
        assert (out / "benchmark.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    else:  # a timing-only run draws no accuracy plot
        assert not (out / "benchmark.png").exists()
    assert record["table"] in proc.stdout


def test_run_spec_times_a_trained_run_that_is_not_shipped(grace_hopper_path):
    """"run:<config>:<weights>" builds the model of a training run, as tools/eval_table.py does."""
    bench = load_tool("benchmark")
    config = os.path.join(ROOT, "configs", "cascade", "joint.yaml")
    model, cfg, detect, min_face = bench.build_detector(f"run:{config}:facecraft://cascade_joint")
    assert cfg.MODEL.WEIGHTS.endswith("cascade_joint.pth") and min_face == 24
    boxes = detect(cv2.imread(grace_hopper_path))
    assert len(boxes) >= 1
