# Copyright (c) facecraft_d2 contributors.
"""
AFW, "Annotated Faces in the Wild" (Zhu & Ramanan, CVPR 2012): 205 images, 468 faces.

The annotations are the original ``anno.mat`` (MATLAB v7.3, i.e. HDF5, read with h5py): a cell
array ``anno`` of 205 rows (stored transposed in HDF5, as a 4 x 205 array of references).
Layout checked on the original file, per row:

1. image name (char), e.g. "1004109301.jpg";
2. boxes: a cell with one 2x2 double matrix per face, ``[x1 y1; x2 y2]``;
3. pose: a cell with one 3-vector per face, three angles in degrees, as stored;
4. landmarks: a cell with one 6x2 matrix per face, ``[x y]`` per point, NaN where a point
   is not annotated.

(Some descriptions list landmarks before pose; the loader tells the two apart by shape, so both
orders are read correctly.) Boxes are kept as stored (``BoxMode.XYXY_ABS``, the file's own
pixel convention, no 1-pixel shift).
"""

import logging
import math
import os
from typing import List, Optional

import numpy as np
from detectron2.structures import BoxMode

from .common import (
    FACE_CATEGORY_ID,
    register_annotation_file,
    AnnotationFormatError,
    MissingImages,
    image_id_from_path,
    image_size,
    require_file,
)

__all__ = ["load_afw_annotations", "load_afw", "register_afw"]

logger = logging.getLogger(__name__)

# What h5py/HDF5 and numpy raise on a corrupt or unexpected file (bad object headers, dangling
# references, wrong types); reported as AnnotationFormatError naming the row.
_READ_ERRORS = (OSError, RuntimeError, KeyError, ValueError, TypeError, IndexError, OverflowError)


def _char(h5file, ref, path, rec) -> str:
    obj = h5file[ref]
    if obj.attrs.get("MATLAB_class") != b"char":
        raise AnnotationFormatError(path, rec, "the image name is not a MATLAB char array")
    return "".join(chr(c) for c in np.asarray(obj[()]).flatten(order="F"))


def _cell_matrices(h5file, ref, path, rec, what) -> List[np.ndarray]:
    """Read a MATLAB cell of double matrices; return them in MATLAB orientation."""
    cell = h5file[ref]
    if cell.attrs.get("MATLAB_class") != b"cell" and not cell.attrs.get("MATLAB_empty"):
        raise AnnotationFormatError(path, rec, "the {} column is not a cell array".format(what))
    out = []
    if cell.attrs.get("MATLAB_empty"):  # an empty cell {}: no faces
        return out
    for r in np.asarray(cell[()]).flatten(order="F"):
        obj = h5file[r]
        if obj.attrs.get("MATLAB_class") != b"double":
            raise AnnotationFormatError(path, rec, "a {} entry is not a double matrix".format(what))
        out.append(np.asarray(obj[()], dtype=np.float64).T)  # HDF5 stores MATLAB arrays transposed
    return out


def load_afw_annotations(mat_path: str) -> List[dict]:
    """
    Read AFW ``anno.mat`` without looking at any image.

    Args:
        mat_path: the ``anno.mat`` file (MATLAB v7.3).

    Returns:
        list[dict]: one record per image, in file order, with ``file_name`` (the bare image
        name, e.g. "1004109301.jpg"), ``image_id`` (the name without extension) and
        ``annotations``: dicts with ``bbox`` ([x1, y1, x2, y2]), ``bbox_mode`` (XYXY_ABS),
        ``category_id`` (0), ``iscrowd`` (0), ``pose`` (3 floats) and ``landmarks``
        ({"0".."5": [x, y]}, annotated points only). No ``height``/``width``.

    Raises:
        FileNotFoundError: if the file is absent.
        AnnotationFormatError: if it is not HDF5, lacks the ``anno`` key or a row is malformed.
    """
    import h5py  # local import: only needed to read AFW

    require_file(mat_path, "AFW annotation file")
    try:
        h5file = h5py.File(mat_path, "r")
    except OSError as e:
        raise AnnotationFormatError(
            mat_path, "file header", "not a MATLAB v7.3 (HDF5) file: {}".format(e)
        ) from None
    with h5file:
        try:
            if "anno" not in h5file:
                raise AnnotationFormatError(
                    mat_path, "key 'anno'", "missing; keys found: {}".format(sorted(h5file.keys()))
                )
            anno = h5file["anno"]
            if anno.dtype != object or anno.ndim != 2 or anno.shape[0] != 4:
                raise AnnotationFormatError(
                    mat_path,
                    "key 'anno'",
                    "expected an N x 4 cell array, got HDF5 shape {} of {}".format(
                        anno.shape, anno.dtype
                    ),
                )
            refs = anno[()]
        except _READ_ERRORS as e:
            if isinstance(e, AnnotationFormatError):
                raise
            raise AnnotationFormatError(
                mat_path, "key 'anno'", "unreadable (corrupt HDF5 file?): {}".format(e)
            ) from None
        records = []
        for i in range(refs.shape[1]):
            rec = "row {}".format(i + 1)
            try:
                name = _char(h5file, refs[0, i], mat_path, rec)
                rec = "row {} ({})".format(i + 1, name)
                boxes = _cell_matrices(h5file, refs[1, i], mat_path, rec, "boxes")
                col3 = _cell_matrices(h5file, refs[2, i], mat_path, rec, "pose/landmarks")
                col4 = _cell_matrices(h5file, refs[3, i], mat_path, rec, "pose/landmarks")
            except _READ_ERRORS as e:
                if isinstance(e, AnnotationFormatError):
                    raise
                raise AnnotationFormatError(
                    mat_path, rec, "unreadable cell: {}".format(e)
                ) from None
            poses, landmarks = (col3, col4) if col3 and col3[0].size == 3 else (col4, col3)
            if not (len(boxes) == len(poses) == len(landmarks)):
                raise AnnotationFormatError(
                    mat_path,
                    rec,
                    "{} boxes but {} poses and {} landmark sets".format(
                        len(boxes), len(poses), len(landmarks)
                    ),
                )
            annotations = []
            for k, (box, pose, points) in enumerate(zip(boxes, poses, landmarks)):
                if (
                    box.shape != (2, 2)
                    or pose.size != 3
                    or points.ndim != 2
                    or points.shape[1] != 2
                ):
                    raise AnnotationFormatError(
                        mat_path,
                        "{}, face {}".format(rec, k + 1),
                        "expected a 2x2 box, a 3-vector pose and Kx2 landmarks, got shapes {}, {}, "
                        "{}".format(box.shape, pose.shape, points.shape),
                    )
                x1, y1, x2, y2 = (float(v) for v in box.reshape(-1))
                if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
                    raise AnnotationFormatError(
                        mat_path, "{}, face {}".format(rec, k + 1), "non-finite box coordinates"
                    )
                annotations.append(
                    {
                        "bbox": [x1, y1, x2, y2],
                        "bbox_mode": BoxMode.XYXY_ABS,
                        "category_id": FACE_CATEGORY_ID,
                        "iscrowd": 0,
                        "pose": [float(v) for v in pose.reshape(-1)],
                        "landmarks": {
                            str(j): [float(x), float(y)]
                            for j, (x, y) in enumerate(points)
                            if math.isfinite(x) and math.isfinite(y)
                        },
                    }
                )
            records.append(
                {
                    "file_name": name,
                    "image_id": image_id_from_path(name),
                    "annotations": annotations,
                }
            )
    return records


def load_afw(mat_path: str, image_root: str, dataset_name: Optional[str] = None) -> List[dict]:
    """
    Load AFW to Detectron2 format: :func:`load_afw_annotations` joined with the images.

    Args:
        mat_path: the ``anno.mat`` file.
        image_root: folder holding the AFW images (``<image_root>/<name>``).
        dataset_name: used in log messages only.

    Returns:
        list[dict]: the records of :func:`load_afw_annotations` whose image is present, with
        ``file_name`` joined to ``image_root`` and ``height``/``width`` from the image header.
        Missing images are skipped with one warning naming ``image_root``.
    """
    records = load_afw_annotations(mat_path)
    missing = MissingImages(logger, mat_path, image_root, dataset_name)
    dataset_dicts = []
    for record in records:
        file_name = os.path.join(image_root, record["file_name"])
        if not missing.check(file_name):
            continue
        height, width = image_size(file_name)
        dataset_dicts.append(dict(record, file_name=file_name, height=height, width=width))
    missing.report()
    return dataset_dicts


def register_afw(name: str, mat_path: str, image_root: str, **metadata) -> None:
    """Register AFW (:func:`load_afw`) lazily as ``name``, with ``evaluator_type="afw"``."""
    register_annotation_file(name, load_afw, mat_path, image_root, **metadata)
