#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Train or evaluate a facecraft_d2 model.

    python tools/train_net.py --config-file configs/<...>.yaml [--resume] [KEY VALUE ...]
    python tools/train_net.py --config-file configs/<...>.yaml --eval-only MODEL.WEIGHTS model.pth

Datasets are read from $DETECTRON2_DATASETS (default ./datasets, see datasets/README.md).
"""
import logging

import torch

import detectron2.utils.comm as comm
from detectron2.config import get_cfg
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils.logger import setup_logger

from facecraft_d2 import add_facecraft_config
from facecraft_d2.engine import FaceCraftCheckpointer, Trainer
from facecraft_d2.evaluation.run import benchmark_datasets


def setup(args):
    """Create the config from defaults, ``add_facecraft_config``, the file and the overrides."""
    # the benchmark sets of tools/eval_table.py, so that DATASETS.TEST may name them
    # (fddb_folds_01_05: folds 1-5 as one ROC; widerface_val_every8: every 8th val image)
    benchmark_datasets(("fddb", "wider"), wider_step=8)
    cfg = get_cfg()
    add_facecraft_config(cfg)
    cfg.merge_from_file(args.config_file)
    cfg.merge_from_list(args.opts)
    if cfg.MODEL.DEVICE.startswith("cuda") and not torch.cuda.is_available():
        logging.getLogger("facecraft_d2").warning("CUDA is not available: running on the CPU")
        cfg.MODEL.DEVICE = "cpu"
    cfg.freeze()
    default_setup(cfg, args)
    setup_logger(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank(), name="facecraft_d2")
    return cfg


def main(args):
    cfg = setup(args)
    if args.eval_only:
        model = Trainer.build_model(cfg)
        FaceCraftCheckpointer(model, save_dir=cfg.OUTPUT_DIR).resume_or_load(
            cfg.MODEL.WEIGHTS, resume=args.resume
        )
        res = Trainer.test(cfg, model)
        if comm.is_main_process():
            verify_results(cfg, res)
        return res
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=args.resume)
    return trainer.train()


if __name__ == "__main__":
    args = default_argument_parser().parse_args()
    print("Command Line Args:", args)
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
