# Copyright (c) facecraft_d2 contributors.
"""The evaluator of a dataset's own benchmark protocol, chosen by its ``evaluator_type``."""
import os

from detectron2.data import MetadataCatalog

from .afw_evaluation import AFWEvaluator
from .fddb_evaluation import FDDBEvaluator
from .widerface_evaluation import WiderFaceEvaluator

__all__ = ["build_face_evaluator"]


def build_face_evaluator(cfg, dataset_name, output_folder=None):
    """
    Build the evaluator of a dataset's own benchmark protocol, chosen by the
    ``evaluator_type`` of its metadata: "fddb", "wider" or "afw".

    Args:
        cfg (CfgNode): config with ``TEST.FDDB`` / ``TEST.AFW`` (see ``add_facecraft_config``).
        dataset_name (str): a registered dataset.
        output_folder (str): where the evaluator writes its files (ROC/PR plots, official
            detection files); defaults to ``cfg.OUTPUT_DIR/inference/<dataset_name>``.
    Returns:
        DatasetEvaluator
    """
    if output_folder is None:
        output_folder = os.path.join(cfg.OUTPUT_DIR, "inference", dataset_name)
    evaluator_type = MetadataCatalog.get(dataset_name).get("evaluator_type", None)
    if evaluator_type == "fddb":
        return FDDBEvaluator(
            dataset_name, output_dir=output_folder, num_total_images=cfg.TEST.FDDB.NUM_TOTAL_IMAGES,
            score_threshold=cfg.TEST.FACES.SCORE_THRESH,
        )
    if evaluator_type == "wider":
        return WiderFaceEvaluator(dataset_name, output_dir=output_folder)
    if evaluator_type == "afw":
        return AFWEvaluator(
            dataset_name,
            output_dir=output_folder,
            iou_thresholds=tuple(cfg.TEST.AFW.IOU_THRESHOLDS),
            min_face_size=cfg.TEST.AFW.MIN_FACE_SIZE,
        )
    raise NotImplementedError(
        f"no evaluator for dataset {dataset_name!r} with evaluator_type={evaluator_type!r}; "
        "facecraft_d2 knows 'fddb', 'wider' and 'afw'"
    )
