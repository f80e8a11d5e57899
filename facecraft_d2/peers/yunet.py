# Copyright (c) facecraft_d2 contributors.
"""
YuNet (Wu, Peng & Yu, "YuNet: A Tiny Millisecond-level Face Detector", Machine Intelligence
Research 2023) as a Detectron2 model, through ``yuface``: the libfacedetection C++ library
with its weights compiled in (nothing is downloaded; OpenCV's ``cv2.FaceDetectorYN`` would
need an .onnx file that no package ships).

``yuface`` has no dependencies::

    pip install yuface==2023.5.1

libfacedetection parallelises with its own bundled OpenMP runtime: set ``OMP_NUM_THREADS``
(before the library is loaded) or the process's CPU affinity to limit its threads.
"""
import numpy as np

from .base import PeerDetector, register_peer_detector, require_package

__all__ = ["YuNetDetector", "YUNET_INSTALL_HINT"]

YUNET_INSTALL_HINT = "pip install yuface==2023.5.1"


@register_peer_detector("yunet")
class YuNetDetector(PeerDetector):
    """
    YuNet face detector (libfacedetection). It has NO minimum face size setting: it runs once
    on the image at its own resolution and its anchors reach down to about 10 px faces.
    ``min_face_size`` is None to say so.

    Scores are libfacedetection's confidences (integer percent) divided by 100; the library
    itself keeps only boxes above its built-in threshold (about 0.5) and applies its own NMS.
    """

    min_face_size = None  # YuNet has no minimum face size: single scale, ~10 px anchors

    cpu_only = True

    def __init__(self, score_threshold=0.0, input_format="BGR", device="cpu"):
        """
        Args:
            score_threshold (float): drop boxes scoring at or below this, in [0, 1] (0: keep
                all that libfacedetection returns).
            input_format (str): channel order of the input tensors, "BGR" or "RGB".
            device (str): only "cpu".
        """
        super().__init__(input_format=input_format, device=device)
        self._yuface = require_package("yuface", YUNET_INSTALL_HINT, "YuNetDetector")
        self.score_threshold = float(score_threshold)
        self.eval()

    def extra_repr(self):
        return "min_face_size=None, score_threshold={}".format(self.score_threshold)

    def detect_bgr(self, image):
        """
        Args:
            image (ndarray): (H, W, 3) uint8 BGR, C-contiguous.
        Returns:
            tuple: boxes (K, 4) float32 XYXY and scores (K,) float32 in [0, 1].
        """
        confs, xywh, _ = self._yuface.detect(image, conf=self.score_threshold)
        boxes = np.asarray(xywh, np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
        return boxes, np.asarray(confs, np.float32).reshape(-1) / 100.0
