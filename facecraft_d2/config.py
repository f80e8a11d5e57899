# Copyright (c) facecraft_d2 contributors.
from detectron2.config import CfgNode as CN


def add_facecraft_config(cfg):
    """
    Add the config keys of facecraft_d2 to a detectron2 config (in place).

    Every key has a one-line comment; YAML files under ``configs/`` override them.
    """
    _C = cfg

    # ---------------------------------------------------------------------------- #
    # ZF-net backbone (Zeiler & Fergus 2014, as in Faster R-CNN, without LRN layers)
    # ---------------------------------------------------------------------------- #
    _C.MODEL.ZF = CN()
    # Multiplier of every conv width (1.0 = ZF's 96/256/384/384/256); 0.25 is the slim CPU variant.
    _C.MODEL.ZF.WIDTH_MULT = 1.0
    # Which conv outputs to return: any of "conv1" … "conv5" (strides 4, 16, 16, 16, 16 after pools).
    _C.MODEL.ZF.OUT_FEATURES = ["conv5"]
    # Normalization after each conv: "" (none, as ZF without LRN), "BN", "FrozenBN", "GN", "SyncBN".
    _C.MODEL.ZF.NORM = ""

    # ---------------------------------------------------------------------------- #
    # Benchmark evaluators (facecraft_d2.evaluation), chosen by the dataset's evaluator_type
    # ---------------------------------------------------------------------------- #
    _C.TEST.FDDB = CN()
    # Number of images of the full FDDB benchmark; TPR is also reported at 1000*n/this FP.
    _C.TEST.FDDB.NUM_TOTAL_IMAGES = 2845
    _C.TEST.AFW = CN()
    # IoU thresholds at which AFW-protocol AP is reported (0.3: the paper, 0.5: Mathias et al.).
    _C.TEST.AFW.IOU_THRESHOLDS = [0.3, 0.5]
    # Ground-truth faces narrower or shorter than this (pixels) are ignored by the AFW protocol.
    _C.TEST.AFW.MIN_FACE_SIZE = 30
