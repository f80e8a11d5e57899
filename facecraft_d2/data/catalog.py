# Copyright (c) facecraft_d2 contributors.
"""Helpers on top of detectron2's DatasetCatalog / MetadataCatalog."""
from detectron2.data import DatasetCatalog, MetadataCatalog

__all__ = ["register_subset"]


def register_subset(base_name, num_images, name=None):
    """
    Register the first ``num_images`` images of a registered dataset as a new dataset with
    the same metadata (so it is scored by the same evaluator), e.g. for quick evaluations.

    Args:
        base_name (str): a registered dataset, e.g. "widerface_val".
        num_images (int): how many images (in the base dataset's order) to keep.
        name (str): the new name; default ``f"{base_name}_first{num_images}"``.
    Returns:
        str: the registered name (registering the same subset twice is a no-op).
    """
    name = name or f"{base_name}_first{num_images}"
    if name in DatasetCatalog.list():
        return name
    DatasetCatalog.register(name, lambda: DatasetCatalog.get(base_name)[:num_images])
    meta = MetadataCatalog.get(base_name).as_dict()
    meta.pop("name", None)
    MetadataCatalog.get(name).set(**meta, subset_of=base_name)
    return name
