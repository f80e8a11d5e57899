# Copyright (c) facecraft_d2 contributors.
"""
Run any Detectron2-style face detector (a FaceCraft model or a peer from
:mod:`facecraft_d2.peers`) over benchmark datasets with each benchmark's own evaluator, and
collect the results with wall-clock timings. ``tools/eval_table.py`` is built on it.

The benchmark sets of the FaceCraft comparison are FDDB folds 1-5, scored as ONE evaluation
over their union (see :func:`facecraft_d2.data.catalog.register_concat`), and WIDER FACE val; :func:`benchmark_datasets`
registers them (optionally only their first N images) and returns their names.
"""
import logging
import os
import time
from collections import OrderedDict

import torch

from detectron2.data import build_detection_test_loader
from detectron2.evaluation import inference_on_dataset
from detectron2.utils.file_io import PathManager

from ..config import build_config
from ..data.builtin import FDDB_FOLDS_1_5, WIDER_TRAIN_HELDOUT
from ..data.catalog import register_subset
from ..data.heldout import load_heldout_images
from ..model_zoo import load_model
from ..peers import PEER_DETECTOR_REGISTRY, build_peer_detector
from .build import build_face_evaluator

__all__ = [
    "BENCHMARKS",
    "benchmark_datasets",
    "build_detector",
    "build_eval_model",
    "build_heldout_run",
    "default_eval_cfg",
    "evaluate_model",
    "parse_detector",
]

logger = logging.getLogger(__name__)

BENCHMARKS = ("fddb", "wider", "heldout")
"""Keys of :func:`benchmark_datasets`: FDDB folds 1-5 (one evaluation), WIDER FACE val, and the
validation split held out of widerface_train by the cascade's training loader (for tuning)."""


def benchmark_datasets(keys=BENCHMARKS, max_images=None, wider_step=1):
    """
    Register (if needed) and name the benchmark datasets.

    Args:
        keys (sequence[str]): among :data:`BENCHMARKS` ("fddb": FDDB folds 1-5 as one
            dataset, "wider": ``widerface_val``, "heldout": ``widerface_train_heldout``).
        max_images (int): keep only the first N images of each (quick runs).
        wider_step (int): evaluate every k-th WIDER val image only (a subset spread over all
            events, for slow detectors); 1 = all.
    Returns:
        OrderedDict[str, str]: key -> registered dataset name, in the order of ``keys``.
    """
    out = OrderedDict()
    for key in keys:
        if key == "fddb":
            name = FDDB_FOLDS_1_5
        elif key == "wider":
            name = "widerface_val"
        elif key == "heldout":
            name = WIDER_TRAIN_HELDOUT
        else:
            raise ValueError(f"unknown benchmark {key!r}; choose from {BENCHMARKS}")
        step = wider_step if key == "wider" else 1
        out[key] = register_subset(name, max_images, step=step) if max_images or step > 1 else name
    return out


def default_eval_cfg():
    """
    The config used to load and score images for models without a config of their own (the
    peers): facecraft defaults, original image size (``INPUT.MIN_SIZE_TEST = 0``), BGR.
    """
    cfg = build_config()
    cfg.INPUT.MIN_SIZE_TEST = 0
    cfg.INPUT.FORMAT = "BGR"
    cfg.DATALOADER.NUM_WORKERS = 1
    return cfg


def build_heldout_run(config_file, opts=(), max_images=150):
    """
    A cascade (its config's ``MODEL.WEIGHTS``) and the held-out WIDER train images it never
    trained on (:func:`facecraft_d2.data.heldout.load_heldout_images`), for threshold tuning
    and stage diagnostics (``tools/tune_cascade.py``, ``tools/stage_recall.py``).

    Returns:
        tuple: (cfg, model in eval mode, images [(3, H, W) uint8], gts [(faces (F, 4), ignore (G, 4))]).
    """
    cfg = build_config(config_file, list(opts), device="cpu")
    model = load_model(cfg)
    images, gts = load_heldout_images(cfg, max_images)
    return cfg, model, images, gts


def build_eval_model(config_file, weights=None, opts=()):
    """
    Build a facecraft_d2 model for evaluation from a config file.

    Args:
        config_file (str): e.g. "configs/cascade/joint.yaml".
        weights (str): checkpoint to load; None: ``<OUTPUT_DIR>/model_final.pth`` of the
            config (the trained model, not ``MODEL.WEIGHTS``, which is the initialisation);
            "random": keep the random initialisation (for development only).
        opts (sequence[str]): KEY VALUE pairs merged into the config after the file.
    Returns:
        tuple: (model in eval mode, frozen cfg).
    """
    cfg = build_config(config_file, opts)
    if weights is None:
        weights = os.path.join(cfg.OUTPUT_DIR, "model_final.pth")
    if weights != "random":
        weights = PathManager.get_local_path(weights)  # resolves facecraft://<shipped model>
        if not os.path.isfile(weights):
            raise FileNotFoundError(f"weights {weights!r} for {config_file} do not exist")
    cfg.MODEL.WEIGHTS = "" if weights == "random" else weights
    cfg.freeze()
    if weights == "random":
        logger.warning("%s: evaluating a RANDOMLY INITIALISED model (no weights)", config_file)
    return load_model(cfg), cfg  # weights-only: never runs code


def parse_detector(spec):
    """
    A detector named on a command line (``tools/eval_table.py``, ``tools/proposal_recall.py``).

    Args:
        spec (str): ``NAME=CONFIG.yaml[:WEIGHTS]``, ``PEER`` or ``NAME=PEER``.
    Returns:
        dict: {"name", "kind": "config" or "peer", and "config_file", "weights" or "peer"}.
    """
    name, sep, target = spec.partition("=")
    if not sep:
        name, target = spec, spec
    if not name:
        raise ValueError(f"detector {spec!r} has an empty name")
    if target in PEER_DETECTOR_REGISTRY:
        return {"name": name, "kind": "peer", "peer": target}
    config_file, _, weights = target.partition(":")
    if not config_file.endswith((".yaml", ".yml")):
        peers = sorted(k for k, _ in PEER_DETECTOR_REGISTRY)
        raise ValueError(f"detector {spec!r} is neither a peer {peers} "
                         "nor NAME=CONFIG.yaml[:WEIGHTS]")
    if not os.path.isfile(config_file):
        raise FileNotFoundError(f"config {config_file!r} of detector {name!r} does not exist")
    return {"name": name, "kind": "config", "config_file": config_file, "weights": weights or None}


def build_detector(det, opts=(), num_workers=1, device="cpu"):
    """Returns (model, cfg) of a parsed detector."""
    if det["kind"] == "peer":
        model, cfg = build_peer_detector(det["peer"], device=device), default_eval_cfg()
        cfg.DATALOADER.NUM_WORKERS = num_workers
        cfg.MODEL.DEVICE = device
        return model, cfg
    opts = list(opts) + ["DATALOADER.NUM_WORKERS", str(num_workers), "MODEL.DEVICE", device]
    return build_eval_model(det["config_file"], det["weights"], opts)


class _ForwardTimer:
    """Accumulates the wall time spent in ``model.forward`` (through forward hooks)."""

    def __init__(self, model):
        self.seconds, self._start = 0.0, None
        self._handles = []
        if isinstance(model, torch.nn.Module):
            self._handles = [
                model.register_forward_pre_hook(self._pre),
                model.register_forward_hook(self._post),
            ]

    def _pre(self, module, inputs):
        self._start = time.perf_counter()

    def _post(self, module, inputs, outputs):
        self.seconds += time.perf_counter() - self._start

    def remove(self):
        for h in self._handles:
            h.remove()


def evaluate_model(model, cfg, dataset_names, output_dir=None, build_evaluator=None):
    """
    Run ``model`` on each dataset with its benchmark's evaluator (chosen by the dataset's
    ``evaluator_type``, see :func:`facecraft_d2.evaluation.build_face_evaluator`).

    Args:
        model (nn.Module): a Detectron2-style model: list of input dicts ->
            list of ``{"instances": Instances}`` in the original image size.
        cfg (CfgNode): config of the test loader (``INPUT.*``, ``DATALOADER.NUM_WORKERS``) and
            the evaluators (``TEST.FDDB`` / ``TEST.AFW``); :func:`default_eval_cfg` for peers.
        dataset_names (sequence[str]): registered datasets.
        output_dir (str): if given, each evaluator writes its files into
            ``<output_dir>/<dataset_name>/``.
        build_evaluator (callable): ``(cfg, dataset_name, output_folder) -> DatasetEvaluator``;
            default :func:`facecraft_d2.evaluation.build_face_evaluator`.
    Returns:
        OrderedDict: dataset_name -> the evaluator's results (e.g. {"fddb": {...}}) plus
        "timing": {"seconds" (wall time of loading, inference and scoring), "model_seconds"
        (inside ``model.forward``), "num_images", "ms_per_image" (model time)}.
    """
    if build_evaluator is None:
        build_evaluator = build_face_evaluator
    results = OrderedDict()
    for name in dataset_names:
        folder = os.path.join(output_dir, name) if output_dir else None
        loader = build_detection_test_loader(cfg, name)
        evaluator = build_evaluator(cfg, name, folder)
        timer = _ForwardTimer(model)
        start = time.perf_counter()
        try:
            res = inference_on_dataset(model, loader, evaluator)
        finally:
            timer.remove()
        seconds = time.perf_counter() - start
        num_images = len(loader.dataset) if hasattr(loader, "dataset") else len(loader)
        res = OrderedDict(res or {})
        res["timing"] = OrderedDict(
            seconds=seconds,
            model_seconds=timer.seconds,
            num_images=num_images,
            ms_per_image=1000.0 * timer.seconds / max(num_images, 1),
        )
        logger.info("%s: %d images in %.1f s (%.1f ms/image in the model)", name, num_images,
                    seconds, res["timing"]["ms_per_image"])
        results[name] = res
    return results
