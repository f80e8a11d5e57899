# Copyright (c) facecraft_d2 contributors.
"""
Property-based fuzzing of the binary annotation parsers: AFW ``anno.mat`` (MATLAB v7.3 /
HDF5) and the AFLW sqlite database. Whatever the bytes or the stored values, the loader
returns a dataset or raises AnnotationFormatError naming the file and the record; a dataset
that loads keeps every face of every present image.
"""
import itertools
import os
import sqlite3

import h5py
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from facecraft_d2.data.datasets.aflw import load_aflw
from facecraft_d2.data.datasets.afw import load_afw_annotations
from facecraft_d2.data.datasets.landmarks import AFLW_LANDMARK_NAMES

from fuzz_support import FUZZ, load_outcome, mutated, write
from test_aflw_loader import SCHEMA

FILES = ["0/image_a.jpg", "2/image_b.jpg"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    base = tmp_path_factory.mktemp("binary_parsers")
    for rel in FILES:
        path = base / "flickr" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.zeros((24, 32, 3), np.uint8)).save(str(path), format="JPEG")
    return base


# ---------------------------------------------------------------- AFW anno.mat (HDF5)

finite = st.floats(-100, 600, allow_nan=False)
anything = st.one_of(finite, st.just(float("nan")), st.just(float("inf")), st.just(1e308))


def _matrix(shape, values):
    return st.lists(values, min_size=int(np.prod(shape)), max_size=int(np.prod(shape))).map(
        lambda v: np.asarray(v, np.float64).reshape(shape)
    )


good_face = st.tuples(_matrix((2, 2), finite), _matrix((3,), finite), _matrix((6, 2), anything))
odd_shape = st.sampled_from([(0,), (1,), (2,), (3,), (2, 3), (6, 2), (1, 3), (4, 4)])
odd_face = st.tuples(
    st.one_of(_matrix((2, 2), anything), odd_shape.flatmap(lambda s: _matrix(s, anything))),
    odd_shape.flatmap(lambda s: _matrix(s, anything)),
    odd_shape.flatmap(lambda s: _matrix(s, anything)),
)
names = st.sampled_from(["1004109301.jpg", "a.jpg", ""])


def write_afw(path, rows, classes=("char", "cell", "double")):
    """``rows`` = [(name, [(box, pose, landmarks), ...])], stored as MATLAB v7.3 does."""
    counter = itertools.count()
    char_class, cell_class, double_class = classes
    with h5py.File(str(path), "w") as f:
        refs = f.create_group("#refs#")

        def dataset(data, matlab_class):
            d = refs.create_dataset("r{}".format(next(counter)), data=data)
            d.attrs["MATLAB_class"] = np.bytes_(matlab_class)
            return d.ref

        def cell(matrices):
            out = np.empty((1, len(matrices)), dtype=h5py.ref_dtype)
            for k, m in enumerate(matrices):
                out[0, k] = dataset(np.atleast_1d(m).T, double_class)
            return dataset(out, cell_class)

        anno = np.empty((4, len(rows)), dtype=h5py.ref_dtype)
        for i, (name, faces) in enumerate(rows):
            anno[0, i] = dataset(np.array([[ord(c)] for c in name] or [[0]], np.uint16), char_class)
            for col in range(3):
                anno[col + 1, i] = cell([face[col] for face in faces])
        f.create_dataset("anno", data=anno).attrs["MATLAB_class"] = np.bytes_("cell")
    return str(path)


def _load_afw(path):
    return load_outcome(lambda: load_afw_annotations(path), path)


@FUZZ
@given(rows=st.lists(st.tuples(names, st.lists(good_face, min_size=1, max_size=3)), min_size=1, max_size=4))
def test_afw_valid_files_load_completely(root, rows):
    records = _load_afw(write_afw(root / "anno.mat", rows))
    assert [len(r["annotations"]) for r in records] == [len(faces) for _, faces in rows]


@FUZZ
@given(rows=st.lists(st.tuples(names, st.lists(st.one_of(good_face, odd_face), max_size=3)), min_size=1, max_size=3),
       classes=st.tuples(*[st.sampled_from(["char", "cell", "double", "struct"])] * 3))
def test_afw_odd_values_and_types_load_or_raise(root, rows, classes):
    records = _load_afw(write_afw(root / "anno.mat", rows, classes))
    if records is not None:
        assert [len(r["annotations"]) for r in records] == [len(faces) for _, faces in rows]
        for r in records:
            for a in r["annotations"]:
                assert all(np.isfinite(a["bbox"]))


@pytest.fixture(scope="module")
def afw_bytes(tmp_path_factory):
    rows = [("1004109301.jpg", [(np.array([[5.0, 6], [30, 40]]), np.zeros(3), np.ones((6, 2)))] * 2),
            ("a.jpg", [(np.array([[1.0, 2], [10, 12]]), np.ones(3), np.ones((6, 2)))])]
    path = write_afw(tmp_path_factory.mktemp("afw") / "good.mat", rows)
    with open(path, "rb") as f:
        return f.read()


@FUZZ
@given(data=st.data())
def test_afw_damaged_files_load_or_raise(root, afw_bytes, data):
    damaged = data.draw(mutated(afw_bytes))
    records = _load_afw(write(root / "anno.mat", damaged))
    if records is not None:
        assert len(records) == 2  # the row count is in the header, so no row is dropped


# ---------------------------------------------------------------- AFLW sqlite

value = st.one_of(st.integers(-10, 500), st.floats(allow_nan=True), st.text(max_size=4),
                  st.binary(max_size=4), st.none(), st.integers(min_value=-2**63, max_value=2**63 - 1))
plain = st.integers(0, 400)
aflw_face = st.tuples(
    st.sampled_from(["image_a.jpg", "image_b.jpg", "nowhere.jpg"]),
    st.dictionaries(st.sampled_from(AFLW_LANDMARK_NAMES), st.tuples(plain, plain), max_size=5),
    st.tuples(plain, plain, st.integers(1, 90), st.integers(1, 90)),
)
odd_face = st.tuples(
    st.sampled_from(["image_a.jpg", "image_b.jpg", "nowhere.jpg", None, 7]),
    st.dictionaries(st.sampled_from(AFLW_LANDMARK_NAMES), st.tuples(value, value), max_size=4),
    st.tuples(value, value, value, value),
)


def write_aflw(path, faces, image_sizes=((32, 24), (32, 24), (32, 24))):
    if os.path.exists(path):
        os.remove(path)
    conn = sqlite3.connect(str(path))
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO FeatureCoordTypes(feature_id, descr, code) VALUES (?, ?, ?)",
                     [(i + 1, n, "c{}".format(i)) for i, n in enumerate(AFLW_LANDMARK_NAMES)])
    files = [("image_a.jpg", "0/image_a.jpg"), ("image_b.jpg", "2/image_b.jpg"), ("nowhere.jpg", "3/x.jpg")]
    conn.executemany("INSERT INTO FaceImages(db_id, file_id, filepath, bw, width, height) VALUES ('f', ?, ?, 0, ?, ?)",
                     [f + tuple(s) for f, s in zip(files, image_sizes)])
    for face_id, (file_id, points, rect) in enumerate(faces, 1):
        conn.execute("INSERT INTO Faces VALUES (?, ?, 'f')", (face_id, file_id))
        conn.execute("INSERT INTO FaceRect VALUES (?, ?, ?, ?, ?, 1)", (face_id,) + tuple(rect))
        for name, (x, y) in points.items():
            conn.execute("INSERT INTO FeatureCoords VALUES (?, ?, ?, ?, 1)",
                         (face_id, AFLW_LANDMARK_NAMES.index(name) + 1, x, y))
    conn.commit()
    conn.close()
    return str(path)


def _load_aflw(root, path):
    return load_outcome(lambda: load_aflw(path, str(root / "flickr")), path)


def _expected(faces):
    """(image_id, number of faces) of the present images, in the loader's order."""
    counts = {}
    for file_id, _, _ in faces:
        if file_id in ("image_a.jpg", "image_b.jpg"):
            key = "0/image_a" if file_id == "image_a.jpg" else "2/image_b"
            counts[key] = counts.get(key, 0) + 1
    return sorted(counts.items())


@FUZZ
@given(faces=st.lists(aflw_face, min_size=1, max_size=5))
def test_aflw_valid_databases_load_completely(root, faces):
    dataset = _load_aflw(root, write_aflw(root / "aflw.sqlite", faces))
    assert [(d["image_id"], len(d["annotations"])) for d in dataset] == _expected(faces)


@FUZZ
@given(faces=st.lists(st.one_of(aflw_face, odd_face), min_size=1, max_size=4),
       sizes=st.lists(st.tuples(value, value), min_size=3, max_size=3))
def test_aflw_odd_values_load_or_raise(root, faces, sizes):
    dataset = _load_aflw(root, write_aflw(root / "aflw.sqlite", faces, sizes))
    if dataset is not None:
        assert [(d["image_id"], len(d["annotations"])) for d in dataset] == _expected(faces)
        for d in dataset:
            assert d["height"] > 0 and d["width"] > 0
            assert all(np.isfinite(a["bbox"]).all() for a in d["annotations"])


@FUZZ
@given(faces=st.lists(aflw_face, min_size=1, max_size=4), data=st.data())
def test_aflw_damaged_databases_load_or_raise(root, faces, data):
    path = write_aflw(root / "aflw.sqlite", faces)
    with open(path, "rb") as f:
        damaged = data.draw(mutated(f.read()))
    _load_aflw(root, write(path, damaged))


@FUZZ
@given(data=st.binary(max_size=300))
def test_binary_arbitrary_bytes(root, data):
    _load_afw(write(root / "anno.mat", data))
    _load_aflw(root, write(root / "aflw.sqlite", data))
