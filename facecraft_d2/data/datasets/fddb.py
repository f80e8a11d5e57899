# Copyright (c) facecraft_d2 contributors.
"""
FDDB (Jain & Learned-Miller, UMass TR 2010): 2,845 images, 5,171 faces, 10 folds.

``FDDB-folds/FDDB-fold-XX-ellipseList.txt`` holds repeated records::

    <image path without .jpg>          e.g. 2002/08/11/big/img_591
    <n faces>
    major_axis_radius minor_axis_radius angle center_x center_y 1      (n lines)

with ``angle`` in radians; images are ``originalPics/<image path>.jpg``.

Ellipse-to-box rule (the only one used by facecraft_d2, also in datasets/README.md): a face
ellipse with semi-axes ``a`` (major) and ``b`` (minor) rotated by ``theta`` becomes its tight
axis-aligned bounding box

    half_w = sqrt(a^2 cos^2(theta) + b^2 sin^2(theta))
    half_h = sqrt(a^2 sin^2(theta) + b^2 cos^2(theta))
    box    = [cx - half_w, cy - half_h, cx + half_w, cy + half_h]   (XYXY_ABS)

clipped to the image ``[0, width] x [0, height]``. The ellipse itself is kept in each
annotation as ``"ellipse": [major_r, minor_r, angle, cx, cy]`` for the FDDB evaluator, which
matches against the ellipses, not the boxes.
"""

import logging
import math
import os
from typing import List, Optional, Sequence, Union

from detectron2.structures import BoxMode

from .common import (
    FACE_CATEGORY_ID,
    register_face_dataset,
    AnnotationFormatError,
    MissingImages,
    image_record,
    image_size,
    parse_counted_records,
    parse_numbers,
    require_file,
)

__all__ = [
    "FDDB_NUM_IMAGES",
    "FDDB_FOLD_SIZES",
    "fddb_ellipse_file",
    "ellipse_to_box",
    "load_fddb",
    "register_fddb",
]

logger = logging.getLogger(__name__)

FDDB_NUM_IMAGES = 2845
"""Images in the whole benchmark (all 10 folds)."""

FDDB_FOLD_SIZES = {1: 290, 2: 285, 3: 274, 4: 302, 5: 298, 6: 302, 7: 279, 8: 276, 9: 259, 10: 280}
"""Images listed in each official fold (present on disk or not); they sum to 2,845."""


def fddb_ellipse_file(fddb_root: str, fold: int) -> str:
    """Path of fold ``fold``'s ellipse list under an FDDB root folder."""
    return os.path.join(fddb_root, "FDDB-folds", "FDDB-fold-{:02d}-ellipseList.txt".format(fold))


def ellipse_to_box(
    major_r: float, minor_r: float, angle: float, cx: float, cy: float, width=None, height=None
) -> List[float]:
    """
    The tight axis-aligned bounding box of a rotated ellipse, optionally clipped to the image.

    Args:
        major_r, minor_r: semi-axis lengths in pixels.
        angle: rotation of the major axis in radians.
        cx, cy: centre in pixels.
        width, height: image size; if given, the box is clipped to ``[0, width] x [0, height]``.

    Returns:
        [x1, y1, x2, y2] (XYXY_ABS).
    """
    cos, sin = math.cos(angle), math.sin(angle)
    half_w = math.hypot(major_r * cos, minor_r * sin)  # hypot: no overflow for huge radii
    half_h = math.hypot(major_r * sin, minor_r * cos)
    x1, y1, x2, y2 = cx - half_w, cy - half_h, cx + half_w, cy + half_h
    if width is not None and height is not None:
        x1, x2 = min(max(x1, 0.0), width), min(max(x2, 0.0), width)
        y1, y2 = min(max(y1, 0.0), height), min(max(y2, 0.0), height)
    return [x1, y1, x2, y2]


_BAD_NAME = (
    "expected an image path such as '2002/08/11/big/img_591', got {!r} (face-count mismatch in "
    "the previous record?)"
)


def _is_number(text: str) -> bool:
    try:
        float(text)
        return True
    except ValueError:
        return False


def _is_image_name(line: str) -> bool:
    return len(line.split()) == 1 and not _is_number(line)


def _read_ellipses(lines: List[str], i: int, count: int, path: str, rec: str):
    """Parse the ``count`` ellipse lines of record ``rec`` from ``lines[i]`` on."""
    ellipses = []
    for k in range(count):
        where = "{} at line {}".format(rec, i + 1)
        tokens = lines[i].split() if i < len(lines) else []
        if len(tokens) == 1 or not tokens:
            raise AnnotationFormatError(
                path,
                where,
                "face-count mismatch: the record declares {} faces but lists {}".format(count, k),
            )
        if len(tokens) != 6:
            raise AnnotationFormatError(
                path,
                where,
                "expected 6 fields 'major_r minor_r angle center_x center_y 1', got {}: "
                "{!r}".format(len(tokens), lines[i]),
            )
        a, b, theta, cx, cy, _ = parse_numbers(tokens, path, where)
        if a <= 0 or b <= 0:
            raise AnnotationFormatError(
                path, where, "ellipse radii must be positive: {!r}".format(lines[i])
            )
        ellipses.append((a, b, theta, cx, cy))
        i += 1
    return ellipses, i


def _parse_ellipse_list(path: str):
    """Return [(image path without .jpg, [(a, b, theta, cx, cy), ...]), ...]."""
    return parse_counted_records(path, _is_image_name, _BAD_NAME, _read_ellipses)


def load_fddb(
    ellipse_files: Union[str, Sequence[str]], image_root: str, dataset_name: Optional[str] = None
) -> List[dict]:
    """
    Load FDDB ellipse lists to Detectron2 format.

    Args:
        ellipse_files: one ``FDDB-fold-XX-ellipseList.txt`` or a list of them (concatenated in
            order).
        image_root: the ``originalPics`` folder.
        dataset_name: used in log messages only.

    Returns:
        list[dict]: one dict per image present on disk, with ``file_name``, ``image_id``
        (the listed path without .jpg), ``height``, ``width`` and ``annotations``; each
        annotation has ``bbox`` (XYXY_ABS, see the module docstring for the rule),
        ``bbox_mode``, ``category_id`` (0), ``iscrowd`` (0) and ``ellipse``
        ([major_r, minor_r, angle, cx, cy]). Listed images that are missing are skipped with
        one warning; a fold with no image present loads as an empty list.

    Raises:
        FileNotFoundError: if an ellipse list is absent.
        AnnotationFormatError: if an ellipse list is malformed.
    """
    if isinstance(ellipse_files, str):
        ellipse_files = [ellipse_files]
    records = []
    for path in ellipse_files:
        require_file(path, "FDDB ellipse list")
        records.extend(_parse_ellipse_list(path))
    source = ellipse_files[0] if len(ellipse_files) == 1 else os.path.dirname(ellipse_files[0])
    missing = MissingImages(logger, source, image_root, dataset_name)
    dataset_dicts = []
    for name, ellipses in records:
        file_name = os.path.join(image_root, name + ".jpg")
        if not missing.check(file_name):
            continue
        height, width = image_size(file_name)
        annotations = []
        for a, b, theta, cx, cy in ellipses:
            x1, y1, x2, y2 = ellipse_to_box(a, b, theta, cx, cy, width, height)
            ann = {
                "bbox": [x1, y1, x2, y2],
                "bbox_mode": BoxMode.XYXY_ABS,
                "category_id": FACE_CATEGORY_ID,
                "iscrowd": 0,
                "ellipse": [a, b, theta, cx, cy],
            }
            if x2 <= x1 or y2 <= y1:  # ellipse entirely outside the image
                ann["iscrowd"] = 1
                ann["ignore_reason"] = "degenerate"
            annotations.append(ann)
        dataset_dicts.append(
            image_record(image_root, name + ".jpg", (height, width), annotations=annotations)
        )
    missing.report()
    return dataset_dicts


def register_fddb(
    name: str,
    ellipse_files: Union[str, Sequence[str]],
    image_root: str,
    fold: Optional[int] = None,
    num_images_in_fold: Optional[int] = None,
    **metadata,
) -> None:
    """
    Register FDDB fold(s) lazily.

    Args:
        name: dataset name, e.g. "fddb_fold_01".
        ellipse_files, image_root: see :func:`load_fddb`.
        fold: the fold number (1-10), or None for several folds.
        num_images_in_fold: images listed (present or not); defaults to the official size of
            ``fold`` or, for ``fold=None``, to 2,845.
        metadata: extra metadata, e.g. ``dirname``.
    """
    files = [ellipse_files] if isinstance(ellipse_files, str) else list(ellipse_files)
    if num_images_in_fold is None:
        num_images_in_fold = FDDB_FOLD_SIZES.get(fold, FDDB_NUM_IMAGES) if fold else FDDB_NUM_IMAGES
    register_face_dataset(
        name,
        lambda: load_fddb(files, image_root, dataset_name=name),
        "fddb",
        ellipse_files=files,
        image_root=image_root,
        fold=fold,
        num_images_in_fold=num_images_in_fold,
        num_images_total=FDDB_NUM_IMAGES,
        **metadata,
    )
