# Copyright (c) facecraft_d2 contributors.
import numpy as np
import pytest

from facecraft_d2.evaluation import AFWEvaluator, afw_overlaps, voc_ap
from facecraft_d2.evaluation.afw_evaluation import filter_small_detections

FACES = {
    "img_a": [[10, 10, 110, 130], [200, 50, 300, 170]],
    "img_b": [[50, 50, 170, 190]],
}


def _shift(box, frac):
    """Shift a box right by ``frac`` of its (+1) width: IoU (1 - f) / (1 + f)."""
    d = frac * (box[2] - box[0] + 1)
    return [box[0] + d, box[1], box[2] + d, box[3]]


def _scale(box, s):
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    w, h = (box[2] - box[0]) * s / 2, (box[3] - box[1]) * s / 2
    return [cx - w, cy - h, cx + w, cy + h]


@pytest.fixture
def afw_dataset(register_dataset, make_record):
    return register_dataset([make_record(k, v) for k, v in FACES.items()], evaluator_type="afw")


def test_voc_ap_and_overlap():
    # (R, P) = (0.5, 1), (0.5, 0.5), (1, 2/3): AP = 0.5 * 1 + 0.5 * 2/3
    assert voc_ap([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3]) == pytest.approx(0.5 + 1 / 3)
    assert voc_ap([0.0, 0.5], [np.nan, 0.5]) == pytest.approx(0.25)
    # +1 convention: [0, 9] covers 10 pixels; 5 x 10 overlap of two 10 x 10 boxes
    np.testing.assert_allclose(
        afw_overlaps([[0, 0, 9, 9]], [[5, 0, 14, 9], [0, 0, 9, 9], [9, 9, 20, 20]]),
        [[50 / 150, 1.0, 0.0]],
    )
    # detections are kept when wider or taller than int(sqrt(0.5 * 30 * 30)) = 21 px
    assert filter_small_detections([[0, 0, 21, 21], [0, 0, 22, 5], [0, 0, 5, 22]], 30).tolist() == [
        False,
        True,
        True,
    ]


def test_perfect_none_near_miss(afw_dataset, run_evaluator):
    evaluator = AFWEvaluator(afw_dataset)
    perfect = {k: (v, np.linspace(0.9, 0.8, len(v))) for k, v in FACES.items()}
    res = run_evaluator(evaluator, perfect)
    assert res == {"afw": pytest.approx({"AP30": 100.0, "AP50": 100.0})}
    assert list(res["afw"]) == ["AP30", "AP50"]

    none = {k: (np.zeros((0, 4)), []) for k in FACES}
    assert run_evaluator(evaluator, none)["afw"] == {"AP30": 0, "AP50": 0}

    near = {
        k: ([_shift(b, 0.38) for b in v], np.linspace(0.9, 0.8, len(v))) for k, v in FACES.items()
    }
    iou = afw_overlaps([_shift(FACES["img_a"][0], 0.38)], [FACES["img_a"][0]])[0, 0]
    assert 0.44 < iou < 0.46
    # misses at IoU 0.5 (the toolbox), hits at 0.3 (the paper's setting)
    assert run_evaluator(evaluator, near)["afw"] == pytest.approx({"AP30": 100.0, "AP50": 0.0})


def test_duplicates(afw_dataset, run_evaluator):
    evaluator = AFWEvaluator(afw_dataset, iou_thresholds=(0.5,))
    a0, a1 = FACES["img_a"]
    # face 0 (0.9), face 0 again (0.8, FP), face 1 (0.7); img_b is not evaluated
    res = run_evaluator(evaluator, {"img_a": ([a0, _shift(a0, 0.01), a1], [0.9, 0.8, 0.7])})
    assert res == {"afw": pytest.approx({"AP50": 100 * (0.5 + 0.5 * 2 / 3)})}
    np.testing.assert_allclose(evaluator.curves[0.5]["precision"], [1, 0.5, 2 / 3])


def test_ignored_faces_and_crowd(register_dataset, make_record, run_evaluator):
    # a real face, a 20 x 60 face (under 30 px wide) and an iscrowd region
    record = make_record(
        "img", [[10, 10, 110, 130], [200, 10, 220, 70], [300, 300, 400, 400]], iscrowd=[0, 0, 1]
    )
    name = register_dataset([record], evaluator_type="afw")
    evaluator = AFWEvaluator(name)
    # detections on the ignored faces have the highest scores: neither TP nor FP
    dets = {
        "img": ([[200, 10, 220, 70], [300, 300, 400, 400], [10, 10, 110, 130]], [0.95, 0.9, 0.5])
    }
    assert run_evaluator(evaluator, dets)["afw"] == pytest.approx({"AP30": 100.0, "AP50": 100.0})
    assert evaluator.curves[0.5]["num_pos"] == 1
    # ... while a background detection above the face is a FP: (P, R) = (0, 0), (1/2, 1)
    dets = {"img": ([[500, 300, 600, 400], [10, 10, 110, 130]], [0.95, 0.5])}
    assert run_evaluator(evaluator, dets)["afw"]["AP50"] == pytest.approx(50.0)
    # min_face_size=0 keeps the small face: missing it costs recall
    evaluator = AFWEvaluator(name, min_face_size=0)
    dets = {"img": ([[10, 10, 110, 130]], [0.5])}
    assert run_evaluator(evaluator, dets)["afw"]["AP50"] == pytest.approx(50.0)


def test_calibration(afw_dataset, run_evaluator):
    # boxes 1.3x too large (IoU ~0.59: hits) and 1.45x too large (IoU ~0.48: misses)
    dets = {
        "img_a": ([_scale(FACES["img_a"][0], 1.3), _scale(FACES["img_a"][1], 1.45)], [0.9, 0.8]),
        "img_b": ([_scale(FACES["img_b"][0], 1.3)], [0.7]),
    }
    plain = run_evaluator(AFWEvaluator(afw_dataset, iou_thresholds=(0.5,)), dets)["afw"]["AP50"]
    calibrated = run_evaluator(
        AFWEvaluator(afw_dataset, iou_thresholds=(0.5,), calibrate=True), dets
    )
    assert plain < 70
    assert calibrated["afw"]["AP50"] == pytest.approx(100.0)


def test_output_files(afw_dataset, run_evaluator, tmp_path):
    evaluator = AFWEvaluator(afw_dataset, output_dir=str(tmp_path))
    run_evaluator(
        evaluator, {"img_a": (FACES["img_a"], [0.9, 0.8]), "img_b": ([[0, 0, 10, 10]], [0.3])}
    )
    assert (tmp_path / "afw_pr.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = [line.split() for line in (tmp_path / "afw_detections.txt").read_text().splitlines()]
    # "image_id score x1 y1 x2 y2"; the 10 px detection was filtered out
    assert [r[0] for r in rows] == ["img_a", "img_a"]
    np.testing.assert_allclose(
        [list(map(float, r[1:])) for r in rows[:1]], [[0.9, 10, 10, 110, 130]], atol=1e-5
    )
