# Copyright (c) facecraft_d2 contributors.
"""WIDER FACE text-format loader: synthetic fixtures and the real val/train annotations."""

import logging
import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

import facecraft_d2.data  # noqa: F401  registers the builtin datasets
from facecraft_d2.data.datasets.common import AnnotationFormatError, count_annotations
from facecraft_d2.data.datasets.widerface import (
    WIDER_ATTRIBUTES,
    WIDER_MIN_FACE_SIZE,
    load_widerface,
    register_widerface,
)

GOOD = "".join(
    line + "\n"
    for line in [
        "0--Parade/0_Parade_a_1.jpg",
        "5",
        "10 12 20 24 0 0 0 0 0 0 ",
        "30 5 22 20 2 1 0 1 2 1 ",
        "40 30 5 30 1 0 1 0 0 0 ",
        "1 1 0 6 0 0 0 0 0 0 ",
        "50 20 12 10 0 0 0 0 1 0 ",
        "1--Handshaking/1_Handshaking_b_2.jpg",
        "0",
        "0 0 0 0 0 0 0 0 0 0 ",
        "1--Handshaking/1_Handshaking_missing_3.jpg",
        "1",
        "5 5 20 20 0 0 0 0 0 0 ",
    ]
)


@pytest.fixture
def wider(tmp_path, make_image):
    images = tmp_path / "WIDER_val" / "images"
    make_image(images / "0--Parade" / "0_Parade_a_1.jpg", 80, 60)
    make_image(images / "1--Handshaking" / "1_Handshaking_b_2.jpg", 40, 30)
    txt = tmp_path / "gt.txt"
    txt.write_text(GOOD)
    return str(txt), str(images)


def test_load_good_file(wider, caplog, warnings_of):
    txt, images = wider
    with caplog.at_level(logging.WARNING):
        dicts = load_widerface(txt, images, dataset_name="wider_fixture")
    assert [d["image_id"] for d in dicts] == [
        "0--Parade/0_Parade_a_1",
        "1--Handshaking/1_Handshaking_b_2",
    ]
    first, empty = dicts
    assert first["file_name"] == os.path.join(images, "0--Parade", "0_Parade_a_1.jpg")
    assert (first["height"], first["width"]) == (60, 80)
    assert empty["annotations"] == []  # the zero line is not a face
    anns = first["annotations"]
    assert len(anns) == 5  # nothing dropped
    assert all(a["bbox_mode"] == BoxMode.XYWH_ABS and a["category_id"] == 0 for a in anns)
    assert anns[0]["bbox"] == [10, 12, 20, 24] and anns[0]["iscrowd"] == 0
    assert "ignore_reason" not in anns[0]
    assert [a["iscrowd"] for a in anns] == [0, 1, 1, 1, 0]
    assert [a.get("ignore_reason") for a in anns] == [None, "invalid", "small", "degenerate", None]
    assert {k: anns[1][k] for k in WIDER_ATTRIBUTES} == dict(
        blur=2, expression=1, illumination=0, invalid=1, occlusion=2, pose=1
    )
    assert all(isinstance(a[k], int) for a in anns for k in WIDER_ATTRIBUTES)
    # exactly one warning, naming the dataset, the count and the expected image folder
    warnings = warnings_of(caplog, "widerface")
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "wider_fixture" in message and txt in message and images in message
    assert "1 of 3 listed images are missing" in message


def test_min_size_parameter(wider):
    txt, images = wider
    assert WIDER_MIN_FACE_SIZE == 10
    anns = load_widerface(txt, images, min_size=21)[0]["annotations"]
    # 20x24 and 12x10 are now "small" too; the 22x20 face stays "invalid" (checked first)
    assert [a.get("ignore_reason") for a in anns] == [
        "small",
        "invalid",
        "small",
        "degenerate",
        "small",
    ]
    anns = load_widerface(txt, images, min_size=0)[0]["annotations"]
    assert [a.get("ignore_reason") for a in anns] == [None, "invalid", None, "degenerate", None]


def test_zero_face_record_without_zero_line(tmp_path, make_image):
    make_image(tmp_path / "img" / "e" / "x.jpg")
    make_image(tmp_path / "img" / "e" / "y.jpg")
    txt = tmp_path / "gt.txt"
    txt.write_text("e/x.jpg\n0\ne/y.jpg\n1\n1 2 30 30 0 0 0 0 0 0\n\n")
    dicts = load_widerface(str(txt), str(tmp_path / "img"))
    assert [len(d["annotations"]) for d in dicts] == [0, 1]


@pytest.mark.parametrize(
    "text, parts, what",
    [
        # truncated at the end of the file: declares 3 faces, lists 1
        (
            "a/x.jpg\n3\n1 2 30 30 0 0 0 0 0 0\n",
            ["'a/x.jpg'", "line 4"],
            "declares 3 faces but lists only 1",
        ),
        # count too large: the next record starts early
        (
            "a/x.jpg\n2\n1 2 30 30 0 0 0 0 0 0\na/y.jpg\n0\n",
            ["'a/x.jpg'", "line 4"],
            "declares 2 faces",
        ),
        # count too small: a face line where an image path is expected
        (
            "a/x.jpg\n1\n1 2 30 30 0 0 0 0 0 0\n5 5 9 9 0 0 0 0 0 0\n",
            ["#1", "line 4"],
            "expected an image path",
        ),
        # a non-numeric field
        (
            "a/x.jpg\n1\n1 2 3O 30 0 0 0 0 0 0\n",
            ["'a/x.jpg'", "line 3"],
            "'3O' is not a valid number",
        ),
        # a non-integer attribute
        ("a/x.jpg\n1\n1 2 30 30 0.5 0 0 0 0 0\n", ["'a/x.jpg'", "line 3"], "not a valid integer"),
        # a missing field
        ("a/x.jpg\n1\n1 2 30 30 0 0 0 0 0\n", ["'a/x.jpg'", "line 3"], "expected 10 fields"),
        # a non-numeric face count
        ("a/x.jpg\nthree\n", ["'a/x.jpg'", "line 2"], "'three' is not a valid integer"),
        # a record cut right after its path
        (
            "a/x.jpg\n1\n1 2 30 30 0 0 0 0 0 0\na/y.jpg\n",
            ["'a/y.jpg'", "line 5"],
            "missing the face count",
        ),
        # 0 faces declared but a face listed
        ("a/x.jpg\n0\n1 2 30 30 0 0 0 0 0 0\n", ["'a/x.jpg'", "line 3"], "declares 0 faces"),
    ],
)
def test_malformed(tmp_path, check_format_error, text, parts, what):
    txt = tmp_path / "bad_gt.txt"
    txt.write_text(text)
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_widerface(str(txt), str(tmp_path))
    err = check_format_error(excinfo, txt, *parts)
    assert what in err.reason


def test_missing_annotation_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        load_widerface(str(tmp_path / "nope.txt"), str(tmp_path))


def test_register_is_lazy(tmp_path, wider):
    register_widerface("widerface_test_absent", str(tmp_path / "absent.txt"), str(tmp_path))
    meta = MetadataCatalog.get("widerface_test_absent")
    assert meta.thing_classes == ["face"] and meta.evaluator_type == "wider"
    with pytest.raises(FileNotFoundError):
        DatasetCatalog.get("widerface_test_absent")
    txt, images = wider
    register_widerface("widerface_test_fixture", txt, images, evaluator_type="afw", gt_dir="g")
    assert MetadataCatalog.get("widerface_test_fixture").gt_dir == "g"
    assert len(DatasetCatalog.get("widerface_test_fixture")) == 2


# ---------------------------------------------------------------- real data
@pytest.mark.parametrize(
    "name, num_images, num_faces, evaluator_type",
    [("widerface_val", 1054, 8373, "wider"), ("widerface_train", 980, 6166, "afw")],
)
def test_real_widerface(
    datasets_root, caplog, warnings_of, name, num_images, num_faces, evaluator_type
):
    meta = MetadataCatalog.get(name)
    assert meta.image_root.startswith(
        datasets_root
    ), "facecraft_d2.data was imported before DETECTRON2_DATASETS was set"
    with caplog.at_level(logging.WARNING):
        dicts = DatasetCatalog.get(name)
    total, ignored = count_annotations(dicts)
    print("{}: {} images, {} faces ({} ignore regions)".format(name, len(dicts), total, ignored))
    assert len(dicts) == num_images
    assert total == num_faces  # every face accounted for, ignored ones included
    assert len(warnings_of(caplog, "widerface")) == 1  # the images that are not here
    assert meta.evaluator_type == evaluator_type and meta.thing_classes == ["face"]
    assert len({d["image_id"] for d in dicts}) == num_images
    assert all(d["height"] > 0 and d["width"] == 1024 for d in dicts)
    if name == "widerface_val":
        assert os.path.isfile(os.path.join(meta.gt_dir, "wider_face_val.mat"))
        assert any(d["image_id"] == "1--Handshaking/1_Handshaking_Handshaking_1_664" for d in dicts)
