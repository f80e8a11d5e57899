# Copyright (c) facecraft_d2 contributors.
from detectron2.data import DatasetCatalog, MetadataCatalog

from facecraft_d2.data import register_heldout_split, register_subset, split_train_val


def _register(name, n):
    dicts = [{"file_name": f"{i}.jpg", "image_id": f"img{i}", "height": 10, "width": 10,
              "annotations": []} for i in range(n)]
    DatasetCatalog.register(name, lambda: dicts)
    MetadataCatalog.get(name).set(thing_classes=["face"], evaluator_type="afw", gt_dir="/x")
    return dicts


def test_register_subset_keeps_order_and_metadata():
    dicts = _register("catalog_test_base", 10)
    name = register_subset("catalog_test_base", 3)
    assert name == "catalog_test_base_first3"
    assert DatasetCatalog.get(name) == dicts[:3]
    meta = MetadataCatalog.get(name)
    assert meta.evaluator_type == "afw" and meta.gt_dir == "/x" and meta.subset_of == "catalog_test_base"
    assert register_subset("catalog_test_base", 3) == name  # idempotent


def test_heldout_split_is_exactly_what_training_leaves_out():
    dicts = _register("catalog_test_train", 200)
    name = register_heldout_split("catalog_test_train", 0.1)
    heldout = DatasetCatalog.get(name)
    train, val = split_train_val(dicts, 0.1)
    assert heldout == val and 5 <= len(val) <= 40
    assert not {d["image_id"] for d in train} & {d["image_id"] for d in heldout}
    assert MetadataCatalog.get(name).evaluator_type == "afw"
