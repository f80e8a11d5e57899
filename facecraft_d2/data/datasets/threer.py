# Copyright (c) facecraft_d2 contributors.
"""
The open "3R-style" annotation format of facecraft_d2.

FaceCraft's own 3R dataset is private: faces annotated with 21 landmarks instead of boxes,
*ignore regions* where no negative may be sampled, and background-only images. This module
defines an open JSON format carrying the same information, so users can train on their own data
the way the paper trained on 3R. The specification (also in datasets/README.md)::

    {
      "landmark_scheme": "aflw21",                 optional; the only scheme supported
      "images": [
        {
          "file_name": "party/0001.jpg",           required; relative to the image folder
          "image_id": "party/0001",                optional; default: file_name w/o extension
          "height": 480, "width": 640,             optional; default: read from the image
          "background": false,                     optional; true = no faces (must list none)
          "faces": [                               optional (default []): one entry per face
            {"landmarks": {"NoseCenter": [x, y], "LeftEyeCenter": [x, y], ...}}
          ],
          "ignore_regions": [[x, y, w, h], ...]    optional; no negatives are sampled there
        }
      ]
    }

Landmark names are the 21 AFLW names (:data:`~.landmarks.AFLW_LANDMARK_NAMES`); any subset
of at least two points may be given (``null`` marks a point that is not annotated). Each face
becomes a square, nose-centred box by :func:`~.landmarks.landmarks_to_square_box`; ignore
regions become ``iscrowd=1`` annotations (``ignore_reason="ignore_region"``). All boxes are
``BoxMode.XYXY_ABS``. Background images have empty ``annotations`` and ``"background": True``.

Note: Detectron2 drops images without (non-crowd) annotations from training unless
``DATALOADER.FILTER_EMPTY_ANNOTATIONS`` is False; set it to False to use background images.
"""

import json
import logging
import math
import os
from typing import List, Optional

from detectron2.structures import BoxMode

from .common import (
    FACE_CATEGORY_ID,
    landmark_face,
    register_annotation_file,
    AnnotationFormatError,
    MissingImages,
    image_id_from_path,
    image_size,
    require_file,
)
from .landmarks import normalize_landmarks

__all__ = ["load_threer", "register_threer"]

logger = logging.getLogger(__name__)

_IMAGE_KEYS = {"file_name", "image_id", "height", "width", "background", "faces", "ignore_regions"}


def _is_number(value) -> bool:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def _is_positive_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _face_annotation(face, path, rec) -> dict:
    if not isinstance(face, dict) or not isinstance(face.get("landmarks"), dict):
        raise AnnotationFormatError(path, rec, "a face must be an object with a 'landmarks' object")
    points = face["landmarks"]
    for name, point in points.items():
        if point is not None and not (
            isinstance(point, list) and len(point) == 2 and all(_is_number(v) for v in point)
        ):
            raise AnnotationFormatError(
                path, rec, "landmark {!r} must be [x, y] or null, got {!r}".format(name, point)
            )
    try:
        landmarks = normalize_landmarks(points)
    except ValueError as e:
        raise AnnotationFormatError(path, rec, str(e)) from None
    return landmark_face(landmarks, None, path, rec,
                         landmarks={n: [x, y] for n, (x, y) in landmarks.items()})


def _ignore_annotation(region, path, rec) -> dict:
    if not (isinstance(region, list) and len(region) == 4 and all(_is_number(v) for v in region)):
        raise AnnotationFormatError(
            path, rec, "an ignore region must be [x, y, w, h], got {!r}".format(region)
        )
    x, y, w, h = (float(v) for v in region)
    if w <= 0 or h <= 0:
        raise AnnotationFormatError(
            path, rec, "ignore region {!r} has a non-positive size".format(region)
        )
    return {
        "bbox": [x, y, x + w, y + h],
        "bbox_mode": BoxMode.XYXY_ABS,
        "category_id": FACE_CATEGORY_ID,
        "iscrowd": 1,
        "ignore_reason": "ignore_region",
    }


def _parse_image(entry, idx, path):
    if (
        not isinstance(entry, dict)
        or not isinstance(entry.get("file_name"), str)
        or not entry["file_name"]
    ):
        raise AnnotationFormatError(
            path, "images[{}]".format(idx), "an image needs a 'file_name' string"
        )
    rel = entry["file_name"]
    rec = "images[{}] {!r}".format(idx, rel)
    unknown = set(entry) - _IMAGE_KEYS
    if unknown:
        raise AnnotationFormatError(
            path, rec, "unknown key(s) {}".format(", ".join(sorted(unknown)))
        )
    faces = entry.get("faces", [])
    regions = entry.get("ignore_regions", [])
    background = entry.get("background", False)
    if (
        not isinstance(faces, list)
        or not isinstance(regions, list)
        or not isinstance(background, bool)
    ):
        raise AnnotationFormatError(
            path, rec, "'faces' and 'ignore_regions' must be lists and 'background' a boolean"
        )
    if background and faces:
        raise AnnotationFormatError(path, rec, "a background image must not list faces")
    size = None
    if "height" in entry or "width" in entry:
        h, w = entry.get("height"), entry.get("width")
        if not (_is_positive_int(h) and _is_positive_int(w)):
            raise AnnotationFormatError(
                path, rec, "'height' and 'width' must both be positive integers"
            )
        size = (h, w)
    image_id = entry.get("image_id", image_id_from_path(rel))
    if not isinstance(image_id, str):
        raise AnnotationFormatError(path, rec, "'image_id' must be a string")
    annotations = [
        _face_annotation(f, path, "{}, face {}".format(rec, k)) for k, f in enumerate(faces)
    ]
    annotations += [
        _ignore_annotation(r, path, "{}, ignore region {}".format(rec, k))
        for k, r in enumerate(regions)
    ]
    return rel, image_id, size, background, annotations


def load_threer(json_file: str, image_root: str, dataset_name: Optional[str] = None) -> List[dict]:
    """
    Load a 3R-style JSON annotation file (format in the module docstring) to Detectron2 format.

    Args:
        json_file: the annotation file.
        image_root: folder that ``file_name`` entries are relative to.
        dataset_name: used in log messages only.

    Returns:
        list[dict]: one dict per image present on disk, with ``file_name``, ``image_id``,
        ``height``, ``width``, ``background`` (bool) and ``annotations``: faces
        (``bbox`` XYXY_ABS square box, ``bbox_mode``, ``category_id`` 0, ``iscrowd`` 0,
        ``landmarks`` {AFLW name: [x, y]}) followed by ignore regions (``iscrowd`` 1,
        ``ignore_reason`` "ignore_region").

    Raises:
        FileNotFoundError: if the file is absent.
        AnnotationFormatError: on invalid JSON or an entry that breaks the format.
    """
    require_file(json_file, "3R-style annotation file")
    with open(json_file, "r", encoding="utf-8") as f:
        try:
            content = json.load(f)
        except json.JSONDecodeError as e:
            raise AnnotationFormatError(
                json_file,
                "line {}, column {}".format(e.lineno, e.colno),
                "invalid JSON: {}".format(e.msg),
            ) from None
        except UnicodeDecodeError as e:
            raise AnnotationFormatError(
                json_file, "byte {}".format(e.start), "not UTF-8 text: {}".format(e.reason)
            ) from None
        except ValueError as e:  # e.g. an integer with more digits than Python converts
            raise AnnotationFormatError(json_file, "top level", "invalid JSON: {}".format(e)) from None
        except RecursionError:
            raise AnnotationFormatError(
                json_file, "top level", "JSON nested too deeply to read"
            ) from None
    if not isinstance(content, dict) or not isinstance(content.get("images"), list):
        raise AnnotationFormatError(
            json_file, "top level", "expected an object with an 'images' list"
        )
    scheme = content.get("landmark_scheme", "aflw21")
    if scheme != "aflw21":
        raise AnnotationFormatError(
            json_file,
            "landmark_scheme",
            "unsupported scheme {!r}; only 'aflw21' is supported".format(scheme),
        )
    missing = MissingImages(logger, json_file, image_root, dataset_name)
    dataset_dicts = []
    for idx, entry in enumerate(content["images"]):
        rel, image_id, size, background, annotations = _parse_image(entry, idx, json_file)
        file_name = os.path.join(image_root, rel)
        if not missing.check(file_name):
            continue
        height, width = size if size is not None else image_size(file_name)
        dataset_dicts.append(
            {
                "file_name": file_name,
                "image_id": image_id,
                "height": height,
                "width": width,
                "background": background,
                "annotations": annotations,
            }
        )
    missing.report()
    return dataset_dicts


def register_threer(name: str, json_file: str, image_root: str, **metadata) -> None:
    """Register a 3R-style dataset (:func:`load_threer`) lazily as ``name``, with ``evaluator_type="afw"``."""
    register_annotation_file(name, load_threer, json_file, image_root, **metadata)
