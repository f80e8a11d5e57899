#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Training samples per second of the cascade's two data paths, on the same config: the online
window sampler (decodes each image and cuts its patches while training) and a crop cache (cut
once by tools/build_crop_cache.py, read as a memmap). Data loading only, no network.

    DETECTRON2_DATASETS=../data/train_root .venv/bin/python tools/loader_speed.py \
        --config-file configs/cascade/separate_x12.yaml --seconds 30
"""
import json
import time

import torch

from detectron2.engine import default_argument_parser

from facecraft_d2.config import build_config
from facecraft_d2.data import build_cascade_train_loader, build_crop_cache_loader


def samples_per_second(loader, seconds, warmup=2):
    it = iter(loader)
    for _ in range(warmup):
        next(it)
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        n += len(next(it)["ious"])
    return n / (time.perf_counter() - start)


def main():
    p = default_argument_parser()
    p.add_argument("--seconds", type=float, default=30.0, help="timed seconds per data path")
    args = p.parse_args()
    torch.set_num_threads(1)
    cfg = build_config(args.config_file, args.opts, device="cpu")
    cache = build_crop_cache_loader(cfg)
    online_cfg = cfg.clone()
    online_cfg.MODEL.FACECRAFT.DATA.CACHE_DIRS = []
    online_cfg.DATASETS.TRAIN = ("widerface_train",)  # the online sampler's image set
    online_cfg.DATALOADER.NUM_WORKERS = 1
    online = build_cascade_train_loader(online_cfg)
    result = {
        "batch_size": cfg.MODEL.FACECRAFT.SAMPLER.BATCH_SIZE,
        "crop_cache_samples_per_s": round(samples_per_second(cache, args.seconds)),
        "online_sampler_samples_per_s": round(samples_per_second(online, args.seconds)),
    }
    result["ratio"] = round(result["crop_cache_samples_per_s"] / result["online_sampler_samples_per_s"], 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
