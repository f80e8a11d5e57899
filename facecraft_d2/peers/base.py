# Copyright (c) facecraft_d2 contributors.
"""
The common base of the peer (third-party) face detectors: it turns a detector that finds faces in
one HxWx3 uint8 BGR numpy image into a Detectron2 model, so that it can be scored with
``inference_on_dataset`` and this project's evaluators exactly like the FaceCraft models.

A peer only implements :meth:`PeerDetector.detect_bgr`; the base class does the Detectron2
plumbing (list of input dicts -> ``[{"instances": Instances}]``, channel order, rescaling to the
requested "height"/"width", clipping, empty results) once for all of them. New peers register
themselves in :data:`PEER_DETECTOR_REGISTRY` with ``@register_peer_detector("name")`` and are
built by name with :func:`build_peer_detector`.
"""
import importlib

import numpy as np
import torch
from torch import nn

from detectron2.modeling.postprocessing import detector_postprocess
from detectron2.structures import Boxes, Instances
from detectron2.utils.registry import Registry

__all__ = [
    "PeerDetector",
    "PEER_DETECTOR_REGISTRY",
    "build_peer_detector",
    "register_peer_detector",
    "require_package",
]

PEER_DETECTOR_REGISTRY = Registry("PEER_DETECTOR")
PEER_DETECTOR_REGISTRY.__doc__ = """
Registry of the peer face detectors, keyed by a short lower-case name (e.g. "mtcnn").
The registered object is called with keyword arguments and must return a :class:`PeerDetector`.
"""


def register_peer_detector(name):
    """
    Class decorator: register a :class:`PeerDetector` subclass under ``name`` (fvcore's
    ``Registry.register`` only uses the class name).

    Args:
        name (str): short lower-case name, e.g. "mtcnn".
    """

    def deco(cls):
        PEER_DETECTOR_REGISTRY._do_register(name, cls)
        return cls

    return deco


def build_peer_detector(name, **kwargs):
    """
    Build a registered peer detector by name.

    Args:
        name (str): a name in :data:`PEER_DETECTOR_REGISTRY`, e.g. "mtcnn".
        kwargs: passed to its constructor (e.g. ``min_face_size=20``).
    Returns:
        PeerDetector: the detector, in eval mode.
    """
    if name not in PEER_DETECTOR_REGISTRY:
        known = sorted(k for k, _ in PEER_DETECTOR_REGISTRY)
        raise KeyError(f"unknown peer detector {name!r}; registered: {known}")
    return PEER_DETECTOR_REGISTRY.get(name)(**kwargs).eval()


def require_package(module, install_hint, what):
    """
    Import an optional third-party module, or fail with how to install it.

    Args:
        module (str): module to import, e.g. "facenet_pytorch".
        install_hint (str): the command that installs it.
        what (str): the detector that needs it, for the message.
    Returns:
        module: the imported module.
    """
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(
            f"{what} needs the optional package {module!r}, which could not be imported ({e}). "
            f"Install it into this environment with:\n    {install_hint}"
        ) from e


class PeerDetector(nn.Module):
    """
    Base class of the peer face detectors, a Detectron2-style model for inference only.

    Input: Detectron2's list of dicts, each with "image" (3, H, W) uint8 (or float 0-255)
    tensor in ``input_format`` channel order and optionally "height" / "width", the size the
    outputs must be given in (when the loader resized the image). Output: one
    ``{"instances": Instances}`` per image with ``pred_boxes`` (K, 4) XYXY absolute,
    ``scores`` (K,) and ``pred_classes`` (K,) all 0 ("face"), sorted by decreasing score,
    clipped to the output image and without empty boxes.

    Subclasses implement :meth:`detect_bgr`. The module has no trainable parameters of its
    own and is inference-only: ``train()`` / ``eval()`` (used by ``inference_on_dataset``'s
    ``inference_context``) only switch the ``training`` flags, and :meth:`forward` detects in
    either mode.
    """

    cpu_only = False  # subclasses that cannot run elsewhere set True

    def __init__(self, input_format="BGR", device="cpu"):
        """
        Args:
            input_format (str): channel order of the "image" tensors: "BGR" (Detectron2's
                default, ``cfg.INPUT.FORMAT``) or "RGB".
            device (str or torch.device): where the detector runs; CPU-only peers
                (``cpu_only = True``) raise ValueError for anything else.
        """
        super().__init__()
        if input_format not in ("BGR", "RGB"):
            raise ValueError(f"input_format must be 'BGR' or 'RGB', got {input_format!r}")
        self.input_format = input_format
        self._device = torch.device(device)
        if self.cpu_only and self._device.type != "cpu":
            raise ValueError(f"{type(self).__name__} runs on the CPU only, got device {device!r}")

    @property
    def device(self):
        """torch.device the detector runs on (its outputs are always on the CPU)."""
        return self._device

    def detect_bgr(self, image):
        """
        Detect faces in one image.

        Args:
            image (ndarray): (H, W, 3) uint8, BGR, C-contiguous.
        Returns:
            tuple: ``boxes`` (K, 4) float32 XYXY absolute pixel coordinates of ``image`` and
            ``scores`` (K,) float32 (higher = more confident); K may be 0.
        """
        raise NotImplementedError

    def _to_bgr_numpy(self, image):
        """(3, H, W) tensor in ``input_format`` -> (H, W, 3) uint8 BGR contiguous ndarray."""
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"expected a (3, H, W) image tensor, got shape {tuple(image.shape)}")
        array = image.detach().to("cpu")
        if array.dtype != torch.uint8:
            array = array.round().clamp(0, 255).to(torch.uint8)
        array = array.permute(1, 2, 0).numpy()
        if self.input_format == "RGB":
            array = array[:, :, ::-1]
        return np.ascontiguousarray(array)

    @torch.no_grad()
    def inference_single(self, image, height=None, width=None):
        """
        Args:
            image (Tensor): (3, H, W) in ``input_format``.
            height, width (int): output size; default the image's own (H, W).
        Returns:
            Instances: the detections in the (height, width) image.
        """
        h, w = int(image.shape[-2]), int(image.shape[-1])
        boxes, scores = self.detect_bgr(self._to_bgr_numpy(image))
        boxes = torch.as_tensor(np.asarray(boxes, dtype=np.float32).reshape(-1, 4))
        scores = torch.as_tensor(np.asarray(scores, dtype=np.float32).reshape(-1))
        if len(boxes) != len(scores):
            raise RuntimeError(
                f"{type(self).__name__}.detect_bgr returned {len(boxes)} boxes "
                f"but {len(scores)} scores"
            )
        order = torch.argsort(scores, descending=True)
        inst = Instances((h, w))
        inst.pred_boxes = Boxes(boxes[order])
        inst.scores = scores[order]
        inst.pred_classes = torch.zeros(len(order), dtype=torch.long)
        # rescales to the requested size, clips to it and drops empty boxes
        return detector_postprocess(inst, height or h, width or w)

    def forward(self, batched_inputs):
        """
        Args:
            batched_inputs (list[dict]): Detectron2 inputs, "image" (3, H, W) and optionally
                "height" / "width".
        Returns:
            list[dict]: ``{"instances": Instances}`` per input, in its "height" x "width".
        """
        return [
            {"instances": self.inference_single(x["image"], x.get("height"), x.get("width"))}
            for x in batched_inputs
        ]
