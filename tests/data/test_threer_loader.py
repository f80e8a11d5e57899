# Copyright (c) facecraft_d2 contributors.
"""3R-style JSON loader on small fixtures built by the test."""

import json
import logging
import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

import facecraft_d2.data  # noqa: F401  registers the builtin datasets
from facecraft_d2.data.datasets.common import AnnotationFormatError
from facecraft_d2.data.datasets.landmarks import landmarks_to_square_box
from facecraft_d2.data.datasets.threer import load_threer, register_threer

FACE = {
    "LeftEyeCenter": [20, 20],
    "RightEyeCenter": [40, 20],
    "NoseCenter": [30, 32],
    "MouthCenter": [30, 42],
    "ChinCenter": None,
}


def good_content():
    return {
        "landmark_scheme": "aflw21",
        "images": [
            {
                "file_name": "party/0001.jpg",
                "faces": [{"landmarks": FACE}],
                "ignore_regions": [[60, 5, 10, 20]],
            },
            {
                "file_name": "voc/bg.jpg",
                "image_id": "background-1",
                "background": True,
                "height": 30,
                "width": 40,
            },
            {"file_name": "party/missing.jpg", "faces": [{"landmarks": FACE}]},
        ],
    }


@pytest.fixture
def threer(tmp_path, make_image):
    images = tmp_path / "images"
    make_image(images / "party" / "0001.jpg", 80, 60)
    make_image(images / "voc" / "bg.jpg", 40, 30)
    path = tmp_path / "train.json"
    path.write_text(json.dumps(good_content()))
    return str(path), str(images)


def test_load_good_file(threer, caplog, warnings_of):
    path, images = threer
    with caplog.at_level(logging.WARNING):
        dicts = load_threer(path, images, dataset_name="threer_fixture")
    assert [d["image_id"] for d in dicts] == ["party/0001", "background-1"]
    party, background = dicts
    assert party["file_name"] == os.path.join(images, "party", "0001.jpg")
    assert (party["height"], party["width"]) == (60, 80) and party["background"] is False
    face, ignore = party["annotations"]
    assert face["bbox"] == pytest.approx(
        landmarks_to_square_box({k: v for k, v in FACE.items() if v})
    )
    assert (
        face["bbox_mode"] == BoxMode.XYXY_ABS and face["iscrowd"] == 0 and face["category_id"] == 0
    )
    assert set(face["landmarks"]) == {
        "LeftEyeCenter",
        "RightEyeCenter",
        "NoseCenter",
        "MouthCenter",
    }
    assert ignore == {
        "bbox": [60.0, 5.0, 70.0, 25.0],
        "bbox_mode": BoxMode.XYXY_ABS,
        "category_id": 0,
        "iscrowd": 1,
        "ignore_reason": "ignore_region",
    }
    assert background["background"] is True and background["annotations"] == []
    assert (background["height"], background["width"]) == (30, 40)
    (warning,) = warnings_of(caplog, "threer")
    assert "threer_fixture" in warning.getMessage() and "1 of 3" in warning.getMessage()
    assert images in warning.getMessage()


def test_register(threer):
    path, images = threer
    register_threer("threer_test_fixture", path, images)
    assert MetadataCatalog.get("threer_test_fixture").evaluator_type == "afw"
    assert len(DatasetCatalog.get("threer_test_fixture")) == 2


def _image(**entry):
    return {"images": [dict({"file_name": "a/x.jpg"}, **entry)]}


@pytest.mark.parametrize(
    "content, parts, what",
    [
        (
            _image(faces=[{"landmarks": {"Nose": [1, 2], "ChinCenter": [3, 4]}}]),
            ["images[0]", "'a/x.jpg'", "face 0"],
            "unknown landmark name 'Nose'",
        ),
        (
            _image(faces=[{"landmarks": FACE}, {"landmarks": {"NoseCenter": [1, 2]}}]),
            ["images[0]", "face 1"],
            "at least two distinct points",
        ),
        (
            _image(faces=[{"landmarks": {"NoseCenter": [1, "2"], "ChinCenter": [3, 4]}}]),
            ["images[0]", "face 0"],
            "must be [x, y] or null",
        ),
        (_image(faces=[{"box": [1, 2, 3, 4]}]), ["images[0]", "face 0"], "'landmarks'"),
        (
            _image(background=True, faces=[{"landmarks": FACE}]),
            ["images[0]"],
            "must not list faces",
        ),
        (_image(ignore_regions=[[1, 2, 3]]), ["images[0]", "ignore region 0"], "[x, y, w, h]"),
        (
            _image(ignore_regions=[[1, 2, 0, 5]]),
            ["images[0]", "ignore region 0"],
            "non-positive size",
        ),
        (_image(height=10), ["images[0]"], "'height' and 'width'"),
        (_image(boxes=[]), ["images[0]"], "unknown key(s) boxes"),
        ({"images": [{"faces": []}]}, ["images[0]"], "'file_name'"),
        ({"imgs": []}, ["top level"], "'images' list"),
        (dict(_image(), landmark_scheme="ibug68"), ["landmark_scheme"], "unsupported scheme"),
    ],
)
def test_malformed(tmp_path, check_format_error, content, parts, what):
    path = tmp_path / "train.json"
    path.write_text(json.dumps(content))
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_threer(str(path), str(tmp_path))
    assert what in check_format_error(excinfo, path, *parts).reason


def test_invalid_json(tmp_path, check_format_error):
    path = tmp_path / "train.json"
    path.write_text('{"images": [\n  {"file_name": "a.jpg",}\n]}')
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_threer(str(path), str(tmp_path))
    check_format_error(excinfo, path, "line 2")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="train.json"):
        load_threer(str(tmp_path / "train.json"), str(tmp_path))
