# Copyright (c) facecraft_d2 contributors.
"""Builtin registrations: names, metadata, and laziness when data is absent."""

import os
import subprocess
import sys
import textwrap

from detectron2.data import DatasetCatalog, MetadataCatalog

import facecraft_d2.data  # noqa: F401  registers the builtin datasets

NAMES = (
    ["widerface_train", "widerface_val", "afw_test", "aflw_train", "threer_train"]
    + ["fddb_fold_{:02d}".format(k) for k in range(1, 11)]
    + ["fddb_all", "dlib_faces_train", "dlib_faces_test", "mtfl_train", "face_negatives"]
)
EVALUATOR_TYPES = {"widerface_val": "wider", "fddb": "fddb"}


def test_all_registered_with_metadata():
    registered = set(DatasetCatalog.list())
    for name in NAMES:
        assert name in registered
        meta = MetadataCatalog.get(name)
        assert meta.thing_classes == ["face"]
        expected = "fddb" if name.startswith("fddb") else EVALUATOR_TYPES.get(name, "afw")
        assert meta.evaluator_type == expected, name
        assert meta.image_root and meta.dirname
    root = os.path.expanduser(os.getenv("DETECTRON2_DATASETS", "datasets"))
    assert MetadataCatalog.get("widerface_val").gt_dir == os.path.join(
        root, "widerface", "eval_tools", "ground_truth"
    )
    assert MetadataCatalog.get("fddb_fold_07").fold == 7
    assert MetadataCatalog.get("fddb_fold_07").num_images_in_fold == 279
    assert MetadataCatalog.get("fddb_all").fold is None
    assert MetadataCatalog.get("fddb_all").num_images_total == 2845
    assert MetadataCatalog.get("afw_test").image_root == os.path.join(root, "AFW", "images")


def test_registration_is_lazy_without_data(tmp_path):
    """Importing with an empty DETECTRON2_DATASETS works; loading names the expected file."""
    script = textwrap.dedent("""
        import facecraft_d2.data
        from detectron2.data import DatasetCatalog
        for name in {names!r}:
            try:
                DatasetCatalog.get(name)
            except FileNotFoundError as e:
                assert {root!r} in str(e), str(e)
                print("missing", name)
        """).format(names=NAMES, root=str(tmp_path))
    env = dict(os.environ, DETECTRON2_DATASETS=str(tmp_path))
    out = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split("\n")[:-1] == ["missing " + n for n in NAMES]
