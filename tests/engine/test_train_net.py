# Copyright (c) facecraft_d2 contributors.
"""
Integration: tools/train_net.py trains a tiny facecraft model on real images for a few
iterations, resumes from its checkpoint, and evaluates it with every benchmark evaluator.
"""
import os

import pytest

from detectron2.data import MetadataCatalog

from facecraft_d2.data.catalog import register_subset

from facecraft_d2.utils.testing import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TINY_CONFIG = os.path.join(ROOT, "configs", "tests", "zf_rcnn_tiny.yaml")


def _train_net():
    return load_tool("train_net")


def _args(train_net, *extra, opts=()):
    return train_net.default_argument_parser().parse_args(["--config-file", TINY_CONFIG, *extra, *opts])


def test_train_then_eval_only_with_every_evaluator(datasets_root, tmp_path):
    train_net = _train_net()
    out = str(tmp_path / "run")
    tests = (
        register_subset("fddb_fold_01", 6),  # evaluator_type "fddb"
        register_subset("widerface_val", 6),  # evaluator_type "wider"
        "dlib_faces_test",  # evaluator_type "afw"
    )
    assert [MetadataCatalog.get(n).evaluator_type for n in tests] == ["fddb", "wider", "afw"]
    train_net.main(_args(train_net, opts=["OUTPUT_DIR", out, "SOLVER.MAX_ITER", "3", "SOLVER.CHECKPOINT_PERIOD", "2",
                                          "DATASETS.TEST", "()"]))
    assert os.path.isfile(os.path.join(out, "model_0000001.pth"))
    assert os.path.isfile(os.path.join(out, "model_final.pth"))

    # --resume carries on from the last checkpoint to the new MAX_ITER
    train_net.main(_args(train_net, "--resume", opts=["OUTPUT_DIR", out, "SOLVER.MAX_ITER", "4",
                                                      "DATASETS.TEST", "()"]))
    with open(os.path.join(out, "last_checkpoint")) as f:
        assert f.read().strip() == "model_final.pth"

    results = train_net.main(_args(
        train_net, "--eval-only",
        opts=["OUTPUT_DIR", out, "MODEL.WEIGHTS", os.path.join(out, "model_final.pth"),
              "DATASETS.TEST", str(tests)],
    ))
    assert set(results) == set(tests)
    fddb = results[tests[0]]["fddb"]
    wider = results[tests[1]]["widerface"]
    afw = results[tests[2]]["afw"]
    assert fddb["num_images"] == 6 and 0 <= fddb["TPR@1000FP"] <= 100
    assert fddb["TPR@scaledFP"] <= fddb["TPR@1000FP"]
    assert set(wider) == {"easy", "medium", "hard"}
    assert set(afw) == {"AP30", "AP50"} and all(0 <= v <= 100 for v in afw.values())
    fddb_dir = os.path.join(out, "inference", tests[0])
    for name in ("DiscROC.txt", "ContROC.txt"):
        assert os.path.getsize(os.path.join(fddb_dir, name)) > 0
    assert any(f.endswith(".png") for f in os.listdir(fddb_dir))


def test_unknown_evaluator_type_is_a_clear_error(datasets_root):
    from detectron2.config import get_cfg

    from facecraft_d2 import add_facecraft_config
    from facecraft_d2.engine import build_face_evaluator

    cfg = get_cfg()
    add_facecraft_config(cfg)
    MetadataCatalog.get("facecraft_test_no_evaluator").set(evaluator_type="coco")
    with pytest.raises(NotImplementedError, match="evaluator_type='coco'"):
        build_face_evaluator(cfg, "facecraft_test_no_evaluator")
