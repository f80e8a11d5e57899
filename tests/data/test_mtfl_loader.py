# Copyright (c) facecraft_d2 contributors.
"""MTFL index-file loader on small fixtures built by the test (plus an opt-in real-data check)."""

import logging
import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

import facecraft_d2  # noqa: F401  registers the builtin datasets
from facecraft_d2.data.datasets.common import AnnotationFormatError
from facecraft_d2.data.datasets.landmarks import landmarks_to_square_box
from facecraft_d2.data.datasets.mtfl import (
    MTFL_INDEX_FILES,
    MTFL_LANDMARK_NAMES,
    load_mtfl,
    register_mtfl,
)

# left eye, right eye, nose, left mouth corner, right mouth corner (image left = smaller x)
FACE_A = [(30.0, 36.0), (50.0, 36.0), (40.0, 46.0), (32.0, 56.0), (48.0, 56.0)]
FACE_B = [(28.5, 30.0), (47.0, 31.5), (36.0, 44.0), (31.0, 52.0), (45.0, 53.5)]


def index_line(rel, points):
    return " ".join([rel] + [str(x) for x, _ in points] + [str(y) for _, y in points])


@pytest.fixture
def mtfl(tmp_path, make_image):
    root = tmp_path / "MTFL"
    make_image(root / "lfw_5590" / "a.jpg", 80, 80)
    make_image(root / "AFLW" / "b.jpg", 80, 60)
    train = root / "new_training.txt"
    lines = [index_line("lfw_5590/a.jpg", FACE_A), "", index_line("net_7876/gone.jpg", FACE_A)]
    train.write_text("\n".join(lines) + "\n")
    test = root / "new_testing.txt"
    test.write_text(index_line("AFLW\\b.jpg", FACE_B) + "\n")  # Windows-style separator
    return [str(train), str(test)], str(root)


def test_load_two_index_files(mtfl, caplog, warnings_of):
    files, root = mtfl
    with caplog.at_level(logging.WARNING):
        dicts = load_mtfl(files, root, dataset_name="mtfl_fixture")
    assert [d["image_id"] for d in dicts] == ["lfw_5590/a", "AFLW/b"]
    for d, points in zip(dicts, [FACE_A, FACE_B]):
        (ann,) = d["annotations"]
        expected = landmarks_to_square_box(dict(zip(MTFL_LANDMARK_NAMES, points)))
        assert ann["bbox"] == pytest.approx(expected)
        assert ann["bbox_mode"] == BoxMode.XYXY_ABS
        assert ann["category_id"] == 0 and ann["iscrowd"] == 0
        assert ann["keypoints"] == [v for x, y in points for v in (x, y, 2)]
    a, b = dicts
    assert a["file_name"] == os.path.join(root, "lfw_5590/a.jpg")
    assert (a["height"], a["width"]) == (80, 80) and (b["height"], b["width"]) == (60, 80)
    # the nose is the box centre, the box is square
    x1, y1, x2, y2 = a["annotations"][0]["bbox"]
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx(FACE_A[2])
    assert x2 - x1 == pytest.approx(y2 - y1)
    (warning,) = warnings_of(caplog, "mtfl")
    message = warning.getMessage()
    assert "mtfl_fixture" in message and "1 of 3" in message and root in message


def test_exclude_patterns(mtfl):
    files, root = mtfl
    assert [d["image_id"] for d in load_mtfl(files, root, exclude=("AFLW/*",))] == ["lfw_5590/a"]
    assert len(load_mtfl(files, root, exclude=("net_7876/_*",))) == 2  # no match: all kept


def test_left_means_image_left(mtfl):
    """MTFL's first point is the eye with the smaller x, like AFLW's LeftEyeCenter."""
    files, root = mtfl
    (ann,) = load_mtfl(files[0], root)[0]["annotations"]
    kp = ann["keypoints"]
    assert MTFL_LANDMARK_NAMES[0] == "LeftEyeCenter" and kp[0] < kp[3]
    assert MTFL_LANDMARK_NAMES[3] == "MouthLeftCorner" and kp[9] < kp[12]


def test_register(mtfl):
    files, root = mtfl
    register_mtfl("mtfl_test_fixture", files, root)
    meta = MetadataCatalog.get("mtfl_test_fixture")
    assert meta.evaluator_type == "afw" and meta.thing_classes == ["face"]
    assert meta.keypoint_names == list(MTFL_LANDMARK_NAMES)
    assert len(DatasetCatalog.get("mtfl_test_fixture")) == 2


def test_builtin_registered():
    assert {"mtfl_train", "face_negatives"} <= set(DatasetCatalog.list())
    meta = MetadataCatalog.get("mtfl_train")
    assert meta.evaluator_type == MetadataCatalog.get("widerface_train").evaluator_type
    assert [os.path.basename(f) for f in meta.annotation_files] == list(MTFL_INDEX_FILES)
    assert os.path.basename(meta.image_root) == "MTFL"


@pytest.mark.parametrize(
    "line, what",
    [
        ("a.jpg 1 2 3 4 5 6 7 8 9", "expected 10 numbers, got 9"),
        ("a.jpg 1 2 3 4 5 6 7 8 9 10 11", "expected 10 numbers, got 11"),
        ("a.jpg 1 2 3 x 5 6 7 8 9 10", "'x' is not a valid number"),
        ("a.jpg 1 2 3 4 nan 6 7 8 9 10", "'nan' is not a valid number"),
        ("a.jpg 5 5 5 5 5 5 5 5 5 5", "determine no box"),
    ],
)
def test_malformed_line(tmp_path, check_format_error, line, what):
    path = tmp_path / "new_training.txt"
    path.write_text(index_line("ok.jpg", FACE_A) + "\n" + line + "\n")
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_mtfl(str(path), str(tmp_path))
    assert what in check_format_error(excinfo, path, "line 2").reason


def test_missing_index_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="new_testing.txt"):
        load_mtfl([str(tmp_path / "new_testing.txt")], str(tmp_path))


_TRAIN_ROOT = os.environ.get("FACECRAFT_TRAIN_ROOT")


@pytest.mark.skipif(not _TRAIN_ROOT, reason="set FACECRAFT_TRAIN_ROOT to a training data root")
def test_real_training_root():
    """The built training root: 12,995 MTFL faces, all present, nose-centred in the crops."""
    base = os.path.join(_TRAIN_ROOT, "MTFL")
    dicts = load_mtfl([os.path.join(base, f) for f in MTFL_INDEX_FILES], base)
    assert len(dicts) == 12995
    assert sum(len(d["annotations"]) for d in dicts) == 12995
    assert len({d["image_id"] for d in dicts}) == 12995
    assert {(d["height"], d["width"]) for d in dicts} == {(80, 80)}
    for d in dicts:
        (ann,) = d["annotations"]
        x1, y1, x2, y2 = ann["bbox"]
        assert x2 - x1 > 0 and 0 < (x1 + x2) / 2 < 80 and 0 < (y1 + y2) / 2 < 80, d["image_id"]
        assert len(ann["keypoints"]) == 15 and ann["keypoints"][2::3] == [2] * 5
    from facecraft_d2.data.builtin import MTFL_BAD_LANDMARKS

    kept = load_mtfl([os.path.join(base, f) for f in MTFL_INDEX_FILES], base, exclude=MTFL_BAD_LANDMARKS)
    assert len(kept) == 10645 and not any(d["image_id"].startswith("net_7876/_") for d in kept)
