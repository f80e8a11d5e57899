# Copyright (c) facecraft_d2 contributors.
"""Background-only image folders on small fixtures built by the test (plus an opt-in check)."""

import logging
import os

import pytest
from detectron2.data import DatasetCatalog, MetadataCatalog
from PIL import Image

import facecraft_d2  # noqa: F401  registers the builtin datasets
from facecraft_d2.data.datasets.background import (
    load_background_images,
    register_background_images,
)


@pytest.fixture
def negatives(tmp_path, make_image):
    root = tmp_path / "negatives"
    make_image(root / "b.jpg", 40, 30)
    make_image(root / "a.JPEG", 32, 24)
    make_image(root / "voc" / "2008_000123.jpg", 50, 20)
    Image.new("RGB", (16, 12)).save(str(root / "voc" / "c.png"))
    (root / "notes.txt").write_text("not an image")
    (root / "._b.jpg").write_bytes(b"AppleDouble junk")  # hidden: ignored
    return str(root)


def test_load_folder(negatives):
    dicts = load_background_images(negatives, dataset_name="negatives_fixture")
    assert [d["image_id"] for d in dicts] == ["a", "b", "voc/2008_000123", "voc/c"]
    assert [(d["height"], d["width"]) for d in dicts] == [(24, 32), (30, 40), (20, 50), (12, 16)]
    assert dicts[2]["file_name"] == os.path.join(negatives, "voc", "2008_000123.jpg")
    for d in dicts:
        assert d["annotations"] == [] and d["background"] is True
        assert os.path.isfile(d["file_name"])


def test_empty_folder_warns(tmp_path, caplog, warnings_of):
    with caplog.at_level(logging.WARNING):
        assert load_background_images(str(tmp_path), dataset_name="empty_fixture") == []
    (warning,) = warnings_of(caplog, "background")
    assert "empty_fixture" in warning.getMessage() and str(tmp_path) in warning.getMessage()


def test_missing_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="negatives"):
        load_background_images(str(tmp_path / "negatives"))


def test_register(negatives):
    register_background_images("negatives_test_fixture", negatives)
    meta = MetadataCatalog.get("negatives_test_fixture")
    assert meta.evaluator_type == "afw" and meta.thing_classes == ["face"]
    assert meta.image_root == negatives
    assert len(DatasetCatalog.get("negatives_test_fixture")) == 4


def test_builtin_registered():
    assert "face_negatives" in DatasetCatalog.list()
    meta = MetadataCatalog.get("face_negatives")
    assert meta.evaluator_type == MetadataCatalog.get("widerface_train").evaluator_type
    assert os.path.basename(meta.image_root) == "negatives" and meta.dirname == meta.image_root


_TRAIN_ROOT = os.environ.get("FACECRAFT_TRAIN_ROOT")


@pytest.mark.skipif(not _TRAIN_ROOT, reason="set FACECRAFT_TRAIN_ROOT to a training data root")
def test_real_training_root():
    """The built training root has 274 face-free photos."""
    dicts = load_background_images(os.path.join(_TRAIN_ROOT, "negatives"))
    assert len(dicts) == 274
    assert all(d["annotations"] == [] and min(d["height"], d["width"]) > 0 for d in dicts)
