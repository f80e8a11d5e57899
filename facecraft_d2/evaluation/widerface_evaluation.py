# Copyright (c) facecraft_d2 contributors.
"""
WIDER FACE evaluation (Yang et al., CVPR 2016): a numpy port of
``wondervictor/WiderFace-Evaluation/evaluation.py``, itself a port of the official
MATLAB ``eval_tools`` (``wider_eval.m``), restricted to the images that were evaluated.

Protocol, as the port:

* Ground truth: ``face_bbx_list`` / ``event_list`` / ``file_list`` of
  ``wider_face_val.mat``; for each setting, ``gt_list`` of ``wider_<setting>_val.mat``
  holds the 1-based indices of the faces that count; the other faces are ignored.
* Scores are min-max normalized over all predictions of the set (``norm_score``, whose
  running min/max start at 1 and 0).
* Per image, predictions sorted by descending score: each one takes the face of
  maximum IoU (over all faces); if IoU >= 0.5 and the face is ignored the prediction is
  removed from the proposals, otherwise the face is recalled (first time only).
  Duplicates remain proposals (false positives).
* IoU convention of the port (``bbox_overlaps``, Fast R-CNN ``+1`` style): boxes
  ``x y w h`` become ``(x, y, x + w, y + h)`` and both areas and intersection add one
  pixel, ``(x2 - x1 + 1) * (y2 - y1 + 1)``. Computed in float64 here (float32 there).
* 1000 thresholds ``t_k = 1 - (k + 1) / 1000``; per threshold the proposals and
  recalled faces with score >= t_k are summed over images; precision = recalled /
  proposals, recall = recalled / #faces that count; AP = VOC continuous AP.
"""

import functools
import logging
import os
import pickle
import subprocess
import sys
from collections import OrderedDict

import numpy as np

from detectron2.data import MetadataCatalog
from detectron2.structures import BoxMode
from detectron2.utils.file_io import PathManager

from ..data.datasets.common import AnnotationFormatError
from .common import FaceDetectionEvaluator, gather_predictions, log_results, voc_ap

__all__ = [
    "WiderFaceEvaluator",
    "load_wider_ground_truth",
    "wider_bbox_overlaps",
    "wider_image_eval",
    "wider_image_pr_info",
    "normalize_scores",
    "evaluate_wider",
    "read_wider_predictions",
    "write_wider_predictions",
]

SETTINGS = ("easy", "medium", "hard")


@functools.lru_cache(maxsize=4)
def load_wider_ground_truth(gt_dir):
    """
    Read the official evaluation ground truth.

    Args:
        gt_dir (str): folder with ``wider_face_val.mat`` and ``wider_{easy,medium,hard}_val.mat``.

    Returns:
        dict: "<event>/<file stem>" -> (boxes (G, 4) float64 XYWH, {setting: bool (G,)
        mask of the faces that count}). Cached: treat as read-only.

    Raises:
        AnnotationFormatError: naming the file and the event/image if a file is not a
            MATLAB file of the official structure (or a face index is out of range).
    """
    face_mat = os.path.join(gt_dir, "wider_face_val.mat")
    setting_files = {s: os.path.join(gt_dir, "wider_{}_val.mat".format(s)) for s in SETTINGS}
    mats = _loadmats({face_mat: ("event_list", "file_list", "face_bbx_list"),
                      **{f: ("gt_list",) for f in setting_files.values()}})
    gt_mat = mats[face_mat]
    setting_lists = {s: mats[f]["gt_list"] for s, f in setting_files.items()}
    gt = {}
    for i in range(len(gt_mat["event_list"])):
        path, rec = face_mat, "event {}".format(i + 1)
        try:
            event = str(gt_mat["event_list"][i][0][0])
            files = gt_mat["file_list"][i][0]
            boxes_list = gt_mat["face_bbx_list"][i][0]
            for j in range(len(files)):
                path, rec = face_mat, "event {} ({}), image {}".format(i + 1, event, j + 1)
                boxes = np.asarray(boxes_list[j][0], dtype=np.float64).reshape(-1, 4)
                if not np.isfinite(boxes).all():
                    raise AnnotationFormatError(path, rec, "non-finite face box")
                keep = {}
                for s in SETTINGS:
                    path = setting_files[s]
                    index = np.asarray(setting_lists[s][i][0][j][0], dtype=np.int64).reshape(-1)
                    if index.size and (index.min() < 1 or index.max() > len(boxes)):
                        raise AnnotationFormatError(
                            path, rec, "face index out of range 1..{}: {}".format(
                                len(boxes), index.tolist())
                        )
                    keep[s] = np.zeros(len(boxes), dtype=bool)
                    keep[s][index - 1] = True
                gt["{}/{}".format(event, str(files[j][0][0]))] = (boxes, keep)
        except (IndexError, KeyError, TypeError, ValueError, OverflowError) as e:
            if isinstance(e, AnnotationFormatError):
                raise
            raise AnnotationFormatError(
                path, rec, "not the official WIDER FACE structure: {}".format(e)
            ) from None
    return gt


# Reads MATLAB files in a child process: scipy's reader can crash the whole process
# (segmentation fault) on a damaged v5 file instead of raising, so a bad ground-truth file
# must not take the evaluation (or a training run evaluating) down with it.
_LOADMAT_CHILD = """
import pickle, sys
from scipy.io import loadmat
out = {}
for path in sys.argv[1:]:
    try:
        out[path] = (True, loadmat(path))
    except Exception as e:  # scipy raises many types on damaged files (MatReadError, ...)
        out[path] = (False, str(e))
pickle.dump(out, sys.stdout.buffer, protocol=pickle.HIGHEST_PROTOCOL)
"""


def _read_mats(paths):
    """{path: (True, dict) or (False, error)} from scipy's ``loadmat`` in one child process;
    None if the child died (it crashed on one of the files)."""
    r = subprocess.run([sys.executable, "-c", _LOADMAT_CHILD, *paths], capture_output=True)
    if r.returncode != 0:
        return None
    return pickle.loads(r.stdout)  # written by the child above, not read from the files


def _loadmats(keys_by_path):
    """
    scipy's ``loadmat`` of several files (in a child process, see above), each checked for
    its keys.

    Args:
        keys_by_path (dict): path -> the keys the file must hold.
    Returns:
        dict: path -> the file's variables.
    Raises:
        FileNotFoundError: a file is missing.
        AnnotationFormatError: a file is damaged (scipy fails or crashes on it) or misses a key.
    """
    for path in keys_by_path:
        if not os.path.isfile(path):
            raise FileNotFoundError("WIDER FACE ground truth not found: expected {}".format(path))
    loaded = _read_mats(list(keys_by_path))
    if loaded is None:  # find the file the reader crashed on
        loaded = {}
        for path in keys_by_path:
            one = _read_mats([path])
            loaded[path] = one[path] if one else (False, "the MATLAB reader crashed on it")
    mats = {}
    for path, keys in keys_by_path.items():
        ok, mat = loaded[path]
        if not ok:
            raise AnnotationFormatError(path, "file header",
                                        "not a readable MATLAB file: {}".format(mat))
        missing = [k for k in keys if k not in mat]
        if missing:
            raise AnnotationFormatError(path, "key {}".format(missing[0]), "missing")
        mats[path] = mat
    return mats


def wider_bbox_overlaps(boxes, query_boxes):
    """
    IoU with the ``+1`` pixel convention of the port's ``bbox_overlaps``.

    Args:
        boxes (ndarray): shape (N, 4), XYXY.
        query_boxes (ndarray): shape (K, 4), XYXY.

    Returns:
        ndarray: shape (N, K).
    """
    b = np.asarray(boxes, dtype=np.float64)[:, None, :]
    q = np.asarray(query_boxes, dtype=np.float64)[None, :, :]
    iw = np.minimum(b[..., 2], q[..., 2]) - np.maximum(b[..., 0], q[..., 0]) + 1
    ih = np.minimum(b[..., 3], q[..., 3]) - np.maximum(b[..., 1], q[..., 1]) + 1
    inter = np.where((iw > 0) & (ih > 0), iw * ih, 0.0)
    area_b = (b[..., 2] - b[..., 0] + 1) * (b[..., 3] - b[..., 1] + 1)
    area_q = (q[..., 2] - q[..., 0] + 1) * (q[..., 3] - q[..., 1] + 1)
    return np.where(inter > 0, inter / (area_b + area_q - inter), 0.0)


def wider_image_eval(pred, gt, keep, iou_thresh=0.5):
    """
    Match one image's predictions to its faces (the port's ``image_eval``).

    Args:
        pred (ndarray): shape (N, 5) ``x y w h score``, sorted by descending score.
        gt (ndarray): shape (G, 4) ``x y w h``.
        keep (ndarray): shape (G,) bool, True for the faces that count.
        iou_thresh (float): minimum IoU (inclusive) of a match.

    Returns:
        tuple: ``pred_recall`` (N,) number of counted faces recalled by predictions
        0..i, and ``proposal_list`` (N,) 1 for a proposal, -1 for a prediction on an
        ignored face.
    """
    pred = np.asarray(pred, dtype=np.float64).reshape(-1, 5)
    gt = np.asarray(gt, dtype=np.float64).reshape(-1, 4)
    keep = np.asarray(keep, dtype=bool)
    pred_xyxy = np.concatenate([pred[:, :2], pred[:, :2] + pred[:, 2:4]], 1)
    gt_xyxy = np.concatenate([gt[:, :2], gt[:, :2] + gt[:, 2:4]], 1)
    overlaps = wider_bbox_overlaps(pred_xyxy, gt_xyxy)
    best = overlaps.argmax(1)
    hit = overlaps[np.arange(len(pred)), best] >= iou_thresh
    proposal_list = np.where(hit & ~keep[best], -1, 1)
    # a counted face is recalled by the first prediction that hits it
    recalled = hit & keep[best]
    _, first = np.unique(best[recalled], return_index=True)
    new_recall = np.zeros(len(pred), dtype=np.int64)
    new_recall[np.nonzero(recalled)[0][first]] = 1
    return np.cumsum(new_recall), proposal_list


def wider_image_pr_info(thresh_num, scores, proposal_list, pred_recall):
    """
    Per-threshold (#proposals, #recalled) of one image (the port's ``img_pr_info``).

    Args:
        thresh_num (int): number of thresholds (1000).
        scores (ndarray): shape (N,) normalized scores, sorted descending.
        proposal_list, pred_recall (ndarray): shape (N,), from :func:`wider_image_eval`.

    Returns:
        ndarray: shape (thresh_num, 2).
    """
    thresholds = 1 - (np.arange(thresh_num) + 1) / thresh_num
    # index of the last prediction with score >= threshold (scores sorted descending)
    count = np.searchsorted(-np.asarray(scores, dtype=np.float64), -thresholds, side="right")
    cum_proposals = np.cumsum(np.asarray(proposal_list) == 1)
    pr_info = np.zeros((thresh_num, 2))
    valid = count > 0
    pr_info[valid, 0] = cum_proposals[count[valid] - 1]
    pr_info[valid, 1] = np.asarray(pred_recall)[count[valid] - 1]
    return pr_info


def normalize_scores(predictions):
    """
    Min-max normalize the scores over all images, as the port's ``norm_score`` (its
    running min starts at 1 and max at 0). When all scores are equal (the port would
    divide by zero and produce NaN) every normalized score is 1.

    Args:
        predictions (dict): name -> ndarray (N, 5) ``x y w h score``.

    Returns:
        dict: name -> a copy with the normalized score column.
    """
    scores = [p[:, 4] for p in predictions.values() if len(p)]
    lo = min([1.0] + [float(s.min()) for s in scores])
    hi = max([0.0] + [float(s.max()) for s in scores])
    out = {}
    for name, p in predictions.items():
        p = np.array(p, dtype=np.float64).reshape(-1, 5)
        p[:, 4] = (p[:, 4] - lo) / (hi - lo) if hi > lo else 1.0
        out[name] = p
    return out


def evaluate_wider(predictions, ground_truth, iou_thresh=0.5, thresh_num=1000):
    """
    WIDER FACE AP of each setting over the images of ``predictions``.

    Args:
        predictions (dict): name -> ndarray (N, 5) ``x y w h score`` (raw scores).
        ground_truth (dict): from :func:`load_wider_ground_truth`; must hold every name
            of ``predictions``.
        iou_thresh (float): 0.5 in the benchmark.
        thresh_num (int): 1000 in the benchmark.

    Returns:
        dict: setting -> {"ap": float in [0, 1], "precision": (thresh_num,),
        "recall": (thresh_num,), "num_faces": int}.
    """
    predictions = normalize_scores(predictions)
    for name, p in predictions.items():
        predictions[name] = p[np.argsort(-p[:, 4], kind="stable")]
    results = {}
    for setting in SETTINGS:
        count_face = 0
        pr_curve = np.zeros((thresh_num, 2))
        for name, pred in predictions.items():
            boxes, keep = ground_truth[name]
            count_face += int(keep[setting].sum())
            if len(boxes) == 0 or len(pred) == 0:
                continue
            pred_recall, proposal_list = wider_image_eval(pred, boxes, keep[setting], iou_thresh)
            pr_curve += wider_image_pr_info(thresh_num, pred[:, 4], proposal_list, pred_recall)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = pr_curve[:, 1] / pr_curve[:, 0]
            recall = pr_curve[:, 1] / count_face
        ap = voc_ap(recall, precision) if count_face > 0 else float("nan")
        results[setting] = dict(ap=ap, precision=precision, recall=recall, num_faces=count_face)
    return results


def write_wider_predictions(output_dir, predictions):
    """
    Write ``<output_dir>/<event>/<stem>.txt``: stem, count, ``x y w h score`` lines
    sorted by descending score (the layout the official tools read).
    """
    for name, pred in predictions.items():
        event, stem = name.split("/", 1)
        PathManager.mkdirs(os.path.join(output_dir, event))
        pred = pred[np.argsort(-pred[:, 4], kind="stable")]
        with PathManager.open(os.path.join(output_dir, event, stem + ".txt"), "w") as f:
            f.write("{}\n{}\n".format(stem, len(pred)))
            for x, y, w, h, s in pred:
                f.write("{:.3f} {:.3f} {:.3f} {:.3f} {:.6f}\n".format(x, y, w, h, s))


def read_wider_predictions(output_dir):
    """
    Read what :func:`write_wider_predictions` (or the official tools' layout) holds.

    Returns:
        dict: "<event>/<file stem>" -> ndarray (N, 5) ``x y w h score``.
    """
    out = {}
    for event in sorted(PathManager.ls(output_dir)):
        folder = os.path.join(output_dir, event)
        if not PathManager.isdir(folder):
            continue
        for fname in sorted(PathManager.ls(folder)):
            if not fname.endswith(".txt"):
                continue
            with PathManager.open(os.path.join(folder, fname)) as f:
                lines = f.read().splitlines()
            rows = [[float(v) for v in line.split()] for line in lines[2:2 + int(lines[1])]]
            out[event + "/" + fname[:-len(".txt")]] = np.array(rows, dtype=np.float64).reshape(-1, 5)
    return out


class WiderFaceEvaluator(FaceDetectionEvaluator):
    """
    Evaluate face detections with the WIDER FACE protocol (easy / medium / hard AP, see
    the module docstring) over the images that were processed. It contains a
    synchronization, therefore has to be called from all ranks.

    The ground truth comes from the official ``.mat`` files in the dataset metadata's
    ``gt_dir``; processed images are matched to it by their ``image_id``
    ("<event>/<file stem>"). After :meth:`evaluate`, ``self.curves`` maps each setting to
    its PR curve (see :func:`evaluate_wider`).
    """

    def __init__(self, dataset_name, output_dir=None, gt_dir=None):
        """
        Args:
            dataset_name (str): a registered WIDER FACE val dataset.
            output_dir (str): if given, write the predictions in the official per-image
                txt layout under ``<output_dir>/widerface_predictions/``.
            gt_dir (str): overrides ``MetadataCatalog.get(dataset_name).gt_dir``.
        """
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._gt_dir = gt_dir or MetadataCatalog.get(dataset_name).gt_dir
        self._logger = logging.getLogger(__name__)
        self.curves = None

    def _convert(self, boxes, scores):
        """One image's detections as an (N, 5) array ``x y w h score``."""
        xywh = BoxMode.convert(boxes, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
        return np.concatenate([xywh, scores[:, None]], 1)

    def evaluate(self):
        """
        Returns:
            dict: {"widerface": {"easy", "medium", "hard"}}, AP in percent (NaN for a
            setting without any face in the evaluated images).
        """
        predictions = gather_predictions(self._predictions)
        if predictions is None:
            return
        ground_truth = load_wider_ground_truth(self._gt_dir)
        unknown = [name for name in predictions if name not in ground_truth]
        if unknown:
            self._logger.warning(
                "{} images are not in the WIDER ground truth (e.g. {}); ignored.".format(
                    len(unknown), unknown[0]
                )
            )
        predictions = {k: v for k, v in predictions.items() if k in ground_truth}
        if not predictions:
            self._logger.warning("[WiderFaceEvaluator] Did not receive valid predictions.")
            return {}
        if self._output_dir:
            write_wider_predictions(
                os.path.join(self._output_dir, "widerface_predictions"), predictions
            )
        self.curves = evaluate_wider(predictions, ground_truth)
        results = OrderedDict((s, 100 * self.curves[s]["ap"]) for s in SETTINGS)
        self._logger.info("WIDER FACE evaluated on {} images.".format(len(predictions)))
        log_results(__name__, self._dataset_name, "widerface", results)
        return {"widerface": results}
