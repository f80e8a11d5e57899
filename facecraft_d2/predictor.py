# Copyright (c) facecraft_d2 contributors.
"""
:class:`FaceDetector`: the Python API of facecraft_d2 for running a face detector on images.

    from facecraft_d2 import FaceDetector
    detector = FaceDetector("cascade-joint", score_threshold=0.9, min_face=24, preset="fast")
    faces = detector.detect("photo.jpg")            # path, PIL image or numpy array
    faces = detector.detect(rgb_array, format="RGB")  # arrays are BGR unless told otherwise
    for (x1, y1, x2, y2), score in zip(faces.boxes, faces.scores): ...
    many = detector.detect_batch(["a.jpg", "b.png"])
    outputs = detector(cv2.imread("photo.jpg"))      # DefaultPredictor style: {"instances": ...}

Any shipped model (``facecraft_d2.model_zoo.list_models()``, read from ``models.json``, so new
entries work without code changes) is loaded by name, with "-" or "_" between words; any other
model from a config file and a weights path. Cascades also run on onnxruntime
(``backend="onnxruntime"``, see :mod:`facecraft_d2.export`).
"""
import logging
import math
import os
import time
import warnings
from dataclasses import dataclass, field

import numpy as np
import torch

from detectron2.data import transforms as T

from .utils.image_io import (
    DEFAULT_MAX_PIXELS,
    ImageLoadError,
    channel_order_matters,
    convert_image,
    load_image,
)
from .model_zoo import list_models, load_model, resolve_config, resolve_model_name
from .utils import tune_allocator


__all__ = ["FaceDetections", "FaceDetector", "NumberRange", "PRESETS", "rcnn_fast_preset",
           "resolve_model_name"]

logger = logging.getLogger(__name__)

CASCADE_ARCH = "FaceCraftCascade"
CASCADE_FAST_PRESET = "cascade/joint_fast.yaml"
"""The cascade's fast preset: the test settings this config adds to its base (crop mode,
proposals, thresholds), so that ``preset="fast"`` always matches the shipped fast config."""
RCNN_FAST_PROPOSALS = 100
"""RPN proposals per image (``MODEL.RPN.POST_NMS_TOPK_TEST``) of the R-CNN fast preset."""
RCNN_FAST_TEST_SCALE = 0.75
"""The R-CNN fast preset's test scale, relative to the model's own (``INPUT.MIN_SIZE_TEST``
and ``INPUT.MAX_SIZE_TEST``): 480 / 800 px -> 360 / 600 px for the shipped R-CNN models."""


def rcnn_fast_preset(cfg):
    """
    The fast preset of RPN-based models (GeneralizedRCNN, JointRCNN, ...): the image at
    :data:`RCNN_FAST_TEST_SCALE` of the model's test scale (the backbone's work, most of the
    time, falls with the pixel count; faces smaller than the smallest anchor / scale are no
    longer found) and :data:`RCNN_FAST_PROPOSALS` RPN proposals (the RoI head's work).

    Args:
        cfg (CfgNode): the model's config (``INPUT.MIN_SIZE_TEST`` 0, no resizing, stays 0).
    Returns:
        list: KEY VALUE overrides.
    """
    opts = ["MODEL.RPN.PRE_NMS_TOPK_TEST", 3 * RCNN_FAST_PROPOSALS,
            "MODEL.RPN.POST_NMS_TOPK_TEST", RCNN_FAST_PROPOSALS]
    if cfg.INPUT.MIN_SIZE_TEST > 0:
        opts += ["INPUT.MIN_SIZE_TEST", round(cfg.INPUT.MIN_SIZE_TEST * RCNN_FAST_TEST_SCALE),
                 "INPUT.MAX_SIZE_TEST", round(cfg.INPUT.MAX_SIZE_TEST * RCNN_FAST_TEST_SCALE)]
    return opts


PRESETS = {
    CASCADE_ARCH: {
        "accurate": ["MODEL.FACECRAFT.TEST.CROP_MODE", "accurate"],
        "fast": CASCADE_FAST_PRESET,
    },
    "RPN-based": {
        "accurate": [],
        "fast": rcnn_fast_preset,
    },
}
"""Preset name -> config overrides (a KEY VALUE list, a config under ``configs/`` whose own
keys are applied, or a function of the model's config that returns a KEY VALUE list), for the
cascade and for every other (RPN-based: GeneralizedRCNN, JointRCNN, ...) meta-architecture.
"fast" is the paper's fast mode for cascades (crops from the pyramid, section 6.5, with the
settings of ``configs/cascade/joint_fast.yaml``) and, for R-CNN models, a 3/4 test scale with
100 proposals (:func:`rcnn_fast_preset`); "accurate" resizes each crop (cascades) and
otherwise keeps the model's own config."""


class NumberRange:
    """
    The type and range of a numeric setting, checked the same way by :class:`FaceDetector`
    and by the ``facecraft`` command line (its argparse types):
    ``NumberRange(float, 0, 1)(2, "score_threshold")`` raises
    ``ValueError("score_threshold must be a number in [0, 1], got 2")``.
    """

    def __init__(self, kind=float, low=None, high=None, low_open=False):
        """
        Args:
            kind (type): float or int (int accepts integral floats and strings: "16e6").
            low, high (float or None): the bounds (None: unbounded), inclusive unless
                ``low_open``.
        """
        self.kind, self.low, self.high, self.low_open = kind, low, high, low_open

    def describe(self):
        what = "an integer" if self.kind is int else "a number"
        if self.high is not None:
            return f"{what} in {'(' if self.low_open else '['}{self.low}, {self.high}]"
        return f"{what} {'>' if self.low_open else '>='} {self.low}"

    def __call__(self, value, name=None):
        """``value`` (number or string) as ``kind``; raises ValueError naming ``name``."""
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        ok = math.isfinite(number) and (self.kind is not int or number.is_integer())
        if ok and self.low is not None:
            ok = number > self.low if self.low_open else number >= self.low
        ok = ok and (self.high is None or number <= self.high)
        if not ok:
            raise ValueError(f"{name + ' ' if name else ''}must be {self.describe()}, got {value}")
        return self.kind(number)


SCORE_THRESHOLD = NumberRange(float, 0, 1)
MIN_FACE = NumberRange(float, 0, low_open=True)
POSITIVE_INT = NumberRange(int, 1)
INPUT_FORMATS = ("BGR", "RGB")


def _check_choice(name, value, choices):
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _check_device(device):
    """``device`` if torch knows it and it is present here; one-line ValueError otherwise."""
    try:
        kind = torch.device(device).type
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu' or 'cuda' (or 'cuda:N'), got {device!r}") from None
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r}: CUDA is not available here (use 'cpu')")
    return device


def _check_export_folder(model):
    """
    With ``backend="onnxruntime"``, a ``model`` that is a path (not a shipped name) must be a
    folder written by ``facecraft export``.
    """
    from .export import EXPORT_MANIFEST

    if model in list_models() or not (os.sep in model or "/" in model or os.path.exists(model)):
        return
    hint = f"write it with 'facecraft export --model NAME --out {model}'"
    if not os.path.isdir(model):
        raise FileNotFoundError(f"ONNX export folder {model!r} does not exist ({hint})")
    if not os.path.isfile(os.path.join(model, EXPORT_MANIFEST)):
        raise FileNotFoundError(f"{model!r} is not an ONNX export folder: it has no "
                                f"{EXPORT_MANIFEST} ({hint})")


def _preset_opts(cfg, preset):
    """KEY VALUE list of a preset (see :data:`PRESETS`) for the model of ``cfg``."""
    arch = cfg.MODEL.META_ARCHITECTURE
    presets = PRESETS[CASCADE_ARCH if arch == CASCADE_ARCH else "RPN-based"]
    if preset not in presets:
        raise ValueError(f"preset must be one of {sorted(presets)}, got {preset!r}")
    opts = presets[preset]
    if callable(opts):
        return list(opts(cfg))
    if not isinstance(opts, str):
        return list(opts)
    import yaml

    from .model_zoo import get_config_file

    with open(get_config_file(opts), encoding="utf-8") as f:
        own = yaml.safe_load(f) or {}
    own.pop("_BASE_", None)

    def flatten(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict):
                yield from flatten(value, prefix + key + ".")
            else:
                yield from (prefix + key, value)

    return list(flatten(own))


@dataclass
class FaceDetections:
    """
    Faces found in one image, in the pixel coordinates of the image as displayed (EXIF
    orientation applied) and at its full size (also when it was downscaled for detection).

    Attributes:
        boxes (np.ndarray): (K, 4) float32 XYXY boxes, sorted by decreasing score.
        scores (np.ndarray): (K,) float32 face probabilities.
        stages (list[str] or None): per box, the last cascade stage it passed ("x12", "x24",
            "x48"); None for models without stages.
        image_size (tuple[int, int]): (height, width) of the image.
        source (str or None): the file, when the input was a path.
        notes (list[str]): what was done to the input (downscaling, EXIF rotation, ...).
        seconds (float): model time for this image (batch time / batch size in batches).
    """

    boxes: np.ndarray
    scores: np.ndarray
    stages: list = None
    image_size: tuple = (0, 0)
    source: str = None
    notes: list = field(default_factory=list)
    seconds: float = 0.0

    def __len__(self):
        return len(self.scores)

    def to_dict(self):
        """JSON-ready: {"file", "height", "width", "faces": [{"box", "score"[, "stage"]}], ...}."""
        faces = []
        for i, (box, score) in enumerate(zip(self.boxes.tolist(), self.scores.tolist())):
            face = {"box": [round(v, 2) for v in box], "score": round(score, 5)}
            if self.stages is not None:
                face["stage"] = self.stages[i]
            faces.append(face)
        return {"file": self.source, "height": int(self.image_size[0]),
                "width": int(self.image_size[1]), "faces": faces, "notes": list(self.notes)}


class FaceDetector:
    """
    Load a face detector once, then detect faces in images of any size and format.

    Inputs: a path (any image Pillow reads, see :mod:`facecraft_d2.utils.image_io`), a PIL
    image (any mode, converted as the file would be), or a numpy array:

    * (H, W, 3) (or (H, W, 4), alpha last) arrays are **BGR by default**, as ``cv2.imread``,
      video frames and Detectron2's ``DefaultPredictor``; arrays from PIL, matplotlib,
      imageio or facenet-pytorch are RGB: say so with ``detect(image, format="RGB")``, or
      once with ``FaceDetector(..., input_format="RGB")``. An RGB array read as BGR loses
      faces silently, so the first 3-channel array whose order was stated nowhere (neither
      ``format=`` nor ``input_format=``) gives a one-time warning;
    * (H, W) and (H, W, 1) arrays and PIL grayscale images are grayscale: the gray channel is
      copied into the three colour channels (the models take 3 channels).

    uint8, uint16 (scaled to 8 bits) and float ([0, 1] or [0, 255]) arrays are accepted.

    Attributes:
        cfg (CfgNode): the frozen config of the model.
        model (nn.Module): the Detectron2 model, in eval mode.
        input_format (str): channel order of 3-channel arrays unless ``format=`` says
            otherwise: "BGR" or "RGB".
        score_threshold (float): faces scoring below it are dropped by :meth:`detect`.
        min_face (float): smallest face searched (cascade: first pyramid scale; other models:
            smaller boxes are dropped), in pixels of the image given to the model.
    """

    def __init__(self, model="cascade_joint", *, config_file=None, weights=None,
                 score_threshold=None, min_face=None, preset=None, backend="torch",
                 device=None, opts=(), max_pixels=DEFAULT_MAX_PIXELS, batch_size=4,
                 input_format=None):
        """
        Args:
            model (str): a shipped model name (``list_models()``, "-" or "_"), or with
                ``backend="onnxruntime"`` also a folder written by ``facecraft export``.
                Ignored when ``config_file`` is given.
            config_file (str): a facecraft_d2 YAML config instead of a shipped model.
            weights (str): weights for ``config_file`` or the shipped model's config (default:
                the config's ``MODEL.WEIGHTS``); ``facecraft://<name>`` works too.
            score_threshold (float): minimum face probability returned by :meth:`detect`
                (None: the model's default, ``TEST.FACES.SCORE_THRESH`` of its config).
            min_face (float): smallest face to search, pixels (None: the config's, 24 for
                the shipped cascades). Smaller is slower (a deeper pyramid).
            preset (str): "accurate" or "fast" (see :data:`PRESETS`); None: the config's.
            backend (str): "torch" or "onnxruntime" (cascades; exported on first use).
            device (str): "cpu" or "cuda" (default: cuda if available; onnxruntime: cpu).
            opts (sequence[str]): extra KEY VALUE config overrides.
            max_pixels (int): larger images are downscaled to about this many pixels, and
                the boxes mapped back to the full size (see :func:`load_image`); None: never.
            batch_size (int): images per model call in :meth:`detect_batch`.
            input_format (str): channel order of numpy arrays, "BGR" (None: BGR, with a
                one-time warning when the order was not stated) or "RGB"; ``format=`` of
                :meth:`detect` overrides it per call.

        Raises:
            ValueError: for a setting out of range (one line naming it), e.g.
                ``score_threshold`` outside [0, 1], ``min_face <= 0``, ``batch_size < 1``.

        Building a detector also fixes glibc's mmap threshold (:func:`facecraft_d2.utils.
        tune_allocator`; unless ``MALLOC_MMAP_THRESHOLD_`` is set), which keeps resident memory
        flat over thousands of images of varying sizes.
        """
        if score_threshold is not None:
            score_threshold = SCORE_THRESHOLD(score_threshold, "score_threshold")
        min_face = None if min_face is None else MIN_FACE(min_face, "min_face")
        self.max_pixels = None if max_pixels is None else POSITIVE_INT(max_pixels, "max_pixels")
        self.batch_size = POSITIVE_INT(batch_size, "batch_size")
        self.backend = _check_choice("backend", backend, ("torch", "onnxruntime"))
        self._format_stated = input_format is not None
        self.input_format = _check_choice("input_format", input_format or "BGR", INPUT_FORMATS)
        if device is not None:
            _check_device(device)
        tune_allocator()
        export_dir = None
        if backend == "onnxruntime":
            from .export import onnx_export_dir

            if model and not config_file:
                _check_export_folder(str(model))

            export_dir = onnx_export_dir(model, config_file=config_file, weights=weights)
            cfg = _load_export_cfg(export_dir)
            self.name = os.path.basename(os.path.normpath(export_dir))
        else:
            cfg, self.name = resolve_config(model, config_file, weights)
        arch = cfg.MODEL.META_ARCHITECTURE
        if preset is not None:
            cfg.merge_from_list(_preset_opts(cfg, preset))
        if min_face is not None and arch == CASCADE_ARCH:
            cfg.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE = float(min_face)
        cfg.merge_from_list(list(opts))
        if backend == "onnxruntime":
            cfg.MODEL.DEVICE = "cpu"
        if device:
            cfg.MODEL.DEVICE = device
        self.score_threshold = (score_threshold if score_threshold is not None
                                else SCORE_THRESHOLD(cfg.TEST.FACES.SCORE_THRESH, "TEST.FACES.SCORE_THRESH"))
        self.min_face = min_face if min_face is not None else (
            cfg.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE if arch == CASCADE_ARCH else 0.0)
        cfg.freeze()
        self.cfg = cfg
        if export_dir is not None:
            from .export import attach_onnxruntime

            self.model = attach_onnxruntime(load_model(cfg, weights=""), export_dir)
        else:
            if not cfg.MODEL.WEIGHTS:
                raise ValueError(f"{self.name}: no weights (set MODEL.WEIGHTS or weights=)")
            self.model = load_model(cfg)
        self.is_cascade = arch == CASCADE_ARCH
        self.model_format = cfg.INPUT.FORMAT
        self.aug = T.ResizeShortestEdge([cfg.INPUT.MIN_SIZE_TEST] * 2, cfg.INPUT.MAX_SIZE_TEST)

    # ------------------------------------------------------------ DefaultPredictor API
    def __call__(self, original_image):
        """
        Detectron2's ``DefaultPredictor`` convention.

        Args:
            original_image (np.ndarray): (H, W, 3) uint8 image in ``input_format`` order (BGR
                unless the detector was built with ``input_format="RGB"``), as is.
        Returns:
            dict: {"instances": Instances} with ``pred_boxes``, ``scores``, ``pred_classes``
            in the image's coordinates, all scores (no ``score_threshold``).
        """
        image = original_image
        if self.input_format == "RGB":
            image = np.ascontiguousarray(original_image[:, :, ::-1])
        return self._run([(image, original_image.shape[:2])])[0]

    # ------------------------------------------------------------ face API
    def load(self, image, format=None):
        """
        One input (path, PIL image or array in ``format``, default ``input_format``) ->
        (BGR array to run on, (height, width) of the full-size image, source path or None,
        notes).

        Raises:
            ImageLoadError: for a path that cannot be read as an image.
        """
        if isinstance(image, (str, os.PathLike)):
            loaded = load_image(image, format="BGR", max_pixels=self.max_pixels)
            return loaded.image, loaded.original_size, os.fspath(image), loaded.notes
        if format is None:
            format = self.input_format
            if not self._format_stated and channel_order_matters(image):
                self._format_stated = True  # warn once per detector
                warnings.warn(
                    f"FaceDetector: a numpy array without format= is read as {format} "
                    "(cv2.imread order, as Detectron2's DefaultPredictor); if it is RGB (PIL, "
                    "matplotlib, imageio), pass format='RGB'. Pass format= or "
                    "FaceDetector(input_format=...) to silence this warning.", stacklevel=4)
        else:
            _check_choice("format", format, INPUT_FORMATS)
        try:
            bgr = convert_image(image, format="BGR", input_format=format)
        except (ValueError, TypeError) as e:
            raise ImageLoadError("<array>", str(e)) from None
        size, notes = bgr.shape[:2], []
        pixels = size[0] * size[1]
        if self.max_pixels and pixels > self.max_pixels:
            import cv2

            f = (self.max_pixels / pixels) ** 0.5
            bgr = cv2.resize(bgr, (max(1, round(size[1] * f)), max(1, round(size[0] * f))),
                             interpolation=cv2.INTER_AREA)
            notes.append(f"downscaled from {size[1]}x{size[0]} to {bgr.shape[1]}x{bgr.shape[0]}")
        return bgr, size, None, notes

    def detect(self, image, format=None):
        """
        Args:
            image: a path, a PIL image, or a numpy array (see the class docstring).
            format (str): channel order of an array, "BGR" or "RGB" (default:
                ``input_format``, BGR unless set); ignored for paths and PIL images.
        Returns:
            FaceDetections: faces with score >= ``score_threshold``.
        Raises:
            ImageLoadError: naming the file, if it is not a readable image.
        """
        return self.detect_batch([image], format=format)[0]

    def detect_batch(self, images, format=None, on_error="raise"):
        """
        Detect faces in many images, ``batch_size`` per model call (cascades run stages 2
        and 3 on the crops of the whole batch at once).

        Args:
            images (list): paths, PIL images or arrays (see :meth:`detect`).
            format (str): channel order of the arrays, "BGR" or "RGB" (default:
                ``input_format``).
            on_error (str): "raise": the first unreadable input raises; "skip": its entry in
                the result is an :class:`ImageLoadError` (naming the file) and the others
                are detected.
        Returns:
            list[FaceDetections] (or ImageLoadError with "skip"), in the order of ``images``.
        Raises:
            ImageLoadError: with ``on_error="raise"``, for the first unreadable input.
        """
        if on_error not in ("raise", "skip"):
            raise ValueError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
        results = []
        for start in range(0, len(images), self.batch_size):
            chunk, loaded = [], []
            for im in images[start:start + self.batch_size]:
                try:
                    loaded.append(self.load(im, format))
                    chunk.append(None)
                except ImageLoadError as e:
                    if on_error == "raise":
                        raise
                    chunk.append(e)
            found = iter(self.detect_loaded(loaded))
            results.extend(err if err is not None else next(found) for err in chunk)
        return results

    def detect_loaded(self, loaded):
        """
        Run on inputs already prepared by :meth:`load` (one model call; for callers that
        load files themselves to isolate unreadable ones, like ``facecraft detect``).

        Args:
            loaded (list[tuple]): outputs of :meth:`load`.
        Returns:
            list[FaceDetections]
        """
        if not loaded:
            return []
        tic = time.perf_counter()
        outputs = self._run([(bgr, size) for bgr, size, _, _ in loaded])
        seconds = (time.perf_counter() - tic) / len(loaded)
        results = []
        for (bgr, size, source, notes), out in zip(loaded, outputs):
            res = self._to_detections(out, size, source, notes)
            res.seconds = seconds
            results.append(res)
        return results

    # ------------------------------------------------------------ internals
    @torch.no_grad()
    def _run(self, images):
        """[(BGR (H, W, 3) uint8, (full height, full width))] -> model outputs."""
        inputs = []
        for bgr, (height, width) in images:
            img = bgr[:, :, ::-1] if self.model_format == "RGB" else bgr
            img = self.aug.get_transform(img).apply_image(img)
            # uint8, as Detectron2's data loaders give (the models normalize it themselves)
            tensor = torch.as_tensor(np.ascontiguousarray(img).transpose(2, 0, 1))
            inputs.append({"image": tensor, "height": height, "width": width})
        return self.model(inputs)

    def _to_detections(self, out, size, source, notes):
        if "instances" not in out:
            raise ValueError(f"{self.name}: the model returns {sorted(out)}, not detections "
                             "(an RPN-only training step?)")
        inst = out["instances"].to("cpu")
        boxes = inst.pred_boxes.tensor.numpy().astype(np.float32)
        scores = inst.scores.numpy().astype(np.float32)
        keep = scores >= self.score_threshold
        if not self.is_cascade and self.min_face > 0:
            wh = boxes[:, 2:] - boxes[:, :2]
            keep &= np.sqrt(np.clip(wh[:, 0] * wh[:, 1], 0, None)) >= self.min_face
        order = np.argsort(-scores[keep], kind="stable")
        stages = None
        if self.is_cascade:  # every box out of the cascade passed all its stages
            stages = ["x48"] * int(keep.sum())
        return FaceDetections(boxes[keep][order], scores[keep][order], stages, tuple(size),
                              source, list(notes))


def _load_export_cfg(export_dir):
    from .export import load_export_config

    return load_export_config(export_dir)
