# Copyright (c) facecraft_d2 contributors.
"""Helpers on top of detectron2's DatasetCatalog / MetadataCatalog."""
from detectron2.data import DatasetCatalog, MetadataCatalog

from .splits import split_train_val

__all__ = ["register_concat", "register_heldout_split", "register_subset", "register_train_split"]


def register_subset(base_name, num_images=None, name=None, step=1):
    """
    Register a subset of a registered dataset, every ``step``-th image (in the base dataset's
    order) up to ``num_images`` images, as a new dataset with the same metadata (so it is
    scored by the same evaluator), e.g. for quick evaluations.

    Args:
        base_name (str): a registered dataset, e.g. "widerface_val".
        num_images (int): how many images to keep (None: all that ``step`` selects).
        name (str): the new name; default ``f"{base_name}_first{num_images}"`` (with
            ``_every{step}`` when ``step > 1``).
        step (int): keep images 0, step, 2*step, ...
    Returns:
        str: the registered name (registering the same subset twice is a no-op).
    """
    if name is None:
        name = base_name + (f"_every{step}" if step > 1 else "") + (f"_first{num_images}" if num_images else "")
    if name in DatasetCatalog.list():
        return name
    DatasetCatalog.register(name, lambda: DatasetCatalog.get(base_name)[::step][:num_images])
    meta = MetadataCatalog.get(base_name).as_dict()
    meta.pop("name", None)
    MetadataCatalog.get(name).set(**meta, subset_of=base_name)
    return name


def _register_split(base_name, val_fraction, name, part, link):
    """Register part 0 (train) or 1 (held out) of ``split_train_val`` with the base metadata."""
    if name in DatasetCatalog.list():
        return name
    DatasetCatalog.register(
        name, lambda: split_train_val(DatasetCatalog.get(base_name), val_fraction)[part]
    )
    meta = MetadataCatalog.get(base_name).as_dict()
    meta.pop("name", None)
    MetadataCatalog.get(name).set(**meta, **{link: base_name}, val_fraction=val_fraction)
    return name


def register_heldout_split(base_name, val_fraction, name=None):
    """
    Register the validation split that the cascade's training loader holds out of a
    training dataset (:func:`facecraft_d2.data.split_train_val`), with the same metadata,
    so that detection thresholds can be tuned on images the model never saw.

    Returns:
        str: the registered name, default ``f"{base_name}_heldout"``.
    """
    return _register_split(base_name, val_fraction, name or f"{base_name}_heldout", 1,
                           "heldout_of")


def register_train_split(base_name, val_fraction, name=None):
    """
    Register the complement of :func:`register_heldout_split`: the images of a training
    dataset that the cascade's training loader trains on, for models trained by
    Detectron2's own loader (e.g. the RPN + Fast R-CNN of ``configs/rcnn``).

    Returns:
        str: the registered name, default ``f"{base_name}_trainsplit"``.
    """
    return _register_split(base_name, val_fraction, name or f"{base_name}_trainsplit", 0,
                           "train_split_of")


def register_concat(name, base_names, **metadata):
    """
    Register the concatenation of registered datasets (same ``evaluator_type``) as one dataset,
    e.g. several FDDB folds scored as a single ROC.

    Args:
        name (str): the new dataset name (registering it again is a no-op).
        base_names (list[str]): datasets whose dicts are concatenated, in this order.
        metadata: set on the new dataset, over the metadata copied from ``base_names[0]``
            (``concat_of`` is set to ``base_names``).
    Returns:
        str: ``name``.
    """
    base_names = list(base_names)
    if name in DatasetCatalog.list():
        return name
    types = {MetadataCatalog.get(n).get("evaluator_type", None) for n in base_names}
    if len(types) != 1:
        raise ValueError(f"cannot concatenate evaluator_types {sorted(map(str, types))}")

    def _load():
        dicts = [d for n in base_names for d in DatasetCatalog.get(n)]
        ids = [str(d["image_id"]) for d in dicts]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{name}: image_ids repeat across {base_names}")
        return dicts

    DatasetCatalog.register(name, _load)
    meta = MetadataCatalog.get(base_names[0]).as_dict()
    meta.pop("name", None)
    meta.update(metadata)
    MetadataCatalog.get(name).set(concat_of=base_names, **meta)
    return name
