# Copyright (c) facecraft_d2 contributors.
"""
Property-based fuzzing of the JSON and XML annotation parsers: the 3R-style JSON format and
dlib imglab XML. Whatever the bytes (or JSON values), the loader returns a dataset or raises
AnnotationFormatError naming the file and the record; a dataset that loads has every listed
image whose file exists, with all of its faces.
"""
import json
import os
import xml.etree.ElementTree as ET

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from facecraft_d2.data.datasets.dlib_xml import load_dlib_xml
from facecraft_d2.data.datasets.landmarks import AFLW_LANDMARK_NAMES
from facecraft_d2.data.datasets.threer import load_threer

from fuzz_support import FUZZ, load_outcome, mutated, write

NAMES = ["party/0001.jpg", "party/0002.jpg", "beach.jpg"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("markup_parsers")
    for rel in NAMES:
        path = base / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(str(path), format="JPEG")
    return str(base)


# ---------------------------------------------------------------- 3R-style JSON

point = st.tuples(st.integers(0, 500), st.integers(0, 500)).map(list)
face = st.dictionaries(st.sampled_from(AFLW_LANDMARK_NAMES), point, min_size=2, max_size=5).filter(
    lambda d: len({tuple(p) for p in d.values()}) > 1
).map(lambda lm: {"landmarks": lm})
region = st.tuples(st.integers(0, 300), st.integers(0, 300), st.integers(1, 90), st.integers(1, 90))
threer_image = st.fixed_dictionaries(
    {"file_name": st.sampled_from(NAMES)},
    optional={"faces": st.lists(face, max_size=3),
              "ignore_regions": st.lists(region.map(list), max_size=2),
              "height": st.integers(1, 900), "width": st.integers(1, 900)},
).map(lambda e: dict(e, height=e.get("height", 10), width=e.get("width", 10))
      if ("height" in e) != ("width" in e) else e)  # both or neither
threer_content = st.lists(threer_image, min_size=1, max_size=5).map(lambda images: {"images": images})
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=8,
)


def _load_threer(root, data):
    path = write(os.path.join(root, "threer.json"), data)
    return load_outcome(lambda: load_threer(path, root), path)


def _json(content):
    return json.dumps(content, allow_nan=True).encode()


@FUZZ
@given(content=threer_content)
def test_threer_valid_files_load_completely(root, content):
    dataset = _load_threer(root, _json(content))
    assert [os.path.relpath(d["file_name"], root) for d in dataset] == [e["file_name"] for e in content["images"]]
    for d, e in zip(dataset, content["images"]):
        assert len(d["annotations"]) == len(e.get("faces", [])) + len(e.get("ignore_regions", []))


@st.composite
def threer_with_a_bad_value(draw):
    """A valid file with one value, somewhere in it, replaced by an arbitrary JSON value."""
    content = draw(threer_content)
    node, key = content, "images"
    while isinstance(node[key], (dict, list)) and node[key] and draw(st.booleans()):
        node = node[key]
        key = draw(st.sampled_from(sorted(node)) if isinstance(node, dict) else st.integers(0, len(node) - 1))
    node[key] = draw(json_values)
    return content


@FUZZ
@given(content=threer_with_a_bad_value())
def test_threer_bad_values_load_or_raise(root, content):
    dataset = _load_threer(root, _json(content))
    if dataset is not None:  # then the replaced value was valid: nothing is dropped
        listed = [e["file_name"] for e in content["images"]]
        assert [os.path.relpath(d["file_name"], root) for d in dataset] == [n for n in listed if n in NAMES]
        for d, e in zip(dataset, content["images"]):
            assert len(d["annotations"]) == len(e.get("faces", [])) + len(e.get("ignore_regions", []))


@FUZZ
@given(data=threer_content.map(_json).flatmap(mutated))
def test_threer_damaged_files_load_or_raise(root, data):
    _load_threer(root, data)


HUGE_BOX = b'{"NoseCenter": [1e308, 0], "ChinCenter": [-1e308, 0]}'


@pytest.mark.parametrize(
    "data",
    [b"[" * 100000,
     b'{"images": [{"file_name": "beach.jpg", "height": 1' + b"0" * 5000 + b"}]}",
     b'{"images": [{"file_name": "beach.jpg", "faces": [{"landmarks": ' + HUGE_BOX + b"}]}]}"],
    ids=["deep-nesting", "huge-integer", "overflowing-box"],
)
def test_threer_pathological_json(root, data):
    assert _load_threer(root, data) is None


# ---------------------------------------------------------------- dlib imglab XML

dlib_box = st.fixed_dictionaries(
    {"top": st.integers(-5, 400), "left": st.integers(-5, 400), "width": st.integers(0, 200),
     "height": st.integers(0, 200)},
    optional={"ignore": st.sampled_from(["0", "1"])},
)
dlib_image = st.tuples(st.sampled_from(NAMES), st.lists(dlib_box, max_size=4), st.booleans())


def dlib_xml(images) -> bytes:
    dataset = ET.Element("dataset")
    holder = ET.SubElement(dataset, "images")
    for name, boxes, with_size in images:
        attrs = {"file": name, "width": "32", "height": "24"} if with_size else {"file": name}
        image = ET.SubElement(holder, "image", attrs)
        for k, box in enumerate(boxes):
            b = ET.SubElement(image, "box", {k: str(v) for k, v in box.items()})
            ET.SubElement(b, "part", {"name": "00", "x": str(box["left"]), "y": str(box["top"])})
    return ET.tostring(dataset, xml_declaration=True, encoding="utf-8")


def _load_dlib(root, data):
    path = write(os.path.join(root, "faces.xml"), data)
    return load_outcome(lambda: load_dlib_xml(path, root), path)


@FUZZ
@given(images=st.lists(dlib_image, min_size=1, max_size=5))
def test_dlib_valid_files_load_completely(root, images):
    dataset = _load_dlib(root, dlib_xml(images))
    assert [(os.path.relpath(d["file_name"], root), len(d["annotations"])) for d in dataset] == [
        (name, len(boxes)) for name, boxes, _ in images
    ]


@FUZZ
@given(data=st.lists(dlib_image, min_size=1, max_size=5).map(dlib_xml).flatmap(mutated))
def test_dlib_damaged_files_load_or_raise(root, data):
    dataset = _load_dlib(root, data)
    if dataset is not None:  # the XML still parses: each present image keeps all its boxes
        tree = ET.fromstring(data)
        listed = [(i.get("file"), len(list(i.iter("box")))) for i in tree.find("images").iter("image")]
        present = [(f, n) for f, n in listed if os.path.isfile(os.path.join(root, f))]
        assert [(os.path.relpath(d["file_name"], root), len(d["annotations"])) for d in dataset] == present


@pytest.mark.parametrize("declaration", [b"foo", b"shift_jis", b"utf-32", b"utf-16"])
def test_dlib_unsupported_encodings(root, declaration):
    data = b'<?xml version="1.0" encoding="' + declaration + b'"?><dataset><images/></dataset>'
    assert _load_dlib(root, data) is None


@FUZZ
@given(data=st.binary(max_size=300))
def test_markup_arbitrary_bytes(root, data):
    _load_threer(root, data)
    _load_dlib(root, data)
