# Copyright (c) facecraft_d2 contributors.
"""tools/heldout_eval.py: any detector scored on the validation split of a (synthetic) set."""
import json
import os
import runpy

import cv2
import numpy as np

from detectron2.data import DatasetCatalog
from detectron2.structures import BoxMode

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")
TOOL = runpy.run_path(os.path.join(ROOT, "tools", "heldout_eval.py"))


def test_heldout_eval_scores_each_detector_on_the_split(tmp_path):
    dicts = []
    for i in range(40):
        path = str(tmp_path / f"{i}.jpg")
        cv2.imwrite(path, np.random.RandomState(i).randint(0, 255, (64, 80, 3)).astype(np.uint8))
        dicts.append({"file_name": path, "image_id": f"heldout_eval_test_{i}", "height": 64, "width": 80,
                      "annotations": [{"bbox": [10, 10, 30, 30], "bbox_mode": BoxMode.XYWH_ABS, "iscrowd": 0}]})
    DatasetCatalog.register("heldout_eval_test_set", lambda: dicts)
    config = os.path.join(ROOT, "configs", "cascade", "separate_x48.yaml")
    out = str(tmp_path / "r.json")
    result = TOOL["main"]([f"random_a={config}:random", f"random_b={config}:random",
                           "--split-config", config, "--dataset", "heldout_eval_test_set",
                           "--max-images", "3", "--out", out])
    assert json.load(open(out)) == json.loads(json.dumps(result))
    assert 1 <= result["images"] <= 3 and result["faces"] == result["images"]  # one 30 px face each
    assert [r["detector"] for r in result["rows"]] == ["random_a", "random_b"]
    for row in result["rows"]:
        assert 0.0 <= row["ap"] <= 1.0 and 0.0 <= row["recall_any_score"] <= 1.0
        assert row["false_positives_any_score_per_image"] >= 0 and row["ms_per_image"] > 0
