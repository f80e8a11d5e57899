# Copyright (c) facecraft_d2 contributors.
"""
Latency and throughput measurement of face detectors on CPU, for ``tools/benchmark.py``.

A detector is timed as a callable ``detect(image) -> anything`` on (H, W, 3) uint8 BGR
numpy images, i.e. from the decoded image to its detections, whatever the detector does in
between (conversion to tensors, resizing, pyramid, NMS). :class:`ModelDetectFn` turns a
Detectron2 model into such a callable the way ``DefaultPredictor`` does; a peer's
``detect_bgr`` already is one.

Single-core timing (:func:`pin_to_one_core`) pins the process to one CPU and sets one thread
in torch, OpenCV and (through ``OMP_NUM_THREADS``, read when a library loads) OpenMP; ONNX
Runtime sessions take their thread count when they are created.
"""
import logging
import os
import time
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor

import cv2
import numpy as np
import torch

from detectron2.data import DatasetCatalog
from detectron2.data import transforms as T

__all__ = [
    "ModelDetectFn",
    "VGA",
    "latency_stats",
    "pin_to_one_core",
    "sample_vga_images",
    "time_detectors",
    "throughput",
    "to_vga",
]

logger = logging.getLogger(__name__)

VGA = (640, 480)  # (width, height)


def pin_to_one_core(core=None):
    """
    Run this process on one CPU core with one thread in torch and OpenCV.

    Args:
        core (int): the core; default the last one this process may run on.
    Returns:
        tuple: (the core, the previous affinity set), to restore it with
        ``os.sched_setaffinity(0, previous)``.
    """
    previous = os.sched_getaffinity(0)
    core = max(previous) if core is None else int(core)
    os.sched_setaffinity(0, {core})
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    return core, previous


def to_vga(image, size=VGA):
    """
    Scale an image to cover ``size`` (keeping its aspect ratio) and crop the centre.

    Args:
        image (ndarray): (H, W, 3) uint8.
        size (tuple): (width, height) of the result.
    Returns:
        ndarray: (height, width, 3) uint8, C-contiguous.
    """
    w, h = size
    scale = max(w / image.shape[1], h / image.shape[0])
    nw, nh = max(w, round(image.shape[1] * scale)), max(h, round(image.shape[0] * scale))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(image, (nw, nh), interpolation=interp)
    x0, y0 = (nw - w) // 2, (nh - h) // 2
    return np.ascontiguousarray(resized[y0:y0 + h, x0:x0 + w])


def sample_vga_images(dataset_names, num_images, fallback, size=VGA):
    """
    Real photos for timing: ``num_images`` spread evenly over the registered datasets (the
    same share from each), made VGA with :func:`to_vga`.

    Args:
        dataset_names (sequence[str]): registered datasets (e.g. FDDB folds, WIDER val); those
            whose files are absent are skipped.
        num_images (int): how many images in all.
        fallback (str): image file used when no dataset image is available (e.g. matplotlib's
            grace_hopper.jpg).
    Returns:
        list[tuple]: (source file, (height, width, 3) uint8 BGR image).
    """
    files = []
    for name in dataset_names:
        try:
            dicts = DatasetCatalog.get(name)
        except (FileNotFoundError, OSError, KeyError) as e:
            logger.warning("timing images: %s is not available (%s)", name, e)
            continue
        present = [d["file_name"] for d in dicts if os.path.isfile(d["file_name"])]
        files.append(present)
    files = [f for f in files if f]
    chosen = []
    for i, present in enumerate(files):
        share = num_images // len(files) + (1 if i < num_images % len(files) else 0)
        idx = np.linspace(0, len(present) - 1, num=min(share, len(present))).round().astype(int)
        chosen += [present[j] for j in idx]
    if not chosen:
        logger.warning("timing images: no dataset image found, using %s", fallback)
        chosen = [fallback]
    return [(f, to_vga(cv2.imread(f, cv2.IMREAD_COLOR), size)) for f in chosen]


class ModelDetectFn:
    """
    A Detectron2 model as ``detect(image) -> Instances`` on BGR numpy images, with the test
    resize of its config (``INPUT.MIN_SIZE_TEST``, none when 0) like ``DefaultPredictor``.
    """

    def __init__(self, model, cfg):
        """
        Args:
            model (nn.Module): a Detectron2 model in eval mode.
            cfg (CfgNode): its config (``INPUT.FORMAT``, ``INPUT.MIN_SIZE_TEST``, ...).
        """
        self.model = model
        self.input_format = cfg.INPUT.FORMAT
        size = cfg.INPUT.MIN_SIZE_TEST
        self.aug = T.ResizeShortestEdge([size, size], cfg.INPUT.MAX_SIZE_TEST) if size else None

    def inputs(self, image):
        """(H, W, 3) uint8 BGR -> a Detectron2 input dict with "image", "height", "width"."""
        h, w = image.shape[:2]
        if self.input_format == "RGB":
            image = image[:, :, ::-1]
        if self.aug is not None:
            image = self.aug.get_transform(image).apply_image(image)
        tensor = torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1)))
        return {"image": tensor, "height": h, "width": w}

    @torch.no_grad()
    def __call__(self, image):
        """(H, W, 3) uint8 BGR -> Instances in the image's frame."""
        return self.model([self.inputs(image)])[0]["instances"]

    @torch.no_grad()
    def batch(self, images):
        """Several images in one forward call -> list[Instances]."""
        return [o["instances"] for o in self.model([self.inputs(im) for im in images])]


def latency_stats(seconds):
    """
    Args:
        seconds (sequence[float]): per-call wall times.
    Returns:
        OrderedDict: ms_median, ms_p90, ms_mean, ms_min, fps (1000 / median), calls.
    """
    ms = 1000.0 * np.asarray(seconds, dtype=np.float64)
    median = float(np.median(ms))
    return OrderedDict(
        ms_median=median,
        ms_p90=float(np.percentile(ms, 90)),
        ms_mean=float(ms.mean()),
        ms_min=float(ms.min()),
        fps=1000.0 / median,
        calls=int(len(ms)),
    )


def time_detectors(detect_fns, images, repeats=3, warmup=2):
    """
    Per-image latency of several detectors on the same images, interleaved (image by image,
    detector by detector, ``repeats`` rounds) so that load changes of a shared machine hit
    all of them alike.

    Args:
        detect_fns (dict[str, callable]): name -> ``detect(image)``.
        images (list[ndarray]): (H, W, 3) uint8 BGR.
        repeats (int): rounds over all images.
        warmup (int): untimed calls per detector first (on the first images).
    Returns:
        OrderedDict: name -> :func:`latency_stats` of its ``repeats * len(images)`` calls.
    """
    for fn in detect_fns.values():
        for i in range(warmup):
            fn(images[i % len(images)])
    seconds = {name: [] for name in detect_fns}
    for _ in range(repeats):
        for image in images:
            for name, fn in detect_fns.items():
                start = time.perf_counter()
                fn(image)
                seconds[name].append(time.perf_counter() - start)
    return OrderedDict((name, latency_stats(s)) for name, s in seconds.items())


def throughput(detect_fn, images, mode, threads=1, batch_size=1, repeats=1):
    """
    Images per second of one detector on all CPU cores this process may use.

    Args:
        detect_fn (ModelDetectFn): the detector.
        images (list[ndarray]): (H, W, 3) uint8 BGR.
        mode (str): "sequential": one image after the other, ``threads`` intra-op threads
            (``torch.set_num_threads``); "streams": ``threads`` Python threads, each with its own
            images and one intra-op thread; "batched": ``batch_size`` images per forward call,
            ``threads`` intra-op threads.
        repeats (int): passes over the images (after one warm-up call).
    Returns:
        OrderedDict: mode, threads, batch_size, images, seconds, images_per_s.
    """
    work = list(images) * repeats
    old_threads = torch.get_num_threads()
    torch.set_num_threads(1 if mode == "streams" else threads)
    try:
        detect_fn(images[0])
        start = time.perf_counter()
        if mode == "sequential":
            for image in work:
                detect_fn(image)
        elif mode == "streams":
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(detect_fn, work))
        elif mode == "batched":
            for i in range(0, len(work), batch_size):
                detect_fn.batch(work[i:i + batch_size])
        else:
            raise ValueError(f"unknown throughput mode {mode!r}")
        seconds = time.perf_counter() - start
    finally:
        torch.set_num_threads(old_threads)
    return OrderedDict(mode=mode, threads=threads, batch_size=batch_size if mode == "batched" else 1,
                       images=len(work), seconds=seconds, images_per_s=len(work) / seconds)
