# Copyright (c) facecraft_d2 contributors.
"""
Background-only images: a folder of photos that contain no face.

FaceCraft adds face-free images to its training data (PASCAL VOC images without persons) so
that the cascades see more negatives: in such an image every window is a negative. This module
turns a folder of them into Detectron2 dicts with empty ``annotations``. There is no annotation
file: every ``.jpg`` / ``.jpeg`` / ``.png`` (any case) under the folder, recursively, is one
image; hidden files (names starting with ".") are ignored.

Note: Detectron2 drops images without (non-crowd) annotations from training unless
``DATALOADER.FILTER_EMPTY_ANNOTATIONS`` is False; set it to False to use background images.
"""

import logging
import os
from typing import List, Optional

from .common import image_record, register_face_dataset

__all__ = ["BACKGROUND_IMAGE_EXTENSIONS", "load_background_images", "register_background_images"]

logger = logging.getLogger(__name__)

BACKGROUND_IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
"""File extensions (compared in lower case) read as background images."""


def _list_images(image_dir: str) -> List[str]:
    """Paths of the images under ``image_dir``, relative to it, with "/" separators, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(image_dir):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        rel_dir = os.path.relpath(dirpath, image_dir)
        for fname in filenames:
            if fname.startswith(".") or not fname.lower().endswith(BACKGROUND_IMAGE_EXTENSIONS):
                continue
            rel = fname if rel_dir == os.curdir else os.path.join(rel_dir, fname)
            found.append(rel.replace(os.sep, "/"))
    return sorted(found)


def load_background_images(image_dir: str, dataset_name: Optional[str] = None) -> List[dict]:
    """
    Load a folder of face-free images to Detectron2 format.

    Args:
        image_dir: the folder; images are searched recursively.
        dataset_name: used in log messages only.

    Returns:
        list[dict]: one dict per image, sorted by relative path, with ``file_name``,
        ``image_id`` (the path relative to ``image_dir`` without extension), ``height``,
        ``width`` (from the image header), ``background`` (True) and ``annotations`` ([]).
        A folder without images loads as an empty list, with one warning.

    Raises:
        FileNotFoundError: if ``image_dir`` is not a folder.
    """
    if not os.path.isdir(image_dir):
        raise FileNotFoundError(
            "Background image folder not found: expected {} (see datasets/README.md for the "
            "expected layout under $DETECTRON2_DATASETS).".format(image_dir)
        )
    dataset_dicts = []
    for rel in _list_images(image_dir):
        dataset_dicts.append(image_record(image_dir, rel, background=True, annotations=[]))
    if not dataset_dicts:
        logger.warning(
            "%s: no %s image under %s.",
            "Dataset '{}'".format(dataset_name) if dataset_name else "Background images",
            "/".join(BACKGROUND_IMAGE_EXTENSIONS),
            image_dir,
        )
    return dataset_dicts


def register_background_images(name: str, image_dir: str, **metadata) -> None:
    """
    Register a folder of background images lazily, with ``evaluator_type="afw"``.

    Args:
        name: dataset name, e.g. "face_negatives".
        image_dir: see :func:`load_background_images`.
        metadata: extra metadata, e.g. ``dirname``.
    """
    register_face_dataset(
        name,
        lambda: load_background_images(image_dir, dataset_name=name),
        "afw",
        image_root=image_dir,
        **metadata,
    )
