# Copyright (c) facecraft_d2 contributors.
"""
Small helpers shared by the face evaluators: their common base class (collecting the
detections of the processed images), VOC average precision, turning model outputs into
numpy arrays, gathering per-rank predictions, logging result tables and writing their
curves as PNG files.
"""

import logging
import numpy as np

from detectron2.evaluation.evaluator import DatasetEvaluator
from detectron2.utils import comm
from detectron2.utils.logger import create_small_table

__all__ = [
    "FaceDetectionEvaluator",
    "voc_ap",
    "instances_to_numpy",
    "gather_predictions",
    "log_results",
    "new_plot",
    "save_plot",
]


def voc_ap(recall, precision):
    """
    VOC "continuous" average precision: area under the monotone precision envelope.

    This is the formula shared by the WIDER FACE Python port (``voc_ap``) and the
    face-eval toolbox (``VOCpr.VOCap``): sentinels (0, 0) and (1, 0) are appended, the
    precision is made non-increasing from the right, and ``sum(ΔR * P)`` is taken over
    the points where recall changes.

    Args:
        recall (ndarray): shape (K,), recall of each point of the curve, non-decreasing.
        precision (ndarray): shape (K,), precision of each point. NaN entries (0/0
            points) are treated as 0; they only occur where recall is 0 and do not
            change the result.

    Returns:
        float: AP in [0, 1].
    """
    recall = np.asarray(recall, dtype=np.float64)
    precision = np.nan_to_num(np.asarray(precision, dtype=np.float64), nan=0.0)
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    # precision envelope: for each point the max precision at any higher recall
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    i = np.where(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[i + 1] - mrec[i]) * mpre[i + 1]))


def instances_to_numpy(instances):
    """
    Args:
        instances (Instances): a model output with ``pred_boxes`` (XYXY_ABS, original
            image coordinates) and ``scores``.

    Returns:
        tuple[ndarray, ndarray]: boxes of shape (N, 4) as float64 XYXY, scores of
        shape (N,) as float64.
    """
    instances = instances.to("cpu")
    boxes = instances.pred_boxes.tensor.numpy().astype(np.float64).reshape(-1, 4)
    scores = instances.scores.numpy().astype(np.float64).reshape(-1)
    return boxes, scores


class FaceDetectionEvaluator(DatasetEvaluator):
    """
    Base of the face evaluators: :meth:`process` keeps, in ``self._predictions``, the
    detections of every processed image by its ``image_id`` (as a string), in the form that
    :meth:`_convert` gives them; subclasses implement :meth:`evaluate`.
    """

    def reset(self):
        self._predictions = {}  # image_id -> self._convert(boxes, scores)

    def process(self, inputs, outputs):
        for input, output in zip(inputs, outputs):
            boxes, scores = instances_to_numpy(output["instances"])
            self._predictions[str(input["image_id"])] = self._convert(boxes, scores)

    def _convert(self, boxes, scores):
        """
        Args:
            boxes (ndarray): (D, 4) float64 XYXY, one image's detections.
            scores (ndarray): (D,) float64.

        Returns:
            what is kept for the image; by default ``(boxes, scores)``.
        """
        return boxes, scores


def gather_predictions(predictions):
    """
    Gather the per-image prediction dicts of all ranks on the main process.

    Args:
        predictions (dict): image_id -> anything, this rank's predictions.

    Returns:
        dict or None: the union of all ranks' dicts on the main process, None elsewhere.
    """
    all_predictions = comm.gather(predictions, dst=0)
    if not comm.is_main_process():
        return None
    merged = {}
    for predictions_per_rank in all_predictions:
        merged.update(predictions_per_rank)
    return merged


def log_results(logger_name, dataset_name, task, results):
    """
    Log ``results`` (metric -> float) as a one-row markdown table.

    Args:
        logger_name (str): name of the logger to use.
        dataset_name (str): shown in the header line.
        task (str): e.g. "fddb".
        results (dict[str, float]): the metrics of one task.
    """
    logging.getLogger(logger_name).info(
        "Evaluation results of {} on {}:\n".format(task, dataset_name) + create_small_table(results)
    )


def new_plot():
    """(figure, axes) of a 6 x 5 inch plot, without pyplot (the global backend is left alone)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6, 5))
    return fig, fig.subplots()


def save_plot(fig, ax, path, title, xlabel, ylabel, legend_loc, xlim=(0, 1)):
    """Label and grid the axes, then write the figure to ``path`` as a 100-dpi PNG."""
    from detectron2.utils.file_io import PathManager

    ax.set_xlim(*xlim)
    ax.set_ylim(0, 1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True)
    ax.legend(loc=legend_loc)
    with PathManager.open(path, "wb") as f:
        fig.savefig(f, format="png", dpi=100)
