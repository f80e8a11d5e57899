#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Cut the training samples of one greedy cascade stage into a crop cache (outside the repo).

    # x12: candidate squares only
    python tools/build_crop_cache.py --config-file configs/cascade/separate_x12.yaml \
        --out ../data/cascade_cache/x12
    # x24: plus the boxes the trained x12 keeps on every full training image (hard negatives)
    python tools/build_crop_cache.py --config-file configs/cascade/separate_x24.yaml \
        --out ../data/cascade_cache/x24 MODEL.WEIGHTS output/cascade/separate_x12/model_final.pth

The config's ``MODEL.FACECRAFT.DATA`` keys choose the samples (``MINE_UPTO``: the stage the
mining model runs up to); ``DATASETS.TRAIN`` the images (minus the validation split).
Datasets are read from $DETECTRON2_DATASETS. See facecraft_d2/engine/hard_negatives.py.
"""
import logging
import os
import sys

from detectron2.engine import default_argument_parser
from detectron2.utils.logger import setup_logger

import facecraft_d2  # noqa: F401  registers the datasets
from facecraft_d2.config import build_config
from facecraft_d2.engine.hard_negatives import build_stage_cache
from facecraft_d2.model_zoo import load_model


def main():
    parser = default_argument_parser()
    parser.add_argument("--out", required=True, help="cache folder to write (must not exist)")
    parser.add_argument("--workers", type=int, default=2, help="processes cutting crops")
    parser.add_argument("--max-images", type=int, default=None, help="only this many images")
    args = parser.parse_args()
    setup_logger(name="facecraft_d2")
    logger = setup_logger(name=__name__)
    if os.path.exists(os.path.join(args.out, "cache.json")):
        sys.exit(f"{args.out} already holds a crop cache: remove it first")
    cfg = build_config(args.config_file, args.opts, device="cpu")
    mine = bool(cfg.MODEL.FACECRAFT.DATA.MINE_UPTO)
    if mine and not cfg.MODEL.WEIGHTS:
        sys.exit("DATA.MINE_UPTO is set: give the mining model's MODEL.WEIGHTS")
    # without mining only the model's box encoding is used: no weights to load
    model = load_model(cfg, weights=None if mine else "")
    manifest = build_stage_cache(cfg, model, args.out, num_workers=args.workers,
                                 max_images=args.max_images, seed=max(cfg.SEED, 0))
    logger.info("wrote %s: %s", args.out, manifest)
    logging.shutdown()


if __name__ == "__main__":
    main()
