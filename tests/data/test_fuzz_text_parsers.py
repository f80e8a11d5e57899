# Copyright (c) facecraft_d2 contributors.
"""
Property-based fuzzing of the text annotation parsers: WIDER FACE ground truth and FDDB
ellipse lists. Whatever the bytes, the loader returns a dataset or raises
AnnotationFormatError naming the file and the record, and a dataset that loads keeps every
record and every face its file declares (no silently shorter dataset).
"""
import os

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from facecraft_d2.data.datasets.fddb import load_fddb
from facecraft_d2.data.datasets.widerface import load_widerface

from fuzz_support import FUZZ, load_outcome, mutated, write

WIDER_NAMES = ["0--Parade/0_Parade_1.jpg", "0--Parade/0_Parade_2.jpg", "12--Group/12_Group_3.jpg"]
FDDB_NAMES = ["2002/08/11/big/img_591", "2002/08/26/big/img_265", "2003/01/13/big/img_576"]


def _images(root, rel_paths):
    for rel in rel_paths:
        path = os.path.join(str(root), rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(path, format="JPEG")
    return str(root)


@pytest.fixture(scope="module")
def roots(tmp_path_factory):
    base = tmp_path_factory.mktemp("text_parsers")
    return {
        "wider": _images(base / "wider", WIDER_NAMES),
        "fddb": _images(base / "fddb", [n + ".jpg" for n in FDDB_NAMES]),
        "files": base,
    }


def _lines(data: bytes):
    """The file's lines as the loaders see them, or None if it is not UTF-8."""
    try:
        return [line.strip() for line in data.decode("utf-8").splitlines()]
    except UnicodeDecodeError:
        return None


# ---------------------------------------------------------------- WIDER FACE text format

coord = st.one_of(st.integers(-5, 900), st.floats(0, 900, allow_nan=False).map(lambda v: round(v, 2)))
wider_face = st.tuples(st.tuples(coord, coord, coord, coord), st.tuples(*[st.integers(0, 2)] * 6))
wider_records = st.lists(
    st.tuples(st.sampled_from(WIDER_NAMES), st.lists(wider_face, max_size=4)), min_size=1, max_size=6
)


def wider_text(records) -> bytes:
    lines = []
    for name, faces in records:
        lines += [name, str(len(faces))]
        if not faces:
            lines.append("0 0 0 0 0 0 0 0 0 0")
        lines += [" ".join(str(v) for v in box + attrs) for box, attrs in faces]
    return ("\n".join(lines) + "\n").encode()


def _load_wider(roots, data):
    path = write(os.path.join(str(roots["files"]), "wider_gt.txt"), data)
    return path, load_outcome(lambda: load_widerface(path, roots["wider"]), path)


@FUZZ
@given(records=wider_records)
def test_wider_valid_files_load_completely(roots, records):
    _, dataset = _load_wider(roots, wider_text(records))
    assert [d["image_id"] + ".jpg" for d in dataset] == [name for name, _ in records]
    for d, (_, faces) in zip(dataset, records):
        assert [a["bbox"] for a in d["annotations"]] == [[float(v) for v in box] for box, _ in faces]


@FUZZ
@given(data=wider_records.map(wider_text).flatmap(mutated))
def test_wider_damaged_files_load_whole_or_raise(roots, data):
    path, dataset = _load_wider(roots, data)
    lines = _lines(data)
    if dataset is None:
        return
    assert lines is not None
    # every listed image whose file exists is loaded, with every face its count declares
    listed = [l for l in lines if l.lower().endswith(".jpg")]
    present = [l for l in listed if os.path.isfile(os.path.join(roots["wider"], l))]
    assert [d["image_id"] + ".jpg" for d in dataset] == present
    for d in dataset:
        k = lines.index(d["image_id"] + ".jpg")
        assert len(d["annotations"]) == int(float(lines[k + 1]))
        lines[k] = ""  # the next record with the same image


@FUZZ
@given(records=wider_records, cut=st.floats(0, 1, exclude_max=True))
def test_wider_truncated_files_never_drop_declared_faces(roots, records, cut):
    data = wider_text(records)
    _, dataset = _load_wider(roots, data[: int(cut * len(data))])
    if dataset is not None:
        assert len(dataset) <= len(records)
        for d, (name, faces) in zip(dataset, records):
            assert d["image_id"] + ".jpg" == name and len(d["annotations"]) == len(faces)


@FUZZ
@given(data=st.binary(max_size=400))
def test_wider_arbitrary_bytes(roots, data):
    _load_wider(roots, data)


# ---------------------------------------------------------------- FDDB ellipse lists

radius = st.floats(0.5, 400, allow_nan=False).map(lambda v: round(v, 3))
position = st.floats(-50, 500, allow_nan=False).map(lambda v: round(v, 3))
ellipse = st.tuples(radius, radius, st.floats(-3.2, 3.2).map(lambda v: round(v, 4)), position, position)
fddb_records = st.lists(
    st.tuples(st.sampled_from(FDDB_NAMES), st.lists(ellipse, max_size=4)), min_size=1, max_size=6
)


def fddb_text(records) -> bytes:
    lines = []
    for name, ellipses in records:
        lines += [name, str(len(ellipses))]
        lines += [" ".join(str(v) for v in e) + "  1" for e in ellipses]
    return ("\n".join(lines) + "\n").encode()


def _load_fddb(roots, data):
    path = write(os.path.join(str(roots["files"]), "FDDB-fold-01-ellipseList.txt"), data)
    return path, load_outcome(lambda: load_fddb(path, roots["fddb"]), path)


@FUZZ
@given(records=fddb_records)
def test_fddb_valid_files_load_completely(roots, records):
    _, dataset = _load_fddb(roots, fddb_text(records))
    assert [d["image_id"] for d in dataset] == [name for name, _ in records]
    for d, (_, ellipses) in zip(dataset, records):
        assert [a["ellipse"] for a in d["annotations"]] == [list(e) for e in ellipses]
        for a in d["annotations"]:
            x1, y1, x2, y2 = a["bbox"]
            assert 0 <= x1 <= x2 <= d["width"] and 0 <= y1 <= y2 <= d["height"]


@FUZZ
@given(data=fddb_records.map(fddb_text).flatmap(mutated))
def test_fddb_damaged_files_load_whole_or_raise(roots, data):
    _, dataset = _load_fddb(roots, data)
    if dataset is None:
        return
    lines = [l for l in _lines(data) if l]
    # records are (name, count, count lines): every present image keeps its declared faces
    names, i = [], 0
    while i < len(lines):
        names.append((lines[i], int(float(lines[i + 1]))))
        i += 2 + names[-1][1]
    present = [(n, c) for n, c in names if os.path.isfile(os.path.join(roots["fddb"], n + ".jpg"))]
    assert [(d["image_id"], len(d["annotations"])) for d in dataset] == present
    for d in dataset:
        for a in d["annotations"]:
            assert all(np.isfinite(a["bbox"])) and all(np.isfinite(a["ellipse"]))


@FUZZ
@given(records=fddb_records, cut=st.floats(0, 1, exclude_max=True))
def test_fddb_truncated_files_never_drop_declared_faces(roots, records, cut):
    data = fddb_text(records)
    _, dataset = _load_fddb(roots, data[: int(cut * len(data))])
    if dataset is not None:
        assert len(dataset) <= len(records)
        for d, (name, ellipses) in zip(dataset, records):
            assert d["image_id"] == name and len(d["annotations"]) == len(ellipses)


@FUZZ
@given(data=st.binary(max_size=400))
def test_fddb_arbitrary_bytes(roots, data):
    _load_fddb(roots, data)
