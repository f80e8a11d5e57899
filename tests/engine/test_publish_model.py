# Copyright (c) facecraft_d2 contributors.
"""tools/publish_model.py: weights, SHA-256 and the training record of a shipped model."""
import json
import os
import sys

import torch
import yaml

from facecraft_d2.utils.testing import load_tool


def _fake_run(path, iterations, seconds, batch=384, arch="FaceCraftCascade"):
    """A finished one-session detectron2 run folder: model_final.pth, config.yaml, log.txt."""
    os.makedirs(path)
    torch.save({"model": {"w": torch.ones(2)}, "optimizer": {}}, os.path.join(path, "model_final.pth"))
    cfg = {"MODEL": {"META_ARCHITECTURE": arch, "FACECRAFT": {"SAMPLER": {"BATCH_SIZE": batch}}},
           "SOLVER": {"MAX_ITER": iterations, "IMS_PER_BATCH": 2}}
    with open(os.path.join(path, "config.yaml"), "w") as f:
        yaml.safe_dump(cfg, f)
    h, rem = divmod(seconds, 3600)
    with open(os.path.join(path, "log.txt"), "w") as f:
        f.write("[12/06 05:00:00 d2.engine.train_loop]: Starting training from iteration 0\n"
                f"[12/06 05:30:00 d2.utils.events]: Overall training speed: {iterations - 2} iterations\n"
                f"[12/06 05:30:00 d2.utils.events]: Total training time: {h}:{rem // 60:02d}:{rem % 60:02d}\n")


def test_earlier_from_prepends_the_shipped_models_runs(tmp_path, monkeypatch):
    """A run initialised from a shipped model whose logs are gone inherits its recorded runs."""
    publish = load_tool("publish_model")
    zoo = tmp_path / "zoo"
    zoo.mkdir()
    earlier = {"run": "output/cascade/separate_x12", "iterations": 15000, "wall_time_s": 1262,
               "sessions": 2, "samples_seen": 5760000}
    (zoo / "models.json").write_text(json.dumps({"cascade_separate": {"training_runs": [earlier]}}))
    monkeypatch.setattr(publish, "ZOO", str(zoo))
    run = tmp_path / "x48_more"
    _fake_run(str(run), iterations=4000, seconds=3125)
    monkeypatch.setattr(sys, "argv", ["publish_model.py", "--name", "cascade_separate", "--config",
                                      "cascade/separate_x48_more.yaml", "--run", str(run),
                                      "--earlier-from", "cascade_separate"])
    publish.main()
    entry = json.loads((zoo / "models.json").read_text())["cascade_separate"]
    assert [r["iterations"] for r in entry["training_runs"]] == [15000, 4000]
    assert entry["training_runs"][1]["wall_time_s"] == 3125
    assert entry["training_runs"][1]["samples_seen"] == 4000 * 384
    assert entry["total_iterations"] == 19000 and entry["total_wall_time_s"] == 1262 + 3125
    assert torch.load(zoo / "weights" / "cascade_separate.pth")["model"]["w"].tolist() == [1.0, 1.0]
    assert "optimizer" not in torch.load(zoo / "weights" / "cascade_separate.pth")


def test_rcnn_runs_record_images_seen(tmp_path):
    """R-CNN steps count images (iterations x SOLVER.IMS_PER_BATCH), cascades count patches."""
    publish = load_tool("publish_model")
    _fake_run(str(tmp_path / "joint"), iterations=4000, seconds=1800, arch="JointRCNN")
    info = publish.run_info(str(tmp_path / "joint"))
    assert info["images_seen"] == 8000 and "samples_seen" not in info
    assert info["iterations"] == 4000 and info["wall_time_s"] == 1800
    _fake_run(str(tmp_path / "x48"), iterations=10, seconds=60)
    info = publish.run_info(str(tmp_path / "x48"))
    assert info["samples_seen"] == 3840 and "images_seen" not in info
