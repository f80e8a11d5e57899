#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Train or evaluate a facecraft_d2 model.

    python tools/train_net.py --config-file configs/<...>.yaml [--resume] [KEY VALUE ...]
    python tools/train_net.py --config-file configs/<...>.yaml --eval-only MODEL.WEIGHTS model.pth

Datasets are read from $DETECTRON2_DATASETS (default ./datasets, see datasets/README.md).
A config file that does not exist, or a MODEL.WEIGHTS file that does not exist, is one line on
stderr (exit status 1); every other error is Detectron2's, with its traceback.
"""
import os
import sys


import detectron2.utils.comm as comm
from detectron2.engine import default_argument_parser, default_setup, launch
from detectron2.evaluation import verify_results
from detectron2.utils.file_io import PathManager

from facecraft_d2.config import build_config
from facecraft_d2.engine import FaceCraftCheckpointer, Trainer
from facecraft_d2.model_zoo import list_models
from facecraft_d2.utils.logger import setup_plain_loggers


def build_cfg(args):
    """The config from defaults, ``add_facecraft_config``, the file and the overrides."""
    return build_config(args.config_file, args.opts)


def setup(args):
    """:func:`build_cfg`, on the CPU without CUDA, frozen; logging into ``OUTPUT_DIR``."""
    # importing facecraft_d2 registered every dataset DATASETS may name, the benchmark sets
    # included (fddb_folds_01_05: folds 1-5 as one ROC; widerface_val_every8: every 8th val image)
    cfg = build_cfg(args)  # on the CPU when CUDA is missing
    cfg.freeze()
    setup_plain_loggers(cfg.OUTPUT_DIR, distributed_rank=comm.get_rank())  # log.txt uncoloured
    default_setup(cfg, args)
    return cfg


def input_error(args):
    """
    The one-line error for a config file or a local MODEL.WEIGHTS file that does not exist
    (a ``facecraft://`` name that is not shipped too), or None. A config that names its
    weights itself (e.g. ``configs/cascade/joint.yaml``: the previous training step's output)
    says so, and how to give others. Weights are not needed when ``--resume`` finds a
    checkpoint in ``OUTPUT_DIR``.
    """
    if not PathManager.isfile(args.config_file):
        return f"config file {args.config_file!r} does not exist"
    cfg = build_cfg(args)
    weights, shipped = cfg.MODEL.WEIGHTS, ", ".join(list_models())
    resuming = args.resume and os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint"))
    if not weights or resuming:
        return None
    if weights.startswith("facecraft://"):
        name = weights[len("facecraft://"):]
        return None if name in list_models() else (
            f"MODEL.WEIGHTS {weights}: no shipped model {name!r} (shipped: {shipped})")
    if "://" in weights or os.path.isfile(weights):  # URLs: Detectron2 downloads them
        return None
    if "MODEL.WEIGHTS" in args.opts[::2]:
        return f"weights file {weights!r} (MODEL.WEIGHTS) does not exist"
    return (f"{args.config_file} needs MODEL.WEIGHTS: it names {weights!r}, which does not exist "
            "(the output of an earlier training step?); train that step first, or give "
            f"MODEL.WEIGHTS <file.pth> or MODEL.WEIGHTS facecraft://<shipped model> ({shipped})")


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
    error = input_error(args)
    if error:
        sys.exit(f"train_net.py: error: {error}")
    launch(
        main,
        args.num_gpus,
        num_machines=args.num_machines,
        machine_rank=args.machine_rank,
        dist_url=args.dist_url,
        args=(args,),
    )
