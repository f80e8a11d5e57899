# Copyright (c) facecraft_d2 contributors.
"""``facecraft eval`` on the first FDDB images (needs $DETECTRON2_DATASETS)."""
import json

from facecraft_d2.cli import main


def test_eval_fddb_writes_roc_and_official_files(datasets_root, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--dataset", "fddb_fold_01", "--max-images", "2", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    results = json.loads((out / "results.json").read_text())
    (name, res), = results["results"].items()
    assert 0 <= res["fddb"]["TPR@1000FP"] <= 100 and res["timing"]["num_images"] == 2
    files = {p.name for p in (out / name).iterdir()}
    assert {"fddb_roc.png", "DiscROC.txt", "ContROC.txt", "fddb_dets.txt"} <= files
    assert (out / name / "fddb_roc.png").stat().st_size > 1000
    assert name in printed


def test_eval_unknown_dataset_is_one_clear_error(tmp_path, capsys):
    assert main(["eval", "--dataset", "no_such_set", "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("facecraft eval: error: ") and "no_such_set" in err
    assert "Traceback" not in err


def test_eval_wider_writes_pr_plot_and_official_files(datasets_root, tmp_path, capsys):
    out = tmp_path / "eval"
    assert main(["eval", "--dataset", "wider", "--max-images", "2", "--out", str(out)]) == 0
    (name, res), = json.loads((out / "results.json").read_text())["results"].items()
    assert set(res["widerface"]) == {"easy", "medium", "hard"}
    assert (out / name / "widerface_pr.png").stat().st_size > 1000
    assert any((out / name / "widerface_predictions").rglob("*.txt"))
