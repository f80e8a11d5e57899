# Copyright (c) facecraft_d2 contributors.
"""dlib imglab XML loader: synthetic files and dlib's example faces."""

import logging
import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

import facecraft_d2.data  # noqa: F401  registers the builtin datasets
from facecraft_d2.data.datasets.common import AnnotationFormatError, count_annotations
from facecraft_d2.data.datasets.dlib_xml import load_dlib_xml

GOOD = """<?xml version='1.0' encoding='ISO-8859-1'?>
<dataset>
<name>faces</name>
<images>
  <image file='a.jpg' width='64' height='48'>
    <box top='5' left='6' width='20' height='21'/>
    <box top='10' left='30' width='12' height='12' ignore='1'>
      <part name='00' x='31' y='12'/>
      <part name='01' x='40' y='12'/>
    </box>
  </image>
  <image file='sub/b.jpg'>
    <box top='1' left='2' width='3' height='4'/>
  </image>
  <image file='missing.jpg' width='10' height='10'/>
</images>
</dataset>
"""


@pytest.fixture
def dlib(tmp_path, make_image):
    make_image(tmp_path / "a.jpg", 64, 48)
    make_image(tmp_path / "sub" / "b.jpg", 50, 40)
    path = tmp_path / "training.xml"
    path.write_text(GOOD)
    return str(path), str(tmp_path)


def test_load_good_file(dlib, caplog, warnings_of):
    path, root = dlib
    with caplog.at_level(logging.WARNING):
        dicts = load_dlib_xml(path, dataset_name="dlib_fixture")  # image_root: the XML's folder
    assert [d["image_id"] for d in dicts] == ["a", "sub/b"]
    a, b = dicts
    assert a["file_name"] == os.path.join(root, "a.jpg") and (a["height"], a["width"]) == (48, 64)
    assert (b["height"], b["width"]) == (40, 50)  # from the image header
    face, ignored = a["annotations"]
    assert face == {
        "bbox": [6.0, 5.0, 20.0, 21.0],
        "bbox_mode": BoxMode.XYWH_ABS,
        "category_id": 0,
        "iscrowd": 0,
    }
    assert ignored["iscrowd"] == 1 and ignored["ignore_reason"] == "ignore"
    assert ignored["landmarks"] == {"00": [31.0, 12.0], "01": [40.0, 12.0]}
    (warning,) = warnings_of(caplog, "dlib_xml")
    assert "dlib_fixture" in warning.getMessage() and "1 of 3" in warning.getMessage()


@pytest.mark.parametrize(
    "body, parts, what",
    [
        (
            "<image file='a.jpg'><box top='1' left='2' width='3'/></image>",
            ["'a.jpg'", "<box> #0"],
            "missing attribute 'height'",
        ),
        (
            "<image file='a.jpg'><box top='1' left='2' width='x' height='4'/></image>",
            ["'a.jpg'", "<box> #0"],
            "'x' is not a valid number",
        ),
        (
            "<image file='a.jpg'><box top='1' left='2' width='3' height='4' ignore='yes'/></image>",
            ["'a.jpg'", "<box> #0"],
            "ignore='yes'",
        ),
        ("<image file='a.jpg' width='big' height='4'/>", ["'a.jpg'"], "not a valid integer"),
        ("<image><box top='1' left='2' width='3' height='4'/></image>", ["<image> #0"], "'file'"),
        (
            "<image file='a.jpg'><box top='1' left='2' width='3' height='4'>"
            "<part name='0' x='1'/></box></image>",
            ["'a.jpg'", "<part> '0'"],
            "missing attribute 'y'",
        ),
    ],
)
def test_malformed(tmp_path, make_image, check_format_error, body, parts, what):
    make_image(tmp_path / "a.jpg")
    path = tmp_path / "bad.xml"
    path.write_text("<dataset><images>{}</images></dataset>".format(body))
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_dlib_xml(str(path))
    assert what in check_format_error(excinfo, path, *parts).reason


def test_bad_xml(tmp_path, check_format_error):
    path = tmp_path / "bad.xml"
    path.write_text("<dataset>\n<images>\n<image file='a.jpg'>\n</images>\n</dataset>\n")
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_dlib_xml(str(path))
    assert "invalid XML" in check_format_error(excinfo, path, "line 4").reason
    path.write_text("<annotations/>")
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_dlib_xml(str(path))
    check_format_error(excinfo, path, "root element")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="testing.xml"):
        load_dlib_xml(str(tmp_path / "testing.xml"))


# ---------------------------------------------------------------- real data
@pytest.mark.parametrize(
    "name, num_images, num_boxes", [("dlib_faces_train", 4, 18), ("dlib_faces_test", 5, 25)]
)
def test_real_dlib_faces(datasets_root, caplog, warnings_of, name, num_images, num_boxes):
    meta = MetadataCatalog.get(name)
    assert meta.annotation_file.startswith(datasets_root) and meta.evaluator_type == "afw"
    with caplog.at_level(logging.WARNING):
        dicts = DatasetCatalog.get(name)
    total, ignored = count_annotations(dicts)
    print("{}: {} images, {} boxes".format(name, len(dicts), total))
    assert (len(dicts), total, ignored) == (num_images, num_boxes, 0)
    assert warnings_of(caplog, "dlib_xml") == []  # every image is there
    for d in dicts:
        for ann in d["annotations"]:
            x, y, w, h = ann["bbox"]
            assert 0 <= x and 0 <= y and x + w <= d["width"] + 1 and y + h <= d["height"] + 1
