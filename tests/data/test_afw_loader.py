# Copyright (c) facecraft_d2 contributors.
"""AFW anno.mat (MATLAB v7.3 / HDF5) loader: synthetic .mat files and the real annotations."""

import itertools
import logging
import math
import os

import h5py
import numpy as np
import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

import facecraft_d2.data  # noqa: F401  registers the builtin datasets
from facecraft_d2.data.datasets.afw import load_afw, load_afw_annotations, register_afw
from facecraft_d2.data.datasets.common import AnnotationFormatError

NAN = float("nan")
LANDMARKS = [[10, 11], [20, 11], [15, 16], [NAN, NAN], [12, 20], [18, 20]]
ROWS = [
    ("img_a.jpg", [[[5, 6], [30, 40]]], [[0, 0, 0]], [LANDMARKS]),
    (
        "img_b.jpg",
        [[[1, 2], [10, 12]], [[20, 2], [35, 18]]],
        [[15, 0, -15], [-30, 5, 0]],
        [LANDMARKS, LANDMARKS],
    ),
]


def write_anno_mat(path, rows, key="anno", swap_pose_and_landmarks=False, box_shape=None):
    """Write ``rows`` = [(name, boxes, poses, landmarks)] as MATLAB v7.3 stores a cell array."""
    counter = itertools.count()
    with h5py.File(str(path), "w") as f:
        refs = f.create_group("#refs#")

        def dataset(data, matlab_class):
            d = refs.create_dataset("r{}".format(next(counter)), data=data)
            d.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            return d.ref

        def char(text):
            ref = dataset(np.array([[ord(c)] for c in text], dtype=np.uint16), "char")
            f[ref].attrs["MATLAB_int_decode"] = np.int32(2)
            return ref

        def cell(matrices):
            out = np.empty((1, len(matrices)), dtype=h5py.ref_dtype)
            for k, m in enumerate(matrices):
                out[0, k] = dataset(
                    np.asarray(m, dtype=np.float64).T, "double"
                )  # HDF5 = transposed
            return dataset(out, "cell")

        anno = np.empty((4, len(rows)), dtype=h5py.ref_dtype)
        for i, (name, boxes, poses, landmarks) in enumerate(rows):
            if box_shape is not None:
                boxes = [np.zeros(box_shape) for _ in boxes]
            poses = [np.asarray(p, dtype=np.float64).reshape(3, 1) for p in poses]
            cols = (landmarks, poses) if swap_pose_and_landmarks else (poses, landmarks)
            anno[0, i], anno[1, i] = char(name), cell(boxes)
            anno[2, i], anno[3, i] = cell(cols[0]), cell(cols[1])
        d = f.create_dataset(key, data=anno)
        d.attrs["MATLAB_class"] = np.bytes_("cell")
    return str(path)


@pytest.mark.parametrize("swap", [False, True])
def test_load_annotations(tmp_path, swap):
    mat = write_anno_mat(tmp_path / "anno.mat", ROWS, swap_pose_and_landmarks=swap)
    records = load_afw_annotations(mat)
    assert [r["file_name"] for r in records] == ["img_a.jpg", "img_b.jpg"]
    assert [r["image_id"] for r in records] == ["img_a", "img_b"]
    assert [len(r["annotations"]) for r in records] == [1, 2]
    ann = records[1]["annotations"][1]
    assert ann["bbox"] == [20.0, 2.0, 35.0, 18.0] and ann["bbox_mode"] == BoxMode.XYXY_ABS
    assert ann["category_id"] == 0 and ann["iscrowd"] == 0
    assert ann["pose"] == [-30.0, 5.0, 0.0]
    assert ann["landmarks"] == {
        "0": [10, 11],
        "1": [20, 11],
        "2": [15, 16],
        "4": [12, 20],
        "5": [18, 20],
    }
    assert "height" not in records[0]


def test_load_with_images(tmp_path, make_image, caplog, warnings_of):
    mat = write_anno_mat(tmp_path / "anno.mat", ROWS)
    images = tmp_path / "images"
    make_image(images / "img_b.jpg", 50, 40)
    with caplog.at_level(logging.WARNING):
        dicts = load_afw(mat, str(images), dataset_name="afw_fixture")
    assert len(dicts) == 1
    assert dicts[0]["file_name"] == os.path.join(str(images), "img_b.jpg")
    assert (dicts[0]["height"], dicts[0]["width"]) == (40, 50)
    warnings = warnings_of(caplog, "afw")
    assert len(warnings) == 1 and "1 of 2" in warnings[0].getMessage()
    assert str(images) in warnings[0].getMessage()


def test_no_images_gives_empty_dataset(tmp_path, caplog, warnings_of):
    mat = write_anno_mat(tmp_path / "anno.mat", ROWS)
    register_afw("afw_test_fixture_no_images", mat, str(tmp_path / "images"))
    with caplog.at_level(logging.WARNING):
        assert DatasetCatalog.get("afw_test_fixture_no_images") == []
    (warning,) = warnings_of(caplog, "afw")
    assert "2 of 2" in warning.getMessage() and str(tmp_path / "images") in warning.getMessage()
    assert MetadataCatalog.get("afw_test_fixture_no_images").evaluator_type == "afw"


def test_missing_key(tmp_path, check_format_error):
    mat = write_anno_mat(tmp_path / "anno.mat", ROWS, key="annotations")
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_afw_annotations(mat)
    assert "missing" in check_format_error(excinfo, mat, "'anno'").reason


def test_not_hdf5(tmp_path, check_format_error):
    mat = tmp_path / "anno.mat"
    mat.write_bytes(b"MATLAB 5.0 MAT-file, not HDF5" + bytes(200))
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_afw_annotations(str(mat))
    assert "HDF5" in check_format_error(excinfo, mat, "header").reason


def test_bad_box_shape(tmp_path, check_format_error):
    mat = write_anno_mat(tmp_path / "anno.mat", ROWS, box_shape=(3, 2))
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_afw_annotations(mat)
    check_format_error(excinfo, mat, "row 1", "img_a.jpg", "face 1")


def test_count_mismatch(tmp_path, check_format_error):
    rows = [ROWS[0], ("img_b.jpg", ROWS[1][1], ROWS[1][2][:1], ROWS[1][3])]
    mat = write_anno_mat(tmp_path / "anno.mat", rows)
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_afw_annotations(mat)
    assert "2 boxes but 1 poses" in check_format_error(excinfo, mat, "row 2", "img_b.jpg").reason


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="anno.mat"):
        load_afw_annotations(str(tmp_path / "anno.mat"))


# ---------------------------------------------------------------- real data
def test_real_afw(datasets_root, caplog, warnings_of):
    meta = MetadataCatalog.get("afw_test")
    assert meta.annotation_file == os.path.join(datasets_root, "AFW", "anno.mat")
    records = load_afw_annotations(meta.annotation_file)
    num_faces = sum(len(r["annotations"]) for r in records)
    print("AFW: {} images, {} faces in anno.mat".format(len(records), num_faces))
    assert len(records) == 205 and num_faces == 468
    assert len({r["image_id"] for r in records}) == 205
    first = records[0]
    assert first["file_name"] == "1004109301.jpg"
    (ann,) = first["annotations"]
    assert ann["bbox"] == pytest.approx([196, 291, 472, 555])
    assert ann["pose"] == [45.0, 0.0, 15.0] and len(ann["landmarks"]) == 6
    for r in records:
        for a in r["annotations"]:
            x1, y1, x2, y2 = a["bbox"]
            assert x2 > x1 and y2 > y1 and all(math.isfinite(v) for v in a["bbox"])
    # no AFW image is available here: the dataset loads empty, with one warning naming the folder
    with caplog.at_level(logging.WARNING):
        assert DatasetCatalog.get("afw_test") == []
    (warning,) = warnings_of(caplog, "afw")
    assert "205 of 205" in warning.getMessage()
    assert os.path.join(datasets_root, "AFW", "images") in warning.getMessage()
