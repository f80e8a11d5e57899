# Copyright (c) facecraft_d2 contributors.
"""
FDDB evaluation (Jain & Learned-Miller, UMass TR UM-CS-2010-009), a numpy port of the
official ``evaluate`` C++ tool (``evaluate.cpp``, ``Matching.cpp``, ``Results.cpp``).

Protocol, as the official tool:

* Overlap = |A ∩ B| / |A ∪ B| of the ground-truth ellipse and the detected rectangle,
  counted on pixel masks clipped to the image. As ``cvEllipse``/``cvRectangle`` draw them:
  the ellipse centre is rounded and its radii truncated to integers, its major axis
  points along (cos t, sin t) in image coordinates (y down; checked on FDDB images);
  a pixel belongs to it when its integer coordinate lies in the ellipse with radii
  int(r) + 0.5 (the half pixel stands for the boundary pixels that OpenCV's polygon fill
  adds: the masks differ from ``cv2.ellipse``'s by < 1% of their pixels). The rectangle
  covers the pixels round(x) .. round(x + w) and round(y) .. round(y + h), both ends
  included, exactly as ``cvRectangle``.
* For every unique detection score s of an image, the detections with score >= s are
  valid; annotations and valid detections with no overlap are dropped and a one-to-one
  matching maximizing the total overlap is found (Hungarian; here
  ``scipy.optimize.linear_sum_assignment(maximize=True)``).
* Discrete score: a matched pair is a TP iff overlap > 0.5, FP = #valid detections -
  #TP. Continuous score: TP = sum of the overlaps of all matched pairs.
* Per-image results are merged by threshold (``Results::merge``): at threshold s every
  image contributes its counts for the detections with score >= s.

Efficiency: each ellipse is rasterized once, in its own bounding box, and the
intersection with every rectangle is read from a summed-area table of that mask; the
overlap matrix is computed once per image and the assignment is only re-solved at
thresholds where a detection that overlaps some face becomes valid. No cap is put on
the number of detections per image.
"""

import logging
import os
from collections import OrderedDict
import numpy as np
from scipy.optimize import linear_sum_assignment

from detectron2.data import DatasetCatalog
from detectron2.structures import BoxMode
from detectron2.utils.file_io import PathManager

from .common import FaceDetectionEvaluator, gather_predictions, log_results, new_plot, save_plot

__all__ = [
    "FDDBEvaluator",
    "rasterize_ellipse",
    "fddb_overlaps",
    "fddb_image_roc",
    "merge_fddb_rocs",
    "tpr_at_fp",
]

# score threshold of an image without detections (std::numeric_limits<double>::max())
NO_DETECTION_THRESHOLD = np.finfo(np.float64).max


def rasterize_ellipse(ellipse, image_size):
    """
    Rasterize a filled FDDB ellipse inside its bounding box, clipped to the image.

    Args:
        ellipse (sequence): (major_radius, minor_radius, angle_rad, center_x, center_y).
        image_size (tuple[int, int]): (height, width) of the image.

    Returns:
        tuple: ``mask`` (bool ndarray of shape (h, w), possibly empty) and the image
        coordinates ``(x0, y0)`` of its top-left pixel.
    """
    ra, rb, angle, cx, cy = (float(v) for v in ellipse[:5])
    height, width = image_size
    # cvSize((int) ra, (int) rb); the filled polygon of cvEllipse also covers the pixels
    # its boundary passes through, which half a pixel of margin reproduces closely
    a, b = max(int(ra), 0) + 0.5, max(int(rb), 0) + 0.5
    cx, cy = np.rint(cx), np.rint(cy)  # cvPointFrom32f rounds
    cos, sin = np.cos(angle), np.sin(angle)
    half_w = np.sqrt((a * cos) ** 2 + (b * sin) ** 2)
    half_h = np.sqrt((a * sin) ** 2 + (b * cos) ** 2)
    x0, x1 = max(int(np.ceil(cx - half_w)), 0), min(int(np.floor(cx + half_w)), width - 1)
    y0, y1 = max(int(np.ceil(cy - half_h)), 0), min(int(np.floor(cy + half_h)), height - 1)
    if x1 < x0 or y1 < y0:
        return np.zeros((0, 0), dtype=bool), (0, 0)
    dx = np.arange(x0, x1 + 1, dtype=np.float64)[None, :] - cx
    dy = np.arange(y0, y1 + 1, dtype=np.float64)[:, None] - cy
    u = dx * cos + dy * sin  # along the major axis
    v = -dx * sin + dy * cos  # along the minor axis
    return (u / a) ** 2 + (v / b) ** 2 <= 1.0, (x0, y0)


def _rectangle_pixels(boxes, image_size):
    """
    Inclusive, image-clipped pixel ranges of XYWH rectangles as ``cvRectangle`` fills them.

    Returns:
        ndarray: shape (D, 4) int64 (x0, y0, x1, y1); empty when x1 < x0 or y1 < y0.
    """
    height, width = image_size
    x0 = np.rint(boxes[:, 0])
    y0 = np.rint(boxes[:, 1])
    x1 = np.rint(boxes[:, 0] + boxes[:, 2])
    y1 = np.rint(boxes[:, 1] + boxes[:, 3])
    out = np.stack(
        [x0.clip(0, None), y0.clip(0, None), x1.clip(None, width - 1), y1.clip(None, height - 1)], 1
    )
    return out.astype(np.int64)


def fddb_overlaps(ellipses, boxes, image_size):
    """
    Pixel-mask IoU of every ground-truth ellipse with every detected rectangle.

    Args:
        ellipses (ndarray): shape (G, 5), (major_r, minor_r, angle_rad, cx, cy).
        boxes (ndarray): shape (D, 4), detections as XYWH (left, top, width, height).
        image_size (tuple[int, int]): (height, width); both regions are clipped to it.

    Returns:
        ndarray: shape (G, D) float64 overlaps in [0, 1].
    """
    ellipses = np.asarray(ellipses, dtype=np.float64).reshape(-1, 5)
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    overlaps = np.zeros((len(ellipses), len(boxes)), dtype=np.float64)
    if overlaps.size == 0:
        return overlaps
    rect = _rectangle_pixels(boxes, image_size)
    rect_area = (rect[:, 2] - rect[:, 0] + 1).clip(0) * (rect[:, 3] - rect[:, 1] + 1).clip(0)
    for g, ellipse in enumerate(ellipses):
        mask, (ex, ey) = rasterize_ellipse(ellipse, image_size)
        ell_area = int(mask.sum())
        inter = np.zeros(len(boxes), dtype=np.int64)
        if ell_area > 0:
            # summed-area table; sat[i, j] = mask[:i, :j].sum()
            sat = np.zeros((mask.shape[0] + 1, mask.shape[1] + 1), dtype=np.int64)
            sat[1:, 1:] = mask.cumsum(0).cumsum(1)
            ix0 = np.maximum(rect[:, 0], ex) - ex
            iy0 = np.maximum(rect[:, 1], ey) - ey
            ix1 = np.minimum(rect[:, 2], ex + mask.shape[1] - 1) - ex + 1
            iy1 = np.minimum(rect[:, 3], ey + mask.shape[0] - 1) - ey + 1
            ok = (ix1 > ix0) & (iy1 > iy0)
            ix0, iy0, ix1, iy1 = ix0[ok], iy0[ok], ix1[ok], iy1[ok]
            inter[ok] = sat[iy1, ix1] - sat[iy0, ix1] - sat[iy1, ix0] + sat[iy0, ix0]
        union = ell_area + rect_area - inter
        overlaps[g] = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    return overlaps


def _match(overlaps):
    """One-to-one matching maximizing the total overlap; returns the matched overlaps."""
    cols = overlaps.sum(0) != 0
    rows = overlaps.sum(1) != 0
    sub = overlaps[rows][:, cols]
    if sub.size == 0:
        return np.zeros(0)
    r, c = linear_sum_assignment(sub, maximize=True)
    matched = sub[r, c]
    return matched[matched > 0]


def fddb_image_roc(overlaps, scores):
    """
    Per-image counts at every unique detection score (``evaluate.cpp`` main loop).

    Args:
        overlaps (ndarray): shape (G, D), see :func:`fddb_overlaps`.
        scores (ndarray): shape (D,), detection scores.

    Returns:
        dict: ``thresholds`` (T,) ascending unique scores (one entry
        ``NO_DETECTION_THRESHOLD`` if D == 0), and for each threshold ``tp_disc`` (T,),
        ``tp_cont`` (T,), ``fp`` (T,), plus ``num_faces`` = G.
    """
    overlaps = np.asarray(overlaps, dtype=np.float64)
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    num_faces = overlaps.shape[0]
    if len(scores) == 0:
        zero = np.zeros(1)
        return dict(
            thresholds=np.array([NO_DETECTION_THRESHOLD]),
            tp_disc=zero,
            tp_cont=zero.copy(),
            fp=zero.copy(),
            num_faces=num_faces,
        )
    thresholds = np.unique(scores)
    tp_disc = np.zeros(len(thresholds))
    tp_cont = np.zeros(len(thresholds))
    fp = np.zeros(len(thresholds))
    touches_face = overlaps.sum(0) != 0 if num_faces else np.zeros(len(scores), bool)
    last_key, last = None, (0, 0.0)
    # thresholds high -> low: the valid set only grows, re-solve only when it changes
    for k in range(len(thresholds) - 1, -1, -1):
        valid = scores >= thresholds[k]
        key = int((valid & touches_face).sum())
        if key != last_key:
            matched = _match(overlaps[:, valid & touches_face])
            last, last_key = (int((matched > 0.5).sum()), float(matched.sum())), key
        tp_disc[k], tp_cont[k] = last
        fp[k] = valid.sum() - last[0]
    return dict(thresholds=thresholds, tp_disc=tp_disc, tp_cont=tp_cont, fp=fp, num_faces=num_faces)


def merge_fddb_rocs(image_rocs):
    """
    Merge per-image results by threshold, as ``Results::merge`` does.

    At every threshold s of the union of all images' thresholds, each image contributes
    its counts at its smallest threshold >= s (i.e. with the detections of score >= s
    valid), or zero counts when it has none.

    Args:
        image_rocs (list[dict]): outputs of :func:`fddb_image_roc`.

    Returns:
        dict: ``thresholds`` (T,) ascending, ``tp_disc``, ``tp_cont``, ``fp`` (T,),
        ``tpr_disc`` = tp_disc / N and ``tpr_cont`` = tp_cont / N (0 if N == 0), and
        ``num_faces`` N. Rows are in the order of the official ROC files (FP descending).
    """
    num_faces = int(sum(r["num_faces"] for r in image_rocs))
    if not image_rocs:
        empty = np.zeros(0)
        return dict(
            thresholds=empty,
            tp_disc=empty,
            tp_cont=empty,
            fp=empty,
            tpr_disc=empty,
            tpr_cont=empty,
            num_faces=0,
        )
    # counts(s) = sum over (image, k) with thr_k >= s of delta_k, delta_k = c_k - c_{k+1}
    thr = np.concatenate([r["thresholds"] for r in image_rocs])
    deltas = []
    for r in image_rocs:
        c = np.stack([r["tp_disc"], r["tp_cont"], r["fp"]], 1)
        deltas.append(c - np.concatenate([c[1:], np.zeros((1, 3))]))
    deltas = np.concatenate(deltas)
    thresholds, inverse = np.unique(thr, return_inverse=True)
    per_thr = np.zeros((len(thresholds), 3))
    np.add.at(per_thr, inverse.reshape(-1), deltas)
    counts = np.cumsum(per_thr[::-1], axis=0)[::-1]
    tp_disc, tp_cont, fp = (np.round(counts[:, 0]), counts[:, 1], np.round(counts[:, 2]))
    denom = max(num_faces, 1)
    return dict(
        thresholds=thresholds,
        tp_disc=tp_disc,
        tp_cont=tp_cont,
        fp=fp,
        tpr_disc=tp_disc / denom,
        tpr_cont=tp_cont / denom,
        num_faces=num_faces,
    )


def tpr_at_fp(tpr, fp, max_fp):
    """
    TPR at a number of false positives, with the face-eval rule (``plot_AP_fddb.py``):
    both columns of the ROC are sorted descending *independently* and the TPR of the
    first row with ``FP < max_fp`` (strict) is read. For a monotone ROC this is the TPR
    of the point with the most false positives below ``max_fp``, i.e. the largest TPR
    with FP < max_fp.

    Args:
        tpr (ndarray): shape (T,), TPR of each ROC point.
        fp (ndarray): shape (T,), false positives of each ROC point.
        max_fp (float): the FP budget.

    Returns:
        float: the TPR, 0 when no point has FP < max_fp.
    """
    tpr = np.sort(np.asarray(tpr, dtype=np.float64))[::-1]
    fp = np.sort(np.asarray(fp, dtype=np.float64))[::-1]
    below = np.nonzero(fp < max_fp)[0]
    return float(tpr[below[0]]) if len(below) else 0.0


def write_roc_files(prefix, curve):
    """
    Write ``<prefix>DiscROC.txt`` ("TPR FP threshold" lines) and ``<prefix>ContROC.txt``
    ("TPR FP" lines) like ``Results::saveROC`` (C++ default stream formatting, %g).
    """
    with PathManager.open(prefix + "DiscROC.txt", "w") as f:
        for tpr, fp, thr in zip(curve["tpr_disc"], curve["fp"], curve["thresholds"]):
            f.write("{:g} {:d} {:g}\n".format(tpr, int(fp), thr))
    with PathManager.open(prefix + "ContROC.txt", "w") as f:
        for tpr, fp in zip(curve["tpr_cont"], curve["fp"]):
            f.write("{:g} {:d}\n".format(tpr, int(fp)))


def write_fddb_files(output_dir, records):
    """
    Write the inputs of the official tool for the evaluated images, in dataset order:
    ``fddb_dets.txt`` (``-d``, ``-f 0``: name, count, ``left top width height score``),
    ``fddb_ellipseList.txt`` (``-a``) and ``fddb_imList.txt`` (``-l``).

    Args:
        records (list[tuple]): (name, ellipses (G, 5), boxes XYWH (D, 4), scores (D,)).
    """
    dets, annots, names = [], [], []
    for name, ellipses, boxes, scores in records:
        names.append(name + "\n")
        annots.append("{}\n{}\n".format(name, len(ellipses)))
        annots.extend("{:f} {:f} {:f} {:f} {:f} 1\n".format(*e) for e in ellipses)
        dets.append("{}\n{}\n".format(name, len(boxes)))
        dets.extend(
            "{:.3f} {:.3f} {:.3f} {:.3f} {:.6f}\n".format(x, y, w, h, s)
            for (x, y, w, h), s in zip(boxes, scores)
        )
    for file_name, lines in [
        ("fddb_dets.txt", dets),
        ("fddb_ellipseList.txt", annots),
        ("fddb_imList.txt", names),
    ]:
        with PathManager.open(os.path.join(output_dir, file_name), "w") as f:
            f.write("".join(lines))


def plot_fddb_roc(path, curve, title, fp_marks=(1000,)):
    """
    Save the discrete and continuous ROC curves as a PNG: FP in [0, 2000] as the
    face-eval plots, or [0, 2 * max(fp_marks)] when that is larger, with a dotted
    vertical line at each of ``fp_marks``.
    """
    fig, ax = new_plot()
    ax.plot(curve["fp"], curve["tpr_disc"], label="discrete")
    ax.plot(curve["fp"], curve["tpr_cont"], label="continuous")
    for fp in fp_marks:
        ax.axvline(fp, color="gray", linestyle=":", linewidth=1)
    save_plot(fig, ax, path, title, "False positives", "True positive rate", "lower right",
              xlim=(0, max(2000, 2 * max(fp_marks))))


def _fddb_image_name(record):
    """FDDB image name ("2002/08/11/big/img_591") of a dataset dict."""
    path = record["file_name"].replace(os.sep, "/")
    if "originalPics/" in path:
        return os.path.splitext(path.split("originalPics/", 1)[1])[0]
    name = str(record["image_id"])
    return name[:-4] if name.endswith(".jpg") else name


def _ellipses_of(record):
    """
    Ground-truth ellipses (G, 5) of a dataset dict: the ``ellipse`` field of each
    annotation, or, when absent, the axis-aligned ellipse inscribed in its box.
    """
    ellipses = []
    for ann in record.get("annotations", []):
        if "ellipse" in ann:
            ellipses.append([float(v) for v in ann["ellipse"][:5]])
        else:
            x0, y0, x1, y1 = BoxMode.convert(list(ann["bbox"]), ann["bbox_mode"], BoxMode.XYXY_ABS)
            w, h = x1 - x0, y1 - y0
            # major axis along y (angle pi/2) when the box is taller than wide
            major, minor, angle = (h, w, np.pi / 2) if h >= w else (w, h, 0.0)
            ellipses.append([major / 2, minor / 2, angle, (x0 + x1) / 2, (y0 + y1) / 2])
    return np.asarray(ellipses, dtype=np.float64).reshape(-1, 5)


class FDDBEvaluator(FaceDetectionEvaluator):
    """
    Evaluate face detections with the official FDDB protocol (discrete and continuous
    ROC, see the module docstring). It contains a synchronization, therefore has to be
    called from all ranks.

    The reported "TPR@1000FP" follows :func:`tpr_at_fp`. When only n of the
    ``num_total_images`` FDDB images are evaluated (e.g. one fold, or the images that
    are available), "TPR@scaledFP" is the TPR at ``1000 * n / num_total_images`` false
    positives, i.e. the same false-positive rate per image.

    After :meth:`evaluate`, ``self.curves`` holds the merged ROC (see
    :func:`merge_fddb_rocs`) for callers that need the raw curve.
    """

    def __init__(self, dataset_name, output_dir=None, num_total_images=2845, score_threshold=None):
        """
        Args:
            dataset_name (str): a registered dataset whose annotations carry ``ellipse``
                = [major_r, minor_r, angle_rad, cx, cy] (FDDB convention).
            output_dir (str): if given, write the official detection/annotation/list
                files, ``DiscROC.txt``, ``ContROC.txt`` and ``fddb_roc.png`` there.
            num_total_images (int): size of the full benchmark (FDDB: 2845).
            score_threshold (float): an operating point (e.g. a detector's default score
                threshold) at which the false positives per image and the TPR are reported
                too ("FP_per_image@threshold", "TPR@threshold"); None: none.
        """
        self._dataset_name = dataset_name
        self._output_dir = output_dir
        self._num_total_images = num_total_images
        self._score_threshold = score_threshold
        self._logger = logging.getLogger(__name__)
        self.curves = None

    def evaluate(self):
        """
        Returns:
            dict: {"fddb": {"TPR@1000FP", "TPR@scaledFP", "contTPR@1000FP" (percent),
            "scaled_FP", "num_images", "num_faces" (counts)}}.
        """
        predictions = gather_predictions(self._predictions)
        if predictions is None:
            return
        records, image_rocs = [], []
        for record in DatasetCatalog.get(self._dataset_name):
            image_id = str(record["image_id"])
            if image_id not in predictions:
                continue
            boxes, scores = predictions.pop(image_id)
            xywh = BoxMode.convert(boxes, BoxMode.XYXY_ABS, BoxMode.XYWH_ABS)
            ellipses = _ellipses_of(record)
            image_size = (int(record["height"]), int(record["width"]))
            image_rocs.append(fddb_image_roc(fddb_overlaps(ellipses, xywh, image_size), scores))
            records.append((_fddb_image_name(record), ellipses, xywh, scores))
        if predictions:
            self._logger.warning(
                "{} predicted images are not in {}; ignored.".format(
                    len(predictions), self._dataset_name
                )
            )
        if not records:
            self._logger.warning("[FDDBEvaluator] Did not receive valid predictions.")
            return {}

        curve = merge_fddb_rocs(image_rocs)
        self.curves = curve
        num_images = len(records)
        scaled_fp = 1000.0 * num_images / self._num_total_images
        results = OrderedDict(
            [
                ("TPR@1000FP", 100 * tpr_at_fp(curve["tpr_disc"], curve["fp"], 1000)),
                ("TPR@scaledFP", 100 * tpr_at_fp(curve["tpr_disc"], curve["fp"], scaled_fp)),
                ("contTPR@1000FP", 100 * tpr_at_fp(curve["tpr_cont"], curve["fp"], 1000)),
                ("scaled_FP", scaled_fp),
                ("num_images", float(num_images)),
                ("num_faces", float(curve["num_faces"])),
            ]
        )
        if self._score_threshold is not None:
            k = int(np.searchsorted(curve["thresholds"], self._score_threshold, side="left"))
            inside = k < len(curve["thresholds"])  # else: no detection scores that high
            results["threshold"] = float(self._score_threshold)
            results["FP_per_image@threshold"] = float(curve["fp"][k]) / max(num_images, 1) if inside else 0.0
            results["TPR@threshold"] = 100 * float(curve["tpr_disc"][k]) if inside else 0.0
        if self._output_dir:
            PathManager.mkdirs(self._output_dir)
            write_fddb_files(self._output_dir, records)
            write_roc_files(os.path.join(self._output_dir, ""), curve)
            plot_fddb_roc(
                os.path.join(self._output_dir, "fddb_roc.png"),
                curve,
                "{} ({} images)".format(self._dataset_name, num_images),
                (1000, scaled_fp),
            )
        log_results(__name__, self._dataset_name, "fddb", results)
        return {"fddb": results}
