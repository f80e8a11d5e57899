# Copyright (c) facecraft_d2 contributors.
import math
import os

import numpy as np
import pytest

from facecraft_d2.evaluation import (
    FDDBEvaluator,
    fddb_image_roc,
    fddb_overlaps,
    merge_fddb_rocs,
    rasterize_ellipse,
    tpr_at_fp,
)
from facecraft_d2.evaluation.fddb_evaluation import NO_DETECTION_THRESHOLD

# vertical face ellipse (major radius 40 along y), its bounding box and a box shifted
# right by 14 px whose pixel IoU with the ellipse is ~0.44 (a near miss)
ELLIPSE = [40.0, 20.0, math.pi / 2, 200.0, 200.0]
BOX = [180.0, 160.0, 220.0, 240.0]
NEAR_MISS = [194.0, 160.0, 234.0, 240.0]


def _ellipse_at(cx, cy):
    return [40.0, 20.0, math.pi / 2, cx, cy]


def _box_at(cx, cy, dx=0.0):
    return [cx - 20 + dx, cy - 40, cx + 20 + dx, cy + 40]


@pytest.mark.parametrize("angle", [0.0, 0.3, -1.2, math.pi / 2])
def test_ellipse_area(angle):
    mask, _ = rasterize_ellipse([40, 20, angle, 200, 200], (480, 640))
    # radii int(r) + 0.5 (boundary pixels of OpenCV's fill), so the area is close to pi*a*b
    assert mask.sum() == pytest.approx(math.pi * 40.5 * 20.5, rel=0.01)
    assert mask.sum() == pytest.approx(math.pi * 40 * 20, rel=0.05)


def test_ellipse_orientation_and_clipping():
    mask, origin = rasterize_ellipse([40, 20, 0.0, 200, 100], (480, 640))
    assert mask.shape == (41, 81) and origin == (160, 80)  # major axis along x
    mask, origin = rasterize_ellipse(ELLIPSE, (480, 640))
    assert mask.shape == (81, 41) and origin == (180, 160)  # major axis along y
    # centred on the image corner: the quadrant x >= cx, y >= cy of the same disc is inside
    mask, origin = rasterize_ellipse([40, 40, 0.0, 0, 0], (480, 640))
    full, (x0, y0) = rasterize_ellipse([40, 40, 0.0, 100, 100], (480, 640))
    assert origin == (0, 0)
    assert mask.sum() == full[100 - y0 :, 100 - x0 :].sum()
    mask, _ = rasterize_ellipse([40, 40, 0.0, -100, -100], (480, 640))
    assert mask.sum() == 0


def test_overlaps():
    xywh = np.array([BOX, NEAR_MISS, [400, 400, 450, 450]], dtype=np.float64)
    xywh[:, 2:] -= xywh[:, :2]
    ov = fddb_overlaps([ELLIPSE], xywh, (480, 640))
    assert ov.shape == (1, 3)
    assert ov[0, 0] == pytest.approx(math.pi / 4, abs=0.01)  # ellipse in its bounding box
    assert 0.4 < ov[0, 1] < 0.5
    assert ov[0, 2] == 0
    # the rectangle is clipped to the image like the ellipse
    inside = fddb_overlaps([ELLIPSE], [[180, 160, 40, 80]], (480, 640))
    clipped = fddb_overlaps([ELLIPSE], [[180, 160, 40, 500]], (241, 640))
    assert clipped[0, 0] == pytest.approx(inside[0, 0])
    assert fddb_overlaps(np.zeros((0, 5)), xywh, (480, 640)).shape == (0, 3)


def test_image_roc_uses_max_total_overlap_matching():
    # greedy by score would give d0 to face 0 and leave face 1 unmatched; the official
    # Hungarian matching maximizes the total overlap: face0-d1 (0.6) + face1-d0 (0.8)
    roc = fddb_image_roc(np.array([[0.9, 0.6], [0.8, 0.0]]), np.array([0.9, 0.8]))
    np.testing.assert_allclose(roc["thresholds"], [0.8, 0.9])
    np.testing.assert_allclose(roc["tp_disc"], [2, 1])
    np.testing.assert_allclose(roc["tp_cont"], [1.4, 0.9])
    np.testing.assert_allclose(roc["fp"], [0, 0])


def test_image_roc_discrete_vs_continuous():
    # a matched pair at IoU 0.45 is a false positive for the discrete score (needs > 0.5)
    # but adds 0.45 to the continuous score; the unmatched detection is a false positive
    roc = fddb_image_roc(np.array([[0.45, 0.0, 0.3]]), np.array([0.9, 0.5, 0.5]))
    np.testing.assert_allclose(roc["thresholds"], [0.5, 0.9])
    np.testing.assert_allclose(roc["tp_disc"], [0, 0])
    np.testing.assert_allclose(roc["tp_cont"], [0.45, 0.45])
    np.testing.assert_allclose(roc["fp"], [3, 1])
    empty = fddb_image_roc(np.zeros((2, 0)), np.zeros(0))
    assert empty["thresholds"][0] == NO_DETECTION_THRESHOLD and empty["num_faces"] == 2


def test_merge_by_threshold():
    image_a = fddb_image_roc(np.array([[0.8, 0.3]]), np.array([0.9, 0.5]))
    image_b = fddb_image_roc(np.array([[0.7], [0.0]]), np.array([0.7]))
    image_c = fddb_image_roc(np.zeros((1, 0)), np.zeros(0))  # a face, no detection
    curve = merge_fddb_rocs([image_a, image_b, image_c])
    # worked by hand: at threshold s every image counts its detections with score >= s
    np.testing.assert_allclose(curve["thresholds"], [0.5, 0.7, 0.9, NO_DETECTION_THRESHOLD])
    np.testing.assert_allclose(curve["tp_disc"], [2, 2, 1, 0])
    np.testing.assert_allclose(curve["fp"], [1, 0, 0, 0])
    np.testing.assert_allclose(curve["tp_cont"], [1.5, 1.5, 0.8, 0])
    assert curve["num_faces"] == 4
    np.testing.assert_allclose(curve["tpr_disc"], [0.5, 0.5, 0.25, 0])


def test_tpr_at_fp():
    tpr, fp = np.array([0.9, 0.8, 0.5]), np.array([1500, 999, 10])
    assert tpr_at_fp(tpr, fp, 1000) == 0.8
    assert tpr_at_fp(tpr, fp, 999) == 0.5  # strictly fewer false positives
    assert tpr_at_fp(tpr, fp, 5) == 0.0


@pytest.fixture
def fddb_dataset(register_dataset, make_record):
    centres = [(200.0, 200.0), (300.0, 150.0), (120.0, 300.0)]
    dicts = [
        make_record(
            "2002/07/0{}/big/img_{}".format(i, i), [_box_at(*c)], ellipses=[_ellipse_at(*c)]
        )
        for i, c in enumerate(centres)
    ]
    return register_dataset(dicts, evaluator_type="fddb"), centres


def test_evaluator_perfect_none_near_miss(fddb_dataset, run_evaluator):
    name, centres = fddb_dataset
    evaluator = FDDBEvaluator(name)
    ids = ["2002/07/0{}/big/img_{}".format(i, i) for i in range(3)]
    perfect = {i: ([_box_at(*c)], [0.9]) for i, c in zip(ids, centres)}
    res = run_evaluator(evaluator, perfect)["fddb"]
    assert set(res) == {
        "TPR@1000FP",
        "TPR@scaledFP",
        "contTPR@1000FP",
        "scaled_FP",
        "num_images",
        "num_faces",
    }
    assert res["TPR@1000FP"] == pytest.approx(100)
    assert res["contTPR@1000FP"] == pytest.approx(100 * math.pi / 4, abs=1.5)
    assert res["num_images"] == 3 and res["num_faces"] == 3
    assert res["scaled_FP"] == pytest.approx(1000 * 3 / 2845)

    none = {i: (np.zeros((0, 4)), []) for i in ids}
    assert run_evaluator(evaluator, none)["fddb"]["TPR@1000FP"] == 0

    near = {i: ([_box_at(*c, dx=14)], [0.9]) for i, c in zip(ids, centres)}
    res = run_evaluator(evaluator, near)["fddb"]
    assert res["TPR@1000FP"] == 0
    assert evaluator.curves["fp"].max() == 3  # each near miss is a false positive


def test_evaluator_duplicates_and_scaled_fp(fddb_dataset, run_evaluator):
    name, centres = fddb_dataset
    ids = ["2002/07/0{}/big/img_{}".format(i, i) for i in range(3)]
    evaluator = FDDBEvaluator(name)
    dets = {ids[0]: ([_box_at(*centres[0]), _box_at(*centres[0], dx=2)], [0.9, 0.8])}
    res = run_evaluator(evaluator, dets)["fddb"]
    assert res["TPR@1000FP"] == pytest.approx(100)  # only image 0 (one face) was evaluated
    assert res["num_images"] == 1 and res["num_faces"] == 1
    np.testing.assert_allclose(evaluator.curves["fp"], [1, 0])  # the duplicate is a FP

    # TP (0.9) on image 0, two FPs (0.85, 0.8) on image 1, TP (0.7) on image 2:
    # ROC (TPR, FP) = (1/3, 0), (1/3, 1), (1/3, 2), (2/3, 2); 3 images -> 1.05 FP budget
    far = [500.0, 400.0, 540.0, 440.0]
    dets = {
        ids[0]: ([_box_at(*centres[0])], [0.9]),
        ids[1]: ([far, [10.0, 10.0, 50.0, 50.0]], [0.85, 0.8]),
        ids[2]: ([_box_at(*centres[2])], [0.7]),
    }
    res = run_evaluator(evaluator, dets)["fddb"]
    assert res["TPR@1000FP"] == pytest.approx(200 / 3)
    assert res["TPR@scaledFP"] == pytest.approx(100 / 3)


def test_evaluator_output_files(fddb_dataset, run_evaluator, tmp_path):
    name, centres = fddb_dataset
    ids = ["2002/07/0{}/big/img_{}".format(i, i) for i in range(3)]
    evaluator = FDDBEvaluator(name, output_dir=str(tmp_path))
    dets = {
        ids[0]: ([_box_at(*centres[0]), [0.0, 0.0, 30.0, 30.0]], [0.9, 0.3]),
        ids[1]: (np.zeros((0, 4)), []),
        ids[2]: ([_box_at(*centres[2])], [0.6]),
    }
    run_evaluator(evaluator, dets)
    for f in [
        "fddb_dets.txt",
        "fddb_ellipseList.txt",
        "fddb_imList.txt",
        "DiscROC.txt",
        "ContROC.txt",
        "fddb_roc.png",
    ]:
        assert os.path.getsize(tmp_path / f) > 0, f
    assert (tmp_path / "fddb_roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # detection file: name, count, then "left top width height score" lines
    lines = (tmp_path / "fddb_dets.txt").read_text().splitlines()
    i, parsed = 0, {}
    while i < len(lines):
        n = int(lines[i + 1])
        parsed[lines[i]] = [list(map(float, line.split())) for line in lines[i + 2 : i + 2 + n]]
        i += 2 + n
    assert list(parsed) == ids
    assert [len(v) for v in parsed.values()] == [2, 0, 1]
    np.testing.assert_allclose(parsed[ids[0]][0], [180, 160, 40, 80, 0.9], atol=1e-5)
    assert (tmp_path / "fddb_imList.txt").read_text().split() == ids

    disc = [line.split() for line in (tmp_path / "DiscROC.txt").read_text().splitlines()]
    cont = [line.split() for line in (tmp_path / "ContROC.txt").read_text().splitlines()]
    assert all(len(r) == 3 for r in disc) and all(len(r) == 2 for r in cont)
    # thresholds ascending: 0.3, 0.6, 0.9 and the "no detection" row of image 1
    assert [float(r[2]) for r in disc[:3]] == pytest.approx([0.3, 0.6, 0.9])
    assert disc[3][2] == "1.79769e+308"
    assert [int(r[1]) for r in disc] == [1, 0, 0, 0]
    assert [float(r[0]) for r in disc] == pytest.approx([2 / 3, 2 / 3, 1 / 3, 0])
