# Copyright (c) facecraft_d2 contributors.
import os

import numpy as np
import pytest
from scipy.io import savemat

from facecraft_d2.data.datasets.common import AnnotationFormatError
from facecraft_d2.evaluation import WiderFaceEvaluator, load_wider_ground_truth
from facecraft_d2.evaluation.widerface_evaluation import wider_bbox_overlaps

# event -> {file stem: (faces x y w h, {setting: 1-based indices of the faces that count})}
# face 4 of "0_Parade_b" is in no list (an "invalid" face).
GT = {
    "0--Parade": {
        "0_Parade_a": (
            [[10, 10, 50, 60], [200, 10, 50, 60]],
            {"easy": [1, 2], "medium": [1, 2], "hard": [1, 2]},
        ),
        "0_Parade_b": (
            [[10, 100, 60, 60], [100, 100, 40, 40], [300, 300, 20, 20], [400, 50, 30, 30]],
            {"easy": [1], "medium": [1, 2], "hard": [1, 2, 3]},
        ),
    },
    "1--Handshaking": {
        "1_Handshaking_c": ([[50, 50, 80, 80]], {"easy": [1], "medium": [1], "hard": [1]}),
    },
}


def _cell(items):
    """A MATLAB (n, 1) cell array."""
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def _xyxy(face, dx=0.0):
    x, y, w, h = face
    return [x + dx, y, x + w + dx, y + h]


def _face(stem, k):
    for images in GT.values():
        if stem in images:
            return images[stem][0][k]


@pytest.fixture
def wider_dataset(tmp_path, register_dataset):
    """Official-structure .mat files for GT and a registered dataset pointing at them."""
    events = list(GT)
    common = {
        "event_list": _cell(events),
        "file_list": _cell([_cell(list(GT[e])) for e in events]),
        "face_bbx_list": _cell(
            [_cell([np.array(f, dtype=np.int32) for f, _ in GT[e].values()]) for e in events]
        ),
    }
    savemat(str(tmp_path / "wider_face_val.mat"), common)
    for setting in ("easy", "medium", "hard"):
        gt_list = _cell(
            [
                _cell(
                    [
                        np.array(lists[setting], dtype=np.uint8).reshape(-1, 1)
                        for _, lists in GT[e].values()
                    ]
                )
                for e in events
            ]
        )
        savemat(str(tmp_path / "wider_{}_val.mat".format(setting)), dict(common, gt_list=gt_list))
    dicts = [
        {
            "file_name": "/nonexistent.jpg",
            "image_id": "{}/{}".format(e, s),
            "height": 480,
            "width": 640,
            "annotations": [],
        }
        for e in events
        for s in GT[e]
    ]
    return register_dataset(dicts, evaluator_type="wider", gt_dir=str(tmp_path))


def test_load_ground_truth(wider_dataset, tmp_path):
    gt = load_wider_ground_truth(str(tmp_path))
    assert sorted(gt) == [
        "0--Parade/0_Parade_a",
        "0--Parade/0_Parade_b",
        "1--Handshaking/1_Handshaking_c",
    ]
    boxes, keep = gt["0--Parade/0_Parade_b"]
    np.testing.assert_array_equal(boxes, GT["0--Parade"]["0_Parade_b"][0])
    assert keep["easy"].tolist() == [True, False, False, False]
    assert keep["hard"].tolist() == [True, True, True, False]


def test_a_reader_crash_is_an_annotation_error(wider_dataset, tmp_path, monkeypatch):
    """scipy's MATLAB reader can die (segmentation fault) on a damaged file: the files are read
    in a child process, and a crash becomes AnnotationFormatError naming the file, not the end
    of the evaluation's process. The child here dies the same way on wider_medium_val.mat."""
    import facecraft_d2.evaluation.widerface_evaluation as wider

    crash = wider._LOADMAT_CHILD.replace(
        "for path in sys.argv[1:]:",
        "import os, signal\nfor path in sys.argv[1:]:\n"
        "    if path.endswith('medium_val.mat'): os.kill(os.getpid(), signal.SIGSEGV)")
    monkeypatch.setattr(wider, "_LOADMAT_CHILD", crash)
    with pytest.raises(AnnotationFormatError, match="wider_medium_val.mat.*reader crashed"):
        load_wider_ground_truth.__wrapped__(str(tmp_path))
    monkeypatch.undo()
    assert len(load_wider_ground_truth.__wrapped__(str(tmp_path))) == 3


def test_overlap_convention():
    # the port's +1 convention: a 10 x 10 box "x y w h" covers 11 x 11 pixels
    ov = wider_bbox_overlaps(np.array([[0, 0, 10, 10]]), np.array([[5, 0, 15, 10], [0, 0, 10, 10]]))
    np.testing.assert_allclose(ov, [[6 * 11 / (2 * 121 - 66), 1.0]])


def test_perfect_none_near_miss(wider_dataset, run_evaluator):
    evaluator = WiderFaceEvaluator(wider_dataset)
    all_faces = {
        "{}/{}".format(e, s): ([_xyxy(f) for f in faces], np.linspace(0.9, 0.5, len(faces)))
        for e in GT
        for s, (faces, _) in GT[e].items()
    }
    res = run_evaluator(evaluator, all_faces)
    assert list(res) == ["widerface"] and list(res["widerface"]) == ["easy", "medium", "hard"]
    assert res["widerface"] == pytest.approx({"easy": 100, "medium": 100, "hard": 100})
    # all scores equal (the port would divide by zero when normalizing)
    same = {k: (b, np.ones(len(b))) for k, (b, _) in all_faces.items()}
    assert run_evaluator(evaluator, same)["widerface"] == pytest.approx(
        {"easy": 100, "medium": 100, "hard": 100}
    )

    none = {k: (np.zeros((0, 4)), []) for k in all_faces}
    assert run_evaluator(evaluator, none)["widerface"] == {"easy": 0, "medium": 0, "hard": 0}

    # shifted by 38% of the width: IoU ~0.45 with the +1 convention -> misses at 0.5
    near = {
        "{}/{}".format(e, s): (
            [_xyxy(f, dx=0.38 * (f[2] + 1)) for f in faces],
            np.linspace(0.9, 0.5, len(faces)),
        )
        for e in GT
        for s, (faces, _) in GT[e].items()
    }
    face = _face("0_Parade_a", 0)
    iou = wider_bbox_overlaps(np.array([_xyxy(face, dx=0.38 * 51)]), np.array([_xyxy(face)]))[0, 0]
    assert 0.44 < iou < 0.46
    assert run_evaluator(evaluator, near)["widerface"] == {"easy": 0, "medium": 0, "hard": 0}


def test_duplicates_and_hand_worked_ap(wider_dataset, run_evaluator):
    evaluator = WiderFaceEvaluator(wider_dataset)
    a0, a1 = _face("0_Parade_a", 0), _face("0_Parade_a", 1)
    # only image a is evaluated: face A (0.9), A again (0.8, a FP), face B (0.7)
    # (P, R) = (1, 1/2), (1/2, 1/2), (2/3, 1) -> AP = 1/2 * 1 + 1/2 * 2/3
    dets = {"0--Parade/0_Parade_a": ([_xyxy(a0), _xyxy(a0, dx=1), _xyxy(a1)], [0.9, 0.8, 0.7])}
    res = run_evaluator(evaluator, dets)["widerface"]
    assert res["easy"] == pytest.approx(100 * (0.5 + 0.5 * 2 / 3))
    assert evaluator.curves["easy"]["num_faces"] == 2
    assert evaluator.curves["easy"]["precision"][-1] == pytest.approx(2 / 3)

    # a background FP above the only face of image c: (P, R) = (0, 0), (1/2, 1) -> AP 1/2
    c0 = _face("1_Handshaking_c", 0)
    dets = {"1--Handshaking/1_Handshaking_c": ([[400, 400, 450, 450], _xyxy(c0)], [0.9, 0.5])}
    assert run_evaluator(evaluator, dets)["widerface"]["hard"] == pytest.approx(50)


def test_ignored_faces_are_neither_tp_nor_fp(wider_dataset, run_evaluator):
    evaluator = WiderFaceEvaluator(wider_dataset)
    faces = GT["0--Parade"]["0_Parade_b"][0]
    # the highest scores go to faces that do not count in "easy" (2, 3) or in any setting (4)
    dets = {
        "0--Parade/0_Parade_b": (
            [_xyxy(f) for f in faces[1:]] + [_xyxy(faces[0])],
            [0.95, 0.9, 0.85, 0.5],
        )
    }
    res = run_evaluator(evaluator, dets)["widerface"]
    assert res == pytest.approx({"easy": 100, "medium": 100, "hard": 100})
    assert [evaluator.curves[s]["num_faces"] for s in ("easy", "medium", "hard")] == [1, 2, 3]
    assert evaluator.curves["easy"]["precision"][-1] == 1.0


def test_unknown_images_and_output_files(wider_dataset, run_evaluator, tmp_path):
    out = tmp_path / "out"
    evaluator = WiderFaceEvaluator(wider_dataset, output_dir=str(out))
    c0 = _face("1_Handshaking_c", 0)
    dets = {
        "1--Handshaking/1_Handshaking_c": ([[400, 400, 450, 450], _xyxy(c0)], [0.4, 0.8]),
        "99--Unknown/99_x": ([[0, 0, 10, 10]], [0.9]),
    }
    assert run_evaluator(evaluator, dets)["widerface"]["easy"] == pytest.approx(100)
    lines = (
        (out / "widerface_predictions" / "1--Handshaking" / "1_Handshaking_c.txt")
        .read_text()
        .splitlines()
    )
    assert lines[0] == "1_Handshaking_c" and int(lines[1]) == 2
    rows = [list(map(float, line.split())) for line in lines[2:]]
    np.testing.assert_allclose(rows, [[50, 50, 80, 80, 0.8], [400, 400, 50, 50, 0.4]], atol=1e-5)
    assert not os.path.exists(out / "widerface_predictions" / "99--Unknown")


def test_real_ground_truth_sanity(datasets_root, register_dataset, run_evaluator):
    """The official GT boxes used as detections (score 1) give AP ~100 in every setting."""
    gt_dir = os.path.join(datasets_root, "widerface", "eval_tools", "ground_truth")
    gt = load_wider_ground_truth(gt_dir)
    assert len(gt) == 3226
    names = ["0--Parade/0_Parade_marchingband_1_465"] + sorted(gt)[1::700]
    name = register_dataset([], evaluator_type="wider", gt_dir=gt_dir)
    dets = {}
    for n in names:
        boxes = gt[n][0]
        dets[n] = (
            np.concatenate([boxes[:, :2], boxes[:, :2] + boxes[:, 2:]], 1),
            np.ones(len(boxes)),
        )
    res = run_evaluator(WiderFaceEvaluator(name), dets)["widerface"]
    for setting in ("easy", "medium", "hard"):
        assert res[setting] > 99.0, res
