# Copyright (c) facecraft_d2 contributors.
"""
WIDER FACE (Yang et al., CVPR 2016) in the official text ground-truth format.

``wider_face_{train,val}_bbx_gt.txt`` holds repeated records::

    <event>/<file>.jpg
    <n faces>
    x1 y1 w h blur expression illumination invalid occlusion pose      (n lines)

A record with 0 faces is followed by one line of zeros, which is not a face.

Ignore rule (documented in datasets/README.md): faces are never dropped. A face becomes an
ignore region (``iscrowd=1``, Detectron2 semantics) with an ``"ignore_reason"`` of

* ``"degenerate"`` if ``w <= 0`` or ``h <= 0``;
* ``"invalid"`` if the benchmark marks it ``invalid=1``;
* ``"small"`` if ``min(w, h) < min_size`` (default :data:`WIDER_MIN_FACE_SIZE` = 10 px),
  i.e. too small to be learned;

checked in that order. Boxes are kept exactly as given (``BoxMode.XYWH_ABS``).
"""

import collections
import functools
import logging
import os
from typing import List, Optional, Tuple

from detectron2.structures import BoxMode

from .common import (
    FACE_CATEGORY_ID,
    register_annotation_file,
    AnnotationFormatError,
    MissingImages,
    image_record,
    image_size,
    parse_counted_records,
    parse_numbers,
    require_file,
)

__all__ = ["WIDER_MIN_FACE_SIZE", "WIDER_ATTRIBUTES", "load_widerface", "register_widerface"]

logger = logging.getLogger(__name__)

WIDER_MIN_FACE_SIZE = 10
"""Faces with ``min(w, h)`` below this many pixels become ignore regions ("small")."""

WIDER_ATTRIBUTES = ("blur", "expression", "illumination", "invalid", "occlusion", "pose")
"""Per-face attribute columns of the text format, in file order (kept as ints)."""

_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp")


def _looks_like_path(line: str) -> bool:
    return line.lower().endswith(_IMAGE_EXTENSIONS)


_BAD_NAME = (
    "expected an image path '<event>/<file>.jpg', got {!r} (does the previous record list more "
    "faces than its count?)"
)


def _read_faces(lines: List[str], i: int, count: int, txt_file: str, rec: str):
    """Parse the ``count`` face lines of record ``rec`` from ``lines[i]`` on."""
    num_lines = len(lines)
    faces = []
    if count == 0:
        # The official file follows a 0-face record with one line of zeros; it is not a face.
        if i < num_lines and lines[i] and not _looks_like_path(lines[i]):
            zeros = parse_numbers(lines[i].split(), txt_file, "{} at line {}".format(rec, i + 1))
            if any(zeros):
                raise AnnotationFormatError(
                    txt_file,
                    "{} at line {}".format(rec, i + 1),
                    "the record declares 0 faces but lists a face {!r}".format(lines[i]),
                )
            i += 1
    for k in range(count):
        where = "{} at line {}".format(rec, i + 1)
        if i >= num_lines or not lines[i] or _looks_like_path(lines[i]):
            raise AnnotationFormatError(
                txt_file,
                where,
                "truncated record: it declares {} faces but lists only {}".format(count, k),
            )
        tokens = lines[i].split()
        if len(tokens) != 4 + len(WIDER_ATTRIBUTES):
            raise AnnotationFormatError(
                txt_file,
                where,
                "expected 10 fields 'x1 y1 w h blur expression illumination invalid occlusion "
                "pose', got {}: {!r}".format(len(tokens), lines[i]),
            )
        box = parse_numbers(tokens[:4], txt_file, where)
        attrs = parse_numbers(tokens[4:], txt_file, where, kind=int)
        faces.append((box, attrs))
        i += 1
    return faces, i


def _parse_wider_txt(txt_file: str) -> List[Tuple[str, List[Tuple[List[float], List[int]]]]]:
    """
    Parse a WIDER FACE text ground-truth file.

    Returns:
        list of (relative image path, [(x1 y1 w h, six attribute ints), ...]).

    Raises:
        AnnotationFormatError: naming the file, the record index, the image and the line.
    """
    return parse_counted_records(txt_file, _looks_like_path, _BAD_NAME, _read_faces)


def load_widerface(
    txt_file: str,
    image_root: str,
    min_size: float = WIDER_MIN_FACE_SIZE,
    dataset_name: Optional[str] = None,
) -> List[dict]:
    """
    Load WIDER FACE text annotations to Detectron2 format.

    Args:
        txt_file: ``wider_face_{train,val}_bbx_gt.txt``.
        image_root: the ``WIDER_{train,val}/images`` folder holding ``<event>/<file>``.
        min_size: faces with ``min(w, h) < min_size`` become ignore regions.
        dataset_name: used in log messages only.

    Returns:
        list[dict]: one dict per image present on disk, with keys ``file_name``, ``image_id``
        ("<event>/<file stem>"), ``height``, ``width`` and ``annotations``; each annotation has
        ``bbox`` (XYWH_ABS), ``bbox_mode``, ``category_id`` (0), ``iscrowd``, the six attribute
        ints (:data:`WIDER_ATTRIBUTES`) and, for ignore regions, ``ignore_reason``
        ("degenerate", "invalid" or "small"). Listed images that are missing are skipped with
        one warning.
    """
    require_file(txt_file, "WIDER FACE ground-truth file")
    records = _parse_wider_txt(txt_file)
    missing = MissingImages(logger, txt_file, image_root, dataset_name)
    reasons = collections.Counter()
    dataset_dicts = []
    for rel, faces in records:
        file_name = os.path.join(image_root, rel)
        if not missing.check(file_name):
            continue
        height, width = image_size(file_name)
        annotations = []
        for (x, y, w, h), attrs in faces:
            ann = {
                "bbox": [x, y, w, h],
                "bbox_mode": BoxMode.XYWH_ABS,
                "category_id": FACE_CATEGORY_ID,
                "iscrowd": 0,
            }
            ann.update(zip(WIDER_ATTRIBUTES, attrs))
            if w <= 0 or h <= 0:
                reason = "degenerate"
            elif ann["invalid"] == 1:
                reason = "invalid"
            elif min(w, h) < min_size:
                reason = "small"
            else:
                reason = None
            if reason is not None:
                ann["iscrowd"] = 1
                ann["ignore_reason"] = reason
                reasons[reason] += 1
            annotations.append(ann)
        dataset_dicts.append(image_record(image_root, rel, (height, width), annotations=annotations))
    missing.report()
    logger.info(
        "Loaded %d images with %d faces from %s; ignore regions: %d invalid, %d small (< %s px), "
        "%d degenerate.",
        len(dataset_dicts),
        sum(len(d["annotations"]) for d in dataset_dicts),
        txt_file,
        reasons["invalid"],
        reasons["small"],
        min_size,
        reasons["degenerate"],
    )
    return dataset_dicts


def register_widerface(
    name: str,
    txt_file: str,
    image_root: str,
    evaluator_type: str = "wider",
    min_size: float = WIDER_MIN_FACE_SIZE,
    **metadata,
) -> None:
    """
    Register a WIDER FACE split (lazily: nothing is read until ``DatasetCatalog.get(name)``).

    Args:
        name: dataset name, e.g. "widerface_val".
        txt_file, image_root, min_size: see :func:`load_widerface`.
        evaluator_type: "wider" for the official protocol (needs ``gt_dir`` in ``metadata``),
            or "afw" for the generic PASCAL-faces AP protocol.
        metadata: extra metadata, e.g. ``gt_dir`` (folder of ``wider_face_val.mat`` and
            ``wider_{easy,medium,hard}_val.mat``) and ``dirname``.
    """
    loader = functools.partial(load_widerface, min_size=min_size)
    register_annotation_file(
        name, loader, txt_file, image_root, evaluator_type, min_face_size=min_size, **metadata
    )
