# Copyright (c) facecraft_d2 contributors.
"""tools/eval_table.py and facecraft_d2.evaluation.run on a few real FDDB / WIDER val images."""
import json
import os

import pytest

from detectron2.data import DatasetCatalog, MetadataCatalog

from facecraft_d2.utils.testing import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _eval_table():
    return load_tool("eval_table")


def test_fddb_folds_union(datasets_root):
    from facecraft_d2.evaluation.run import benchmark_datasets

    names = benchmark_datasets(["fddb", "wider"])
    assert names == {"fddb": "fddb_folds_01_05", "wider": "widerface_val"}
    union = DatasetCatalog.get("fddb_folds_01_05")
    folds = [DatasetCatalog.get("fddb_fold_{:02d}".format(i)) for i in range(1, 6)]
    assert [d["image_id"] for d in union] == [d["image_id"] for f in folds for d in f]
    meta = MetadataCatalog.get("fddb_folds_01_05")
    assert meta.evaluator_type == "fddb" and meta.folds == [1, 2, 3, 4, 5]
    assert len(meta.ellipse_files) == 5 and meta.fold is None
    sub = benchmark_datasets(["fddb"], max_images=2)["fddb"]
    assert [d["image_id"] for d in DatasetCatalog.get(sub)] == [d["image_id"] for d in union[:2]]


def test_parse_detector_specs():
    from facecraft_d2.evaluation.run import parse_detector

    assert parse_detector("mtcnn") == {"name": "mtcnn", "kind": "peer", "peer": "mtcnn"}
    assert parse_detector("m2=mtcnn")["name"] == "m2"
    joint = os.path.join(ROOT, "configs", "cascade", "joint.yaml")
    det = parse_detector("joint={}:w.pth".format(joint))
    assert (det["kind"], det["config_file"], det["weights"]) == ("config", joint, "w.pth")
    assert parse_detector("j=" + joint)["weights"] is None
    with pytest.raises(ValueError):
        parse_detector("x=not_a_peer")
    with pytest.raises(FileNotFoundError):
        parse_detector("x=missing.yaml:w.pth")


def test_cascade_opts_and_missing_weights(tmp_path):
    from facecraft_d2.evaluation.run import build_eval_model

    joint = os.path.join(ROOT, "configs", "cascade", "joint.yaml")
    model, cfg = build_eval_model(joint, "random", ["MODEL.FACECRAFT.TEST.MIN_FACE_SIZE", "48"])
    assert model.min_face == 48 and not model.training and cfg.MODEL.WEIGHTS == ""
    with pytest.raises(FileNotFoundError, match="do not exist"):
        build_eval_model(joint, str(tmp_path / "none.pth"))


def test_eval_table_on_real_subset(datasets_root, tmp_path, no_network):
    """MTCNN and a (random, cheap) cascade on 3 FDDB + 3 WIDER val images: well-formed outputs."""
    pytest.importorskip("facenet_pytorch", reason="pip install --no-deps facenet-pytorch==2.6.0")
    eval_table = _eval_table()
    out = tmp_path / "table"
    joint = os.path.join(ROOT, "configs", "cascade", "joint.yaml")
    opts = ["MODEL.FACECRAFT.TEST.MIN_FACE_SIZE", "64", "MODEL.FACECRAFT.TEST.MAX_PROPOSALS", "20"]
    args = eval_table.get_parser().parse_args(
        ["mtcnn", "rand={}:random".format(joint), "--max-images", "3", "--output", str(out),
         "--threads", "1", "--num-workers", "0", "--opts", *opts]
    )
    table, record = eval_table.main(args)

    assert table == (out / "results.md").read_text()
    lines = table.splitlines()
    assert lines[0] == "| " + " | ".join(eval_table.COLUMNS) + " |"
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines[2:4]]
    assert [r[0] for r in rows] == ["mtcnn", "rand"]
    for row in rows:
        assert len(row) == len(eval_table.COLUMNS)
        assert all(0 <= float(v) <= 100 for v in row[1:6])
        assert row[6] == "3 / 3"
        assert all(float(s) > 0 for s in row[7].split(" / "))
    assert lines[4] == "" and "scaled FP = 1000 x 3 / 2845 = 1.1" in lines[5]

    saved = json.loads((out / "results.json").read_text())  # strict JSON (no NaN)
    assert saved["table"] == table and saved["settings"]["opts"] == opts
    assert saved["detectors"]["rand"]["spec"]["weights"] == "random"
    fddb_name, wider_name = saved["datasets"]["fddb"], saved["datasets"]["wider"]
    assert (fddb_name, wider_name) == ("fddb_folds_01_05_first3", "widerface_val_first3")
    res = saved["detectors"]["mtcnn"]["results"]
    fddb, wider = res[fddb_name]["fddb"], res[wider_name]["widerface"]
    assert fddb["num_images"] == 3 and fddb["scaled_FP"] == pytest.approx(1000 * 3 / 2845)
    assert fddb["TPR@scaledFP"] <= fddb["TPR@1000FP"]
    assert fddb["TPR@1000FP"] > 50  # MTCNN finds the faces of these few FDDB images
    assert set(wider) == {"easy", "medium", "hard"}
    timing = res[wider_name]["timing"]
    assert timing["num_images"] == 3 and timing["seconds"] >= timing["model_seconds"] > 0
    for name in ("DiscROC.txt", "ContROC.txt", "fddb_dets.txt"):
        assert (out / "mtcnn" / fddb_name / name).stat().st_size > 0
    assert len(list((out / "mtcnn" / wider_name / "widerface_predictions").rglob("*.txt"))) == 3
    assert (out / "rand" / fddb_name / "DiscROC.txt").is_file()
