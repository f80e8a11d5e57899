# Copyright (c) facecraft_d2 contributors.
"""
AFLW, "Annotated Facial Landmarks in the Wild" (Koestinger et al., 2011), read from the
official ``aflw.sqlite`` with the standard library's ``sqlite3``.

Tables used (official schema; extra tables and columns are ignored)::

    Faces(face_id, file_id, db_id)
    FaceImages(file_id, filepath, width, height, ...)      images at <image_root>/<filepath>
    FaceRect(face_id, x, y, w, h, annot_type_id)
    FeatureCoords(face_id, feature_id, x, y, annot_type_id)
    FeatureCoordTypes(feature_id, descr, code, x, y, z)     descr: the 21 AFLW point names

Boxes come from the landmarks through :func:`~.landmarks.landmarks_to_square_box` (square,
nose-centred, as in FaceCraft section 6.1), not from ``FaceRect``; the ``FaceRect`` box is kept
as the ``"face_rect"`` extra ([x, y, w, h]). A face whose landmarks do not determine a box
(fewer than two points) is kept as an ignore region (``iscrowd=1``,
``ignore_reason="too_few_landmarks"``) covering its ``FaceRect``.
"""

import logging
import math
import os
import pathlib
import sqlite3
from collections import OrderedDict
from typing import List, Optional

from detectron2.structures import BoxMode

from .common import (
    FACE_CATEGORY_ID,
    register_annotation_file,
    AnnotationFormatError,
    MissingImages,
    image_record,
    require_file,
)
from .landmarks import AFLW_LANDMARK_NAMES, landmarks_to_square_box

__all__ = ["load_aflw", "register_aflw"]

logger = logging.getLogger(__name__)

_REQUIRED_COLUMNS = OrderedDict(
    [
        ("Faces", ("face_id", "file_id")),
        ("FaceImages", ("file_id", "filepath")),
        ("FaceRect", ("face_id", "x", "y", "w", "h")),
        ("FeatureCoords", ("face_id", "feature_id", "x", "y")),
        ("FeatureCoordTypes", ("feature_id", "descr")),
    ]
)


def _columns(conn, table: str) -> List[str]:
    return [row[1].lower() for row in conn.execute("PRAGMA table_info({})".format(table))]


def _check_schema(conn, path: str) -> List[str]:
    """Validate the tables this loader needs; return the columns of FaceImages."""
    for table, needed in _REQUIRED_COLUMNS.items():
        cols = _columns(conn, table)
        if not cols:
            raise AnnotationFormatError(path, "table {}".format(table), "missing table")
        absent = [c for c in needed if c not in cols]
        if absent:
            raise AnnotationFormatError(
                path, "table {}".format(table), "missing column(s) {}".format(", ".join(absent))
            )
    return _columns(conn, "FaceImages")


def _number(value, path, rec, what) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = float("nan")
    if not math.isfinite(number):
        raise AnnotationFormatError(
            path, rec, "{} is not a finite number: {!r}".format(what, value)
        )
    return number


def _read_tables(conn, path: str):
    image_cols = _check_schema(conn, path)
    # image sizes come from FaceImages when it has them, else from the image headers
    has_size = "width" in image_cols and "height" in image_cols
    size_sql = "FaceImages.width, FaceImages.height" if has_size else "NULL, NULL"
    faces = conn.execute(
        "SELECT Faces.face_id, Faces.file_id, FaceImages.filepath, {} FROM Faces "
        "LEFT JOIN FaceImages ON Faces.file_id = FaceImages.file_id "
        "ORDER BY FaceImages.filepath, Faces.face_id".format(size_sql)
    ).fetchall()
    order = ", annot_type_id" if "annot_type_id" in _columns(conn, "FaceRect") else ""
    rects = {}
    for face_id, x, y, w, h in conn.execute(
        "SELECT face_id, x, y, w, h FROM FaceRect ORDER BY face_id{}, rowid".format(order)
    ):
        if face_id not in rects:
            rec = "FaceRect face_id {}".format(face_id)
            rects[face_id] = [_number(v, path, rec, k) for k, v in zip("xywh", (x, y, w, h))]
    coords = {}
    for face_id, feature_id, descr, x, y in conn.execute(
        "SELECT FeatureCoords.face_id, FeatureCoords.feature_id, FeatureCoordTypes.descr, "
        "FeatureCoords.x, FeatureCoords.y FROM FeatureCoords LEFT JOIN FeatureCoordTypes "
        "ON FeatureCoords.feature_id = FeatureCoordTypes.feature_id "
        "ORDER BY FeatureCoords.face_id, FeatureCoords.feature_id"
    ):
        rec = "FeatureCoords face_id {}, feature_id {}".format(face_id, feature_id)
        if descr is None:
            raise AnnotationFormatError(path, rec, "feature_id is not in FeatureCoordTypes")
        coords.setdefault(face_id, {})[str(descr)] = [
            _number(x, path, rec, "x"),
            _number(y, path, rec, "y"),
        ]
    return faces, rects, coords


def load_aflw(sqlite_file: str, image_root: str, dataset_name: Optional[str] = None) -> List[dict]:
    """
    Load AFLW to Detectron2 format.

    Args:
        sqlite_file: the official ``aflw.sqlite``.
        image_root: folder that ``FaceImages.filepath`` is relative to (``aflw/data/flickr``).
        dataset_name: used in log messages only.

    Returns:
        list[dict]: one dict per image present on disk with ``file_name``, ``image_id``
        (``filepath`` without extension, e.g. "3/image00002"), ``height``, ``width`` and
        ``annotations``; each annotation has ``bbox`` (XYXY_ABS square box from the
        landmarks), ``bbox_mode``, ``category_id`` (0), ``iscrowd``, ``face_id``,
        ``landmarks`` ({AFLW name: [x, y]}) and ``face_rect`` ([x, y, w, h], when present);
        ignore regions also have ``ignore_reason``.

    Raises:
        FileNotFoundError: if the database is absent.
        AnnotationFormatError: on a missing table/column, a face without image or with
            non-numeric coordinates, or a file that is not an SQLite database.
    """
    require_file(sqlite_file, "AFLW database")
    uri = pathlib.Path(os.path.abspath(sqlite_file)).as_uri() + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as e:
        raise AnnotationFormatError(sqlite_file, "database", "cannot open: {}".format(e)) from None
    try:
        faces, rects, coords = _read_tables(conn, sqlite_file)
    except sqlite3.DatabaseError as e:
        raise AnnotationFormatError(
            sqlite_file, "database", "not a readable AFLW database: {}".format(e)
        ) from None
    finally:
        conn.close()

    images = OrderedDict()  # filepath -> (height, width, [annotations])
    seen = set()
    for face_id, file_id, filepath, width, height in faces:
        if face_id in seen:  # FaceImages may list a file twice
            continue
        seen.add(face_id)
        rec = "Faces face_id {}".format(face_id)
        if filepath is None:
            raise AnnotationFormatError(
                sqlite_file, rec, "its file_id {!r} is not in FaceImages".format(file_id)
            )
        landmarks = coords.get(face_id, {})
        known = {n: p for n, p in landmarks.items() if n in AFLW_LANDMARK_NAMES}
        try:
            box = landmarks_to_square_box(known)
        except ValueError as e:
            raise AnnotationFormatError(sqlite_file, rec, str(e)) from None
        ann = {
            "bbox_mode": BoxMode.XYXY_ABS,
            "category_id": FACE_CATEGORY_ID,
            "iscrowd": 0,
            "face_id": face_id,
            "landmarks": landmarks,
        }
        rect = rects.get(face_id)
        if rect is not None:
            ann["face_rect"] = rect
        if box is not None:
            ann["bbox"] = box
        elif rect is not None:
            x, y, w, h = rect
            ann.update(bbox=[x, y, x + w, y + h], iscrowd=1, ignore_reason="too_few_landmarks")
        else:
            raise AnnotationFormatError(
                sqlite_file, rec, "the face has neither two landmarks nor a FaceRect to place it"
            )
        size = (height, width) if isinstance(height, int) and isinstance(width, int) else None
        images.setdefault(str(filepath), (size, []))[1].append(ann)

    missing = MissingImages(logger, sqlite_file, image_root, dataset_name)
    dataset_dicts = []
    for filepath, (size, annotations) in images.items():
        file_name = os.path.join(image_root, filepath)
        if not missing.check(file_name):
            continue
        size = size if size and min(size) > 0 else None
        dataset_dicts.append(image_record(image_root, filepath, size, annotations=annotations))
    missing.report()
    return dataset_dicts


def register_aflw(name: str, sqlite_file: str, image_root: str, **metadata) -> None:
    """Register AFLW (:func:`load_aflw`) lazily as ``name``, with ``evaluator_type="afw"``."""
    register_annotation_file(name, load_aflw, sqlite_file, image_root, **metadata)
