#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Run a trained RPN in test mode on a dataset's images and save its proposals in Detectron2's
proposal-file format, for the next step's ``DATASETS.PROPOSAL_FILES_TRAIN``.

    python tools/dump_proposals.py --config-file configs/rcnn/steps/rpn.yaml \
        --output output/rcnn/rpn/proposals_train.pkl [--dataset NAME [NAME ...]] \
        [--weights output/rcnn/rpn/model_final.pth]

The weights default to the trained ``<OUTPUT_DIR>/model_final.pth`` of the config (not its
MODEL.WEIGHTS, which is the step's initialisation), the datasets to all of the config's
training datasets, in one file (give it once per dataset in ``PROPOSAL_FILES_TRAIN``); images
are resized as at test time (``INPUT.MIN_SIZE_TEST``) and each keeps at most ``MODEL.RPN.POST_NMS_TOPK_TEST`` proposals.
"""
import argparse
import logging
import os

import torch

from detectron2.data import build_detection_test_loader
from detectron2.utils.logger import setup_logger

from facecraft_d2.config import build_config
from facecraft_d2.engine.proposals import compute_proposals, save_proposals
from facecraft_d2.model_zoo import load_model


def get_parser():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--config-file", required=True)
    p.add_argument("--output", required=True, help="proposal file to write (.pkl)")
    p.add_argument("--weights", default=None, help="default: <OUTPUT_DIR>/model_final.pth")
    p.add_argument("--dataset", nargs="+", default=None,
                   help="datasets whose images to run on; default: the config's DATASETS.TRAIN")
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    p.add_argument("opts", nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return p


def main(args):
    setup_logger(name="facecraft_d2")
    if args.threads:
        torch.set_num_threads(args.threads)
    cfg = build_config(args.config_file, args.opts)
    cfg.MODEL.WEIGHTS = args.weights or os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    cfg.MODEL.LOAD_PROPOSALS = False  # the test loader must not look for proposal files
    cfg.freeze()
    datasets = list(args.dataset or cfg.DATASETS.TRAIN)
    model = load_model(cfg)
    logging.getLogger("facecraft_d2").info(
        "RPN proposals of %s on %s -> %s", cfg.MODEL.WEIGHTS, datasets, args.output
    )
    loader = build_detection_test_loader(cfg, datasets)
    save_proposals(compute_proposals(model, loader), args.output)


if __name__ == "__main__":
    main(get_parser().parse_args())
