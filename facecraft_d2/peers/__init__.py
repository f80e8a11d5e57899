# Copyright (c) facecraft_d2 contributors.
"""
Peer (third-party) face detectors wrapped as Detectron2 models, so that they are scored by
``inference_on_dataset`` with this project's evaluators on exactly the same images as the
FaceCraft models (e.g. by ``tools/eval_table.py``).

Each peer's third-party package is optional and imported only when the detector is built;
building one without its package raises an ImportError that says how to install it.

Adding a peer: subclass :class:`PeerDetector`, implement ``detect_bgr(image) -> (boxes, scores)``
and register the class under a short name with ``@register_peer_detector("name")``.
"""
from .base import PEER_DETECTOR_REGISTRY, PeerDetector, build_peer_detector, register_peer_detector
from .haar import HAAR_INSTALL_HINT, HaarDetector
from .mtcnn import MTCNN_INSTALL_HINT, MTCNNDetector
from .retinaface import RETINAFACE_INSTALL_HINT, RetinaFaceDetector
from .yunet import YUNET_INSTALL_HINT, YuNetDetector

__all__ = [
    "HAAR_INSTALL_HINT",
    "HaarDetector",
    "MTCNNDetector",
    "MTCNN_INSTALL_HINT",
    "PEER_DETECTOR_REGISTRY",
    "PeerDetector",
    "RETINAFACE_INSTALL_HINT",
    "RetinaFaceDetector",
    "YUNET_INSTALL_HINT",
    "YuNetDetector",
    "build_peer_detector",
    "register_peer_detector",
]
