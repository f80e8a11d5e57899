# Copyright (c) facecraft_d2 contributors.
"""AFLW sqlite loader on a small database built by the test."""

import logging
import os
import sqlite3

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from detectron2.structures import BoxMode

import facecraft_d2.data  # noqa: F401  registers the builtin datasets
from facecraft_d2.data.datasets.aflw import load_aflw, register_aflw
from facecraft_d2.data.datasets.common import AnnotationFormatError
from facecraft_d2.data.datasets.landmarks import AFLW_LANDMARK_NAMES, landmarks_to_square_box

SCHEMA = """
CREATE TABLE Faces(face_id INTEGER PRIMARY KEY, file_id TEXT, db_id TEXT);
CREATE TABLE FaceImages(image_id INTEGER PRIMARY KEY, db_id TEXT, file_id TEXT, filepath TEXT,
                        bw INTEGER, width INTEGER, height INTEGER);
CREATE TABLE FaceRect(face_id INTEGER, x INTEGER, y INTEGER, w INTEGER, h INTEGER,
                      annot_type_id INTEGER);
CREATE TABLE FeatureCoords(face_id INTEGER, feature_id INTEGER, x REAL, y REAL,
                           annot_type_id INTEGER);
CREATE TABLE FeatureCoordTypes(feature_id INTEGER PRIMARY KEY, descr TEXT, code TEXT,
                               x REAL, y REAL, z REAL);
"""

FRONTAL = {
    "LeftEyeCenter": (20, 20),
    "RightEyeCenter": (40, 20),
    "NoseCenter": (30, 32),
    "MouthLeftCorner": (23, 42),
    "MouthRightCorner": (37, 42),
    "ChinCenter": (30, 55),
}
PROFILE = {
    "RightEyeCenter": (70, 20),
    "NoseCenter": (80, 32),
    "MouthRightCorner": (72, 42),
    "RightEar": (55, 25),
}


def build_db(path, faces=None, drop_table=None, bad_value=False):
    """Three images (0/image_a.jpg: two faces, 2/image_b.jpg: one face, 3/image_c.jpg: missing)."""
    faces = faces or [
        (1, "image_a.jpg", FRONTAL, (10, 8, 40, 50)),
        (2, "image_a.jpg", PROFILE, (50, 10, 40, 40)),
        (3, "image_b.jpg", {"NoseCenter": (10, 10)}, (2, 3, 20, 22)),  # too few landmarks
        (4, "image_c.jpg", FRONTAL, (10, 8, 40, 50)),
    ]
    conn = sqlite3.connect(str(path))
    conn.executescript(SCHEMA)
    conn.executemany(
        "INSERT INTO FeatureCoordTypes(feature_id, descr, code) VALUES (?, ?, ?)",
        [(i + 1, n, "c{}".format(i)) for i, n in enumerate(AFLW_LANDMARK_NAMES)],
    )
    conn.executemany(
        "INSERT INTO FaceImages(db_id, file_id, filepath, bw, width, height) "
        "VALUES (?, ?, ?, 0, ?, ?)",
        [
            ("flickr", "image_a.jpg", "0/image_a.jpg", 100, 80),
            ("flickr", "image_b.jpg", "2/image_b.jpg", 64, 48),
            ("flickr", "image_c.jpg", "3/image_c.jpg", 64, 48),
        ],
    )
    for face_id, file_id, points, rect in faces:
        conn.execute("INSERT INTO Faces VALUES (?, ?, 'flickr')", (face_id, file_id))
        conn.execute("INSERT INTO FaceRect VALUES (?, ?, ?, ?, ?, 1)", (face_id,) + rect)
        for name, (x, y) in points.items():
            conn.execute(
                "INSERT INTO FeatureCoords VALUES (?, ?, ?, ?, 1)",
                (face_id, AFLW_LANDMARK_NAMES.index(name) + 1, x, y),
            )
    if bad_value:
        conn.execute("UPDATE FeatureCoords SET x = 'n/a' WHERE face_id = 2 AND feature_id = 15")
    if drop_table:
        conn.execute("DROP TABLE {}".format(drop_table))
    conn.commit()
    conn.close()
    return str(path)


@pytest.fixture
def aflw(tmp_path, make_image):
    flickr = tmp_path / "flickr"
    make_image(flickr / "0" / "image_a.jpg", 100, 80)
    make_image(flickr / "2" / "image_b.jpg", 64, 48)
    return build_db(tmp_path / "aflw.sqlite"), str(flickr)


def test_load_good_db(aflw, caplog, warnings_of):
    db, flickr = aflw
    with caplog.at_level(logging.WARNING):
        dicts = load_aflw(db, flickr, dataset_name="aflw_fixture")
    assert [d["image_id"] for d in dicts] == ["0/image_a", "2/image_b"]
    a, b = dicts
    assert a["file_name"] == os.path.join(flickr, "0", "image_a.jpg")
    assert (a["height"], a["width"]) == (80, 100)
    frontal, profile = a["annotations"]
    assert frontal["bbox"] == pytest.approx(landmarks_to_square_box(FRONTAL))  # not FaceRect
    assert (
        frontal["bbox_mode"] == BoxMode.XYXY_ABS
        and frontal["iscrowd"] == 0
        and frontal["category_id"] == 0
    )
    assert frontal["face_rect"] == [10, 8, 40, 50] and frontal["face_id"] == 1
    assert frontal["landmarks"] == {k: list(v) for k, v in FRONTAL.items()}
    x1, y1, x2, y2 = profile["bbox"]
    assert ((x1 + x2) / 2, (y1 + y2) / 2) == pytest.approx(PROFILE["NoseCenter"])
    assert x2 - x1 == pytest.approx(y2 - y1)
    (few,) = b["annotations"]  # one landmark: kept as an ignore region over its FaceRect
    assert few["iscrowd"] == 1 and few["ignore_reason"] == "too_few_landmarks"
    assert few["bbox"] == [2, 3, 22, 25]
    (warning,) = warnings_of(caplog, "aflw")
    assert "aflw_fixture" in warning.getMessage() and "1 of 3" in warning.getMessage()
    assert flickr in warning.getMessage()


def test_register(aflw):
    db, flickr = aflw
    register_aflw("aflw_test_fixture", db, flickr)
    assert MetadataCatalog.get("aflw_test_fixture").evaluator_type == "afw"
    assert len(DatasetCatalog.get("aflw_test_fixture")) == 2


@pytest.mark.parametrize(
    "table", ["Faces", "FaceImages", "FaceRect", "FeatureCoords", "FeatureCoordTypes"]
)
def test_missing_table(tmp_path, check_format_error, table):
    db = build_db(tmp_path / "aflw.sqlite", drop_table=table)
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_aflw(db, str(tmp_path))
    assert check_format_error(excinfo, db, "table " + table).reason == "missing table"


def test_non_numeric_coordinate(tmp_path, check_format_error):
    db = build_db(tmp_path / "aflw.sqlite", bad_value=True)
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_aflw(db, str(tmp_path))
    check_format_error(excinfo, db, "face_id 2", "feature_id 15")


def test_face_without_image(tmp_path, check_format_error):
    db = build_db(tmp_path / "aflw.sqlite", faces=[(7, "nowhere.jpg", FRONTAL, (1, 1, 5, 5))])
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_aflw(db, str(tmp_path))
    assert "not in FaceImages" in check_format_error(excinfo, db, "face_id 7").reason


def test_not_a_database(tmp_path, check_format_error):
    db = tmp_path / "aflw.sqlite"
    db.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(AnnotationFormatError) as excinfo:
        load_aflw(str(db), str(tmp_path))
    check_format_error(excinfo, db, "database")


def test_missing_database(tmp_path):
    with pytest.raises(FileNotFoundError, match="aflw.sqlite"):
        load_aflw(str(tmp_path / "aflw.sqlite"), str(tmp_path))
