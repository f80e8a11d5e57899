# Copyright (c) facecraft_d2 contributors.
"""
MTFL, the "Multi-Task Facial Landmark" set (Zhang, Luo, Loy, Tang, ECCV 2014): 12,995 face
crops (AFLW, LFW and web subsets) with 5 landmarks, read from its text index files.

Each index file (``training.txt`` / ``testing.txt``, or the ``new_*`` variants) has one face
per line::

    <image path relative to the image root> x1 x2 x3 x4 x5 y1 y2 y3 y4 y5

in pixels of the image, the points being the left eye, right eye, nose, left mouth corner and
right mouth corner. MTFL's "left" is the image's left (x1 < x2 on all but a few near-profile
faces), which is also what "Left" means in the AFLW names, so the points map directly onto
:data:`MTFL_LANDMARK_NAMES`. Backslashes in paths (the Windows-made original lists) are read as
folder separators; blank lines are skipped.

Each face becomes a square, nose-centred box by :func:`~.landmarks.landmarks_to_square_box`
(FaceCraft section 6.1, as for AFLW and 3R); the 5 points are kept as Detectron2 ``keypoints``.
"""

import fnmatch
import logging
import os
from typing import List, Optional, Sequence, Union

from .common import (
    MissingImages,
    image_record,
    landmark_face,
    parse_numbers,
    read_text_lines,
    register_face_dataset,
    require_file,
)

__all__ = [
    "MTFL_INDEX_FILES",
    "MTFL_LANDMARK_NAMES",
    "MTFL_KEYPOINT_FLIP_MAP",
    "load_mtfl",
    "register_mtfl",
]

logger = logging.getLogger(__name__)

MTFL_INDEX_FILES = ("new_training.txt", "new_testing.txt")
"""The index files of the MTFL release that ``mtfl_train`` reads (10,000 + 2,995 faces)."""
MTFL_LANDMARK_NAMES = (
    "LeftEyeCenter",
    "RightEyeCenter",
    "NoseCenter",
    "MouthLeftCorner",
    "MouthRightCorner",
)
"""The AFLW names of MTFL's 5 points, in MTFL's order (also the ``keypoint_names``)."""
MTFL_KEYPOINT_FLIP_MAP = (
    ("LeftEyeCenter", "RightEyeCenter"),
    ("MouthLeftCorner", "MouthRightCorner"),
)
"""``keypoint_flip_map`` metadata: the points that swap under a horizontal flip."""

_NUM_POINTS = len(MTFL_LANDMARK_NAMES)


def _parse_index_file(path: str):
    """Yield (relative image path, [(x, y)] * 5) for each face of an index file."""
    for lineno, line in enumerate(read_text_lines(path), 1):
        if not line:
            continue
        rec = "line {}".format(lineno)
        rel, *fields = line.split()
        values = parse_numbers(fields, path, rec, count=2 * _NUM_POINTS)
        points = list(zip(values[:_NUM_POINTS], values[_NUM_POINTS:]))
        yield rec, rel.replace("\\", "/"), points


def _face_annotation(points, path, rec) -> dict:
    return landmark_face(points, MTFL_LANDMARK_NAMES, path, rec,
                         keypoints=[v for x, y in points for v in (x, y, 2)])


def load_mtfl(
    list_files: Union[str, Sequence[str]], image_root: str, dataset_name: Optional[str] = None,
    exclude: Sequence[str] = (),
) -> List[dict]:
    """
    Load MTFL index file(s) to Detectron2 format.

    Args:
        list_files: one index file or a list of them (concatenated in order).
        image_root: folder that the listed image paths are relative to (the ``MTFL`` folder).
        dataset_name: used in log messages only.
        exclude: ``fnmatch`` patterns of listed paths to leave out (counted in one log line),
            e.g. subsets whose landmarks are known to be wrong.

    Returns:
        list[dict]: one dict per listed face whose image is present, with ``file_name``,
        ``image_id`` (the listed path without extension, e.g. "lfw_5590/Aaron_Eckhart_0001"),
        ``height``, ``width`` (from the image header) and one annotation: ``bbox`` (XYXY_ABS
        square box from the landmarks), ``bbox_mode``, ``category_id`` (0), ``iscrowd`` (0) and
        ``keypoints`` ([x, y, 2] per point, in :data:`MTFL_LANDMARK_NAMES` order). Listed
        images that are missing are skipped with one warning.

    Raises:
        FileNotFoundError: if an index file is absent.
        AnnotationFormatError: on a line without an image path and 10 numbers, or whose points
            determine no box.
    """
    if isinstance(list_files, str):
        list_files = [list_files]
    records = []
    for path in list_files:
        require_file(path, "MTFL index file")
        records.extend(
            (rel, _face_annotation(points, path, rec))
            for rec, rel, points in _parse_index_file(path)
        )
    if exclude:
        kept = [r for r in records if not any(fnmatch.fnmatch(r[0], p) for p in exclude)]
        logger.info("MTFL %s: left out %d listed faces matching %s", dataset_name or "",
                    len(records) - len(kept), list(exclude))
        records = kept
    missing = MissingImages(logger, ", ".join(list_files), image_root, dataset_name)
    dataset_dicts = []
    for rel, annotation in records:
        if missing.check(os.path.join(image_root, rel)):
            dataset_dicts.append(image_record(image_root, rel, annotations=[annotation]))
    missing.report()
    return dataset_dicts


def register_mtfl(
    name: str, list_files: Union[str, Sequence[str]], image_root: str, exclude: Sequence[str] = (),
    **metadata
) -> None:
    """
    Register MTFL lazily, with ``evaluator_type="afw"``, ``keypoint_names`` and
    ``keypoint_flip_map``.

    Args:
        name: dataset name, e.g. "mtfl_train".
        list_files, image_root, exclude: see :func:`load_mtfl`.
        metadata: extra metadata, e.g. ``dirname``.
    """
    files = [list_files] if isinstance(list_files, str) else list(list_files)
    register_face_dataset(
        name,
        lambda: load_mtfl(files, image_root, dataset_name=name, exclude=tuple(exclude)),
        "afw",
        annotation_files=files,
        excluded=list(exclude),
        image_root=image_root,
        keypoint_names=list(MTFL_LANDMARK_NAMES),
        keypoint_flip_map=[list(pair) for pair in MTFL_KEYPOINT_FLIP_MAP],
        **metadata,
    )
