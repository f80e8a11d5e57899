# Copyright (c) facecraft_d2 contributors.
"""
Integration, on real images: the crop-cache pipeline of tools/train_cascade.sh in miniature.
x12's cache is cut (tools/build_crop_cache.py), x12 trains on it through tools/train_net.py,
then x24's cache mines hard negatives with that x12 and x24 trains on it, x12 frozen.
"""
import json
import os
import sys

import torch

from .test_train_cascade import CASCADE
from facecraft_d2.data.crop_cache import CropCache
from facecraft_d2.utils.testing import load_tool

DLIB = ["DATASETS.TRAIN", "('dlib_faces_train',)", "DATASETS.TEST", "()", "MODEL.FACECRAFT.SAMPLER.VAL_FRACTION", "0.0"]
TRAIN = ["SOLVER.MAX_ITER", "3", "SOLVER.STEPS", "()", "SOLVER.WARMUP_ITERS", "0",
         "SOLVER.CHECKPOINT_PERIOD", "2", "MODEL.FACECRAFT.SAMPLER.BATCH_SIZE", "40"]


def _build_cache(monkeypatch, config, out, *opts):
    tool = load_tool("build_crop_cache")
    monkeypatch.setattr(sys, "argv", ["build_crop_cache.py", "--config-file", os.path.join(CASCADE, config),
                                      "--out", out, "--workers", "1", *DLIB, *opts])
    tool.main()
    with open(os.path.join(out, "cache.json")) as f:
        return json.load(f)


def _train(config, out, cache, *opts):
    train_net = load_tool("train_net")
    args = train_net.default_argument_parser().parse_args(
        ["--config-file", os.path.join(CASCADE, config), *DLIB, *TRAIN, "OUTPUT_DIR", out,
         "MODEL.FACECRAFT.DATA.CACHE_DIRS", f"['{cache}']", *opts])
    train_net.main(args)
    return torch.load(os.path.join(out, "model_final.pth"), map_location="cpu", weights_only=True)["model"]


def test_cache_then_train_then_mine_then_train(datasets_root, tmp_path, monkeypatch):
    c12 = _build_cache(monkeypatch, "separate_x12.yaml", str(tmp_path / "cache_x12"))
    assert c12["images"] == 4 and c12["mine_upto"] == "" and sum(s["count"] for s in c12["shards"]) > 100
    cache = CropCache(str(tmp_path / "cache_x12"))  # every crop records its dataset
    assert cache.datasets == ["dlib_faces_train"] and (cache.sources == 0).all()
    x12 = _train("separate_x12.yaml", str(tmp_path / "x12"), str(tmp_path / "cache_x12"))
    assert bool(x12["delta_stats_ready"]) and not torch.equal(x12["delta_std"], torch.ones(4))

    weights = str(tmp_path / "x12" / "model_final.pth")
    c24 = _build_cache(monkeypatch, "separate_x24.yaml", str(tmp_path / "cache_x24"), "MODEL.WEIGHTS", weights,
                       "MODEL.FACECRAFT.DATA.MINE_SCORE_THRESHOLDS", "[0.0, 0.5, 0.7]")  # x12 mines every window
    assert c24["mine_upto"] == "x12" and c24["weights"] == weights
    # the mined boxes come on top of the same candidates: more samples than x12's cache
    assert sum(s["count"] for s in c24["shards"]) > sum(s["count"] for s in c12["shards"])
    x24 = _train("separate_x24.yaml", str(tmp_path / "x24"), str(tmp_path / "cache_x24"), "MODEL.WEIGHTS", weights)
    assert torch.equal(x12["net.x12_body.0.weight"], x24["net.x12_body.0.weight"])  # frozen
    assert not torch.equal(x12["net.x24_body.0.weight"], x24["net.x24_body.0.weight"])
