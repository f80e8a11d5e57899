# Copyright (c) facecraft_d2 contributors.
"""
AFW / PASCAL faces evaluation: the average-precision protocol of the face-eval toolbox
(Mathias et al., "Face detection without bells and whistles", ECCV 2014;
``VOCpr.py``, ``util.py``, ``plot_AP.py``), applied to the boxes of any registered face
dataset (``iscrowd=1`` boxes are ignored regions).

Protocol, as the toolbox:

* Faces narrower or lower than ``min_face_size`` (30 px; width = x2 - x1) and
  ``iscrowd`` regions are ignored; the others are the positives.
* Detections are kept only if their width or height exceeds
  ``int(sqrt(0.5 * min_face_size ** 2))`` = 21 px (``filterdet``).
* Detections of all images, in descending score (stable), take the face of maximum
  overlap in their image (ties: the last one), ignored faces included. If the overlap
  is strictly above the threshold: an ignored face -> neither TP nor FP; an unmatched
  face -> TP; an already matched face -> FP. Otherwise FP.
* Overlap (``util.overlap``): IoU with the ``+1`` pixel convention,
  ``(x2 - x1 + 1) * (y2 - y1 + 1)``, and zero unless the boxes strictly overlap.
* AP = VOC continuous AP of the resulting precision/recall.
* Optional box calibration (``evaluate_optim``, off by default): ``calibration_iters``
  times, match, take the mean relative translation and scale between TP detections and
  their faces and re-transform all detections; as in the toolbox, the reported curve is
  the one of the last matching (before the last transform).

The paper reports AFW AP at IoU 0.3; the toolbox's default is 0.5 (with calibration).
"""

import logging
import os
from collections import OrderedDict
import numpy as np

from detectron2.data import DatasetCatalog
from detectron2.structures import BoxMode
from detectron2.utils.file_io import PathManager

from .common import (
    FaceDetectionEvaluator,
    gather_predictions,
    log_results,
    new_plot,
    save_plot,
    voc_ap,
)

__all__ = [
    "AFWEvaluator",
    "afw_overlaps",
    "filter_small_detections",
    "afw_match",
    "afw_average_precision",
]


def afw_overlaps(boxes, query_boxes):
    """
    The toolbox's ``util.overlap`` between XYXY boxes.

    Args:
        boxes (ndarray): shape (N, 4) XYXY.
        query_boxes (ndarray): shape (K, 4) XYXY.

    Returns:
        ndarray: shape (N, K).
    """
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)[:, None, :]
    q = np.asarray(query_boxes, dtype=np.float64).reshape(-1, 4)[None, :, :]
    strict = (
        (b[..., 2] > q[..., 0])
        & (q[..., 2] > b[..., 0])
        & (b[..., 3] > q[..., 1])
        & (q[..., 3] > b[..., 1])
    )
    iw = np.minimum(b[..., 2], q[..., 2]) - np.maximum(b[..., 0], q[..., 0]) + 1
    ih = np.minimum(b[..., 3], q[..., 3]) - np.maximum(b[..., 1], q[..., 1]) + 1
    inter = np.where(strict, iw * ih, 0.0)
    area_b = (np.abs(b[..., 2] - b[..., 0]) + 1) * (np.abs(b[..., 3] - b[..., 1]) + 1)
    area_q = (np.abs(q[..., 2] - q[..., 0]) + 1) * (np.abs(q[..., 3] - q[..., 1]) + 1)
    return inter / (area_b + area_q - inter)


def filter_small_detections(boxes, min_face_size=30):
    """
    The toolbox's ``filterdet``: keep detections wider or taller than
    ``int(sqrt(0.5 * min_face_size ** 2))`` pixels.

    Args:
        boxes (ndarray): shape (D, 4) XYXY.

    Returns:
        ndarray: shape (D,) bool keep mask.
    """
    min_pix = int(np.sqrt(0.5 * min_face_size * min_face_size))
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return ((boxes[:, 2] - boxes[:, 0]) > min_pix) | ((boxes[:, 3] - boxes[:, 1]) > min_pix)


def afw_match(ground_truth, detections, iou_thresh):
    """
    Greedy matching of all detections in descending score (``VOCprRecord``).

    Args:
        ground_truth (dict): image_id -> (boxes (G, 4) XYXY, ignore (G,) bool).
        detections (list[tuple]): (image_id, score, box XYXY (4,)) of all images.
        iou_thresh (float): a match needs overlap strictly above it.

    Returns:
        dict: ``tp``, ``fp``, ``scores`` (D,) in descending-score order, ``matched_gt``
        (D,) index of the face of each TP (-1 otherwise), ``order`` (D,) the sort
        permutation of ``detections``, and ``num_pos`` (faces that are not ignored).
    """
    num_pos = int(sum((~ign).sum() for _, ign in ground_truth.values()))
    scores = np.asarray([d[1] for d in detections], dtype=np.float64)
    boxes = np.asarray([d[2] for d in detections], dtype=np.float64).reshape(-1, 4)
    # the face of maximum overlap does not depend on the matching state: find it per image
    names, image_index = np.unique([str(d[0]) for d in detections], return_inverse=True)
    image_index = image_index.reshape(-1)
    best_gt = np.zeros(len(detections), dtype=np.int64)
    best_ovr = np.zeros(len(detections))
    best_ignored = np.zeros(len(detections), dtype=bool)
    for i, name in enumerate(names):
        gt_boxes, ignore = ground_truth.get(name, (np.zeros((0, 4)), np.zeros(0, bool)))
        if len(gt_boxes) == 0:
            continue  # no face: all detections are false positives
        idx = np.nonzero(image_index == i)[0]
        ovr = afw_overlaps(boxes[idx], gt_boxes)
        g = ovr.shape[1] - 1 - ovr[:, ::-1].argmax(1)  # last index of the maximum
        best_gt[idx], best_ovr[idx], best_ignored[idx] = g, ovr[np.arange(len(idx)), g], ignore[g]

    order = np.argsort(-scores, kind="stable")
    hit, ignored = best_ovr[order] > iou_thresh, best_ignored[order]
    # a face that counts is matched by the first (highest-scored) detection that hits it
    key = image_index[order] * (best_gt.max(initial=0) + 1) + best_gt[order]
    candidates = np.nonzero(hit & ~ignored)[0]
    _, first = np.unique(key[candidates], return_index=True)
    tp = np.zeros(len(order))
    tp[candidates[first]] = 1
    fp = (~(hit & ignored)).astype(np.float64) - tp
    matched_gt = np.where(tp > 0, best_gt[order], -1)
    return dict(
        tp=tp, fp=fp, scores=scores[order], matched_gt=matched_gt, order=order, num_pos=num_pos
    )


def _calibrate(ground_truth, detections, match):
    """One ``evaluate_optim`` step: re-transform all detections by the mean TP offsets."""
    tx, ty, sx, sy = [], [], [], []
    for rank in np.nonzero(match["tp"])[0]:
        image_id, _, d = detections[match["order"][rank]]
        gx0, gy0, gx1, gy1 = ground_truth[image_id][0][match["matched_gt"][rank]]
        dw, dh = d[2] - d[0], d[3] - d[1]
        tx.append(((gx0 + gx1) - (d[0] + d[2])) / 2.0 / dw)
        ty.append(((gy0 + gy1) - (d[1] + d[3])) / 2.0 / dh)
        sx.append((gx1 - gx0) / dw)
        sy.append((gy1 - gy0) / dh)
    tx, ty, sx, sy = np.mean(tx), np.mean(ty), np.mean(sx), np.mean(sy)
    out = []
    for image_id, score, d in detections:
        w, h = (d[2] - d[0]) / 2.0, (d[3] - d[1]) / 2.0
        cx = (d[0] + d[2]) / 2.0 + tx * w * 2
        cy = (d[1] + d[3]) / 2.0 + ty * h * 2
        out.append(
            (image_id, score, np.array([cx - w * sx, cy - h * sy, cx + w * sx, cy + h * sy]))
        )
    return out


def afw_average_precision(ground_truth, detections, iou_thresh, calibration_iters=0):
    """
    Args:
        ground_truth, detections: see :func:`afw_match` (detections already filtered).
        iou_thresh (float): overlap threshold (strict).
        calibration_iters (int): 0 for none; the toolbox uses 5 (``--nit``).

    Returns:
        dict: ``ap`` in [0, 1], ``precision``, ``recall``, ``scores`` (D,) and ``num_pos``.
    """
    match = afw_match(ground_truth, detections, iou_thresh)
    for _ in range(calibration_iters - 1):
        if match["tp"].sum() == 0:
            break
        detections = _calibrate(ground_truth, detections, match)
        match = afw_match(ground_truth, detections, iou_thresh)
    tp, fp = np.cumsum(match["tp"]), np.cumsum(match["fp"])
    with np.errstate(invalid="ignore", divide="ignore"):
        recall = tp / match["num_pos"]
        precision = tp / (tp + fp)
    ap = voc_ap(recall, precision) if match["num_pos"] > 0 else float("nan")
    return dict(
        ap=ap, precision=precision, recall=recall, scores=match["scores"], num_pos=match["num_pos"]
    )


def plot_pr_curves(path, curves, title):
    """Save the precision/recall curve of each IoU threshold as a PNG."""
    fig, ax = new_plot()
    for iou, c in curves.items():
        ax.plot(
            c["recall"], c["precision"], label="IoU > {:g} (AP {:.2f})".format(iou, 100 * c["ap"])
        )
    save_plot(fig, ax, path, title, "Recall", "Precision", "lower left")


class AFWEvaluator(FaceDetectionEvaluator):
    """
    Evaluate face detections with the AFW / PASCAL faces AP protocol of the face-eval
    toolbox (see the module docstring) on the boxes of the dataset dicts, over the
    processed images. It contains a synchronization, therefore has to be called from
    all ranks.

    After :meth:`evaluate`, ``self.curves`` maps each IoU threshold to its PR curve (see
    :func:`afw_average_precision`).
    """

    def __init__(
        self,
        dataset_name,
        output_dir=None,
        iou_thresholds=(0.3, 0.5),
        min_face_size=30,
        calibrate=False,
        calibration_iters=5,
    ):
        """
        Args:
            dataset_name (str): a registered dataset with box annotations.
            output_dir (str): if given, write ``afw_pr.png`` and ``afw_detections.txt``
                (toolbox format: ``image_id score x1 y1 x2 y2`` per line) there.
            iou_thresholds (tuple[float]): one AP per threshold, reported as "AP<100*t>".
            min_face_size (int): faces with width or height below it are ignored, and
                detections no larger than ``int(sqrt(0.5 * min_face_size ** 2))`` in
                both dimensions are dropped. 0 disables both.
            calibrate (bool): apply the toolbox's iterative box calibration (its
                ``evaluate_optim``), which compensates for a systematic difference
                between the detector's and the annotators' box style.
            calibration_iters (int): matching rounds of the calibration (toolbox: 5).
        """
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._iou_thresholds = tuple(iou_thresholds)
        self._min_face_size = min_face_size
        self._calibration_iters = calibration_iters if calibrate else 0
        self._logger = logging.getLogger(__name__)
        self.curves = None

    def _ground_truth(self, image_ids):
        gt = {}
        for record in DatasetCatalog.get(self._dataset_name):
            image_id = str(record["image_id"])
            if image_id not in image_ids:
                continue
            anns = record.get("annotations", [])
            boxes = np.asarray(
                [BoxMode.convert(list(a["bbox"]), a["bbox_mode"], BoxMode.XYXY_ABS) for a in anns],
                dtype=np.float64,
            ).reshape(-1, 4)
            crowd = np.asarray([a.get("iscrowd", 0) for a in anns], dtype=bool)
            small = ((boxes[:, 2] - boxes[:, 0]) < self._min_face_size) | (
                (boxes[:, 3] - boxes[:, 1]) < self._min_face_size
            )
            gt[image_id] = (boxes, crowd | small)
        return gt

    def evaluate(self):
        """
        Returns:
            dict: {"afw": {"AP30": AP at IoU > 0.3, "AP50": AP at IoU > 0.5}} in percent.
        """
        predictions = gather_predictions(self._predictions)
        if predictions is None:
            return
        ground_truth = self._ground_truth(set(predictions))
        missing = set(predictions) - set(ground_truth)
        if missing:
            self._logger.warning(
                "{} predicted images are not in {}: their detections count as false "
                "positives.".format(len(missing), self._dataset_name)
            )
        detections = []
        for image_id, (boxes, scores) in predictions.items():
            keep = filter_small_detections(boxes, self._min_face_size)
            detections.extend((image_id, s, b) for b, s in zip(boxes[keep], scores[keep]))
        self.curves = OrderedDict(
            (t, afw_average_precision(ground_truth, detections, t, self._calibration_iters))
            for t in self._iou_thresholds
        )
        results = OrderedDict(
            ("AP{}".format(int(round(100 * t))), 100 * c["ap"]) for t, c in self.curves.items()
        )
        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            with PathManager.open(os.path.join(self._output_dir, "afw_detections.txt"), "w") as f:
                for image_id, s, (x0, y0, x1, y1) in detections:
                    f.write(
                        "{} {:.6f} {:.1f} {:.1f} {:.1f} {:.1f}\n".format(
                            image_id, s, x0, y0, x1, y1
                        )
                    )
            plot_pr_curves(
                os.path.join(self._output_dir, "afw_pr.png"), self.curves, self._dataset_name
            )
        self._logger.info(
            "AFW protocol on {} images, {} faces that count.".format(
                len(ground_truth), next(iter(self.curves.values()))["num_pos"] if self.curves else 0
            )
        )
        log_results(__name__, self._dataset_name, "afw", results)
        return {"afw": results}
