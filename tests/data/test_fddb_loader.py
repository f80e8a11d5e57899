# Copyright (c) facecraft_d2 contributors.
"""FDDB ellipse-list loader: the ellipse-to-box rule, synthetic folds and the real folds."""

import logging
import math
import os

import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

import facecraft_d2.data  # noqa: F401  registers the builtin datasets
from facecraft_d2.data.datasets.common import AnnotationFormatError
from facecraft_d2.data.datasets.fddb import (
    FDDB_FOLD_SIZES,
    FDDB_NUM_IMAGES,
    ellipse_to_box,
    load_fddb,
    register_fddb,
)


def test_ellipse_to_box_closed_forms():
    assert ellipse_to_box(30, 20, 0.0, 100, 100) == pytest.approx([70, 80, 130, 120])
    assert ellipse_to_box(30, 20, math.pi / 2, 100, 100) == pytest.approx([80, 70, 120, 130])
    half = math.sqrt((30**2 + 20**2) / 2)
    assert ellipse_to_box(30, 20, math.pi / 4, 0, 0) == pytest.approx([-half, -half, half, half])
    # the sign of the angle does not change the axis-aligned extent
    assert ellipse_to_box(30, 20, -0.3, 5, 5) == pytest.approx(ellipse_to_box(30, 20, 0.3, 5, 5))
    # clipping to the image
    assert ellipse_to_box(30, 20, 0.0, 10, 100, width=120, height=110) == pytest.approx(
        [0, 80, 40, 110]
    )


@pytest.mark.parametrize("seed", range(5))
def test_ellipse_to_box_is_tight(seed):
    rng = np.random.RandomState(seed)
    a, b = sorted(rng.uniform(5, 100, 2))[::-1]
    theta, cx, cy = rng.uniform(-math.pi, math.pi), rng.uniform(0, 500), rng.uniform(0, 500)
    t = np.linspace(0, 2 * math.pi, 20001)
    xs = cx + a * np.cos(t) * math.cos(theta) - b * np.sin(t) * math.sin(theta)
    ys = cy + a * np.cos(t) * math.sin(theta) + b * np.sin(t) * math.cos(theta)
    expected = [xs.min(), ys.min(), xs.max(), ys.max()]
    assert ellipse_to_box(a, b, theta, cx, cy) == pytest.approx(expected, abs=1e-3)


GOOD = """2002/08/11/big/img_1
2
30.0 20.0 0.0 40.0 35.0  1
10.5 8.25 1.5707963 5.0 10.0  1
2002/08/11/big/img_2
1
12.0 10.0 0.3 20.0 20.0  1
2003/01/01/big/img_missing
1
12.0 10.0 0.3 20.0 20.0  1
"""


@pytest.fixture
def fddb(tmp_path, make_image):
    pics = tmp_path / "originalPics"
    make_image(pics / "2002/08/11/big/img_1.jpg", 100, 50)
    make_image(pics / "2002/08/11/big/img_2.jpg", 60, 60)
    folds = tmp_path / "FDDB-folds"
    folds.mkdir()
    (folds / "FDDB-fold-01-ellipseList.txt").write_text(GOOD)
    (folds / "FDDB-fold-02-ellipseList.txt").write_text("2004/01/01/big/img_9\n1\n9 8 0 5 5 1\n")
    return (
        str(folds / "FDDB-fold-01-ellipseList.txt"),
        str(folds / "FDDB-fold-02-ellipseList.txt"),
        str(pics),
    )


def test_load_good_fold(fddb, caplog, warnings_of):
    fold1, _, pics = fddb
    with caplog.at_level(logging.WARNING):
        dicts = load_fddb(fold1, pics, dataset_name="fddb_fixture")
    assert [d["image_id"] for d in dicts] == ["2002/08/11/big/img_1", "2002/08/11/big/img_2"]
    first = dicts[0]
    assert first["file_name"] == os.path.join(pics, "2002/08/11/big/img_1.jpg")
    assert (first["height"], first["width"]) == (50, 100)
    a0, a1 = first["annotations"]
    assert a0["bbox_mode"] == BoxMode.XYXY_ABS and a0["category_id"] == 0 and a0["iscrowd"] == 0
    assert a0["ellipse"] == [30.0, 20.0, 0.0, 40.0, 35.0]
    assert a0["bbox"] == pytest.approx([10, 15, 70, 50])  # y2 = 50 clipped to the image height
    assert a1["bbox"] == pytest.approx(ellipse_to_box(10.5, 8.25, 1.5707963, 5, 10, 100, 50))
    assert a1["bbox"][0] == 0.0  # clipped on the left
    warnings = warnings_of(caplog, "fddb")
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "fddb_fixture" in message and fold1 in message and pics in message
    assert "1 of 3 listed images" in message


def test_fold_without_images_is_empty(fddb, caplog, warnings_of):
    _, fold2, pics = fddb
    with caplog.at_level(logging.WARNING):
        assert load_fddb([fold2], pics) == []
    assert len(warnings_of(caplog, "fddb")) == 1


def test_several_folds(fddb):
    fold1, fold2, pics = fddb
    assert len(load_fddb([fold1, fold2], pics)) == 2


@pytest.mark.parametrize(
    "text, parts, what",
    [
        # declares 2 faces, lists 1 before the next record
        (
            "2002/a/img_1\n2\n30 20 0 40 30 1\n2002/a/img_2\n1\n30 20 0 40 30 1\n",
            ["'2002/a/img_1'", "line 4"],
            "face-count mismatch",
        ),
        # declares 1 face, lists 2
        (
            "2002/a/img_1\n1\n30 20 0 40 30 1\n30 20 0 40 30 1\n",
            ["#1", "line 4"],
            "expected an image path",
        ),
        # truncated at the end of the file
        ("2002/a/img_1\n2\n30 20 0 40 30 1\n", ["'2002/a/img_1'", "line 4"], "face-count mismatch"),
        (
            "2002/a/img_1\n1\n30 twenty 0 40 30 1\n",
            ["'2002/a/img_1'", "line 3"],
            "'twenty' is not a valid number",
        ),
        ("2002/a/img_1\n1\n30 20 0 40 30\n", ["'2002/a/img_1'", "line 3"], "expected 6 fields"),
        ("2002/a/img_1\n1.5\n", ["'2002/a/img_1'", "line 2"], "not a valid integer"),
        ("2002/a/img_1\n", ["'2002/a/img_1'", "line 2"], "missing the face count"),
        (
            "2002/a/img_1\n1\n-3 20 0 40 30 1\n",
            ["'2002/a/img_1'", "line 3"],
            "radii must be positive",
        ),
    ],
)
def test_malformed(tmp_path, check_format_error, text, parts, what):
    path = tmp_path / "FDDB-fold-01-ellipseList.txt"
    path.write_text(text)
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_fddb(str(path), str(tmp_path))
    assert what in check_format_error(excinfo, path, *parts).reason


def test_missing_fold_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="FDDB-fold-07-ellipseList.txt"):
        load_fddb(str(tmp_path / "FDDB-fold-07-ellipseList.txt"), str(tmp_path))


def test_register_metadata(fddb):
    fold1, fold2, pics = fddb
    register_fddb("fddb_test_fixture", [fold1], pics, fold=3)
    meta = MetadataCatalog.get("fddb_test_fixture")
    assert meta.evaluator_type == "fddb" and meta.fold == 3
    assert (
        meta.num_images_in_fold == FDDB_FOLD_SIZES[3] and meta.num_images_total == FDDB_NUM_IMAGES
    )
    assert len(DatasetCatalog.get("fddb_test_fixture")) == 2


# ---------------------------------------------------------------- real data
def test_real_fddb(datasets_root, caplog, warnings_of):
    assert sum(FDDB_FOLD_SIZES.values()) == FDDB_NUM_IMAGES == 2845
    per_fold = {}
    for fold in range(1, 11):
        name = "fddb_fold_{:02d}".format(fold)
        meta = MetadataCatalog.get(name)
        assert meta.image_root.startswith(datasets_root)
        # the official fold sizes match the files (listed images, present or not)
        with open(meta.ellipse_files[0]) as f:
            lines = [line.strip() for line in f]
        listed = sum(1 for line in lines if line.startswith("2002/") or line.startswith("2003/"))
        assert listed == meta.num_images_in_fold == FDDB_FOLD_SIZES[fold]
        caplog.clear()
        with caplog.at_level(logging.WARNING):
            dicts = DatasetCatalog.get(name)
        assert len(warnings_of(caplog, "fddb")) == 1
        per_fold[fold] = len(dicts)
        for d in dicts:
            assert d["annotations"], d["image_id"]
            for ann in d["annotations"]:
                x1, y1, x2, y2 = ann["bbox"]
                assert 0 <= x1 < x2 <= d["width"] and 0 <= y1 < y2 <= d["height"]
                assert len(ann["ellipse"]) == 5
    print("FDDB images present per fold:", per_fold)
    assert per_fold == {1: 19, 2: 29, 3: 25, 4: 33, 5: 28, 6: 0, 7: 0, 8: 0, 9: 0, 10: 0}
    assert sum(per_fold[f] for f in range(1, 6)) == 134
    all_dicts = DatasetCatalog.get("fddb_all")
    assert len(all_dicts) == 134 and sum(len(d["annotations"]) for d in all_dicts) == 222
    assert MetadataCatalog.get("fddb_all").num_images_in_fold == 2845
