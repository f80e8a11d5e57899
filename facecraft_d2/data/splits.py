# Copyright (c) facecraft_d2 contributors.
"""The deterministic validation split that the cascades hold out of their training sets."""
import zlib
from typing import List, Sequence, Tuple

__all__ = ["VAL_FRACTION", "split_train_val"]

VAL_FRACTION = 0.1
"""Fraction of each training set held out for validation (``MODEL.FACECRAFT.SAMPLER.VAL_FRACTION``
and the ``*_heldout`` / ``*_trainsplit`` datasets of :mod:`facecraft_d2.data.builtin`)."""


def _val_key(d: dict) -> float:
    key = str(d.get("image_id", d.get("file_name")))
    return zlib.crc32(key.encode("utf-8")) / 2.0**32


def split_train_val(
    dataset_dicts: Sequence[dict], val_fraction: float
) -> Tuple[List[dict], List[dict]]:
    """
    Deterministic train / validation split by a stable hash (CRC-32) of each ``image_id``
    (``file_name`` when absent): an image is in validation iff ``crc32(id) / 2**32 <
    val_fraction``, independently of the dataset order and of the other images.

    Returns:
        (train dicts, val dicts), each in the input order.
    """
    train, val = [], []
    for d in dataset_dicts:
        (val if _val_key(d) < val_fraction else train).append(d)
    return train, val
