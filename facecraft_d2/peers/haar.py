# Copyright (c) facecraft_d2 contributors.
"""
OpenCV's Viola-Jones face detector (Viola & Jones, "Rapid Object Detection using a Boosted
Cascade of Simple Features", CVPR 2001; Lienhart & Maydt's extended Haar features) as a
Detectron2 model. The trained cascade XML files ship inside the OpenCV 4.x wheels
(``cv2.data.haarcascades``); OpenCV 5.x wheels ship none, hence ``opencv-python-headless<5``,
which is already a facecraft_d2 dependency.
"""
import os

import numpy as np

from .base import PeerDetector, register_peer_detector, require_package

__all__ = ["HaarDetector", "HAAR_INSTALL_HINT"]

HAAR_INSTALL_HINT = "pip install 'opencv-python-headless>=4.5,<5'"


@register_peer_detector("haar")
class HaarDetector(PeerDetector):
    """
    OpenCV Haar cascade (``haarcascade_frontalface_default.xml``) with OpenCV's documented
    usage: grayscale, histogram equalisation, ``detectMultiScale`` with scale factor 1.1 and
    3 neighbours; smallest face 24 px (``minSize``), as the FaceCraft comparison.

    The cascade has no calibrated score. The score of a box is the weight of the last stage it
    passed (``detectMultiScale3(..., outputRejectLevels=True)``'s "level weights"), which ranks
    the detections for ROC / PR curves; it is not a probability.
    """

    cpu_only = True

    def __init__(
        self,
        min_face_size=24,
        scale_factor=1.1,
        min_neighbors=3,
        cascade="haarcascade_frontalface_default.xml",
        equalize_hist=True,
        num_threads=None,
        input_format="BGR",
        device="cpu",
    ):
        """
        Args:
            min_face_size (int): smallest face searched, pixels (``minSize``).
            scale_factor (float): scale ratio between the searched window sizes.
            min_neighbors (int): overlapping raw detections a face needs to be kept.
            cascade (str): a file name in ``cv2.data.haarcascades`` or a path to a cascade XML.
            equalize_hist (bool): equalise the grayscale histogram first (OpenCV's sample).
            num_threads (int): if given, ``cv2.setNumThreads(num_threads)`` (process-wide).
            input_format (str): channel order of the input tensors, "BGR" or "RGB".
            device (str): only "cpu".
        """
        super().__init__(input_format=input_format, device=device)
        self._cv2 = require_package("cv2", HAAR_INSTALL_HINT, "HaarDetector")
        path = cascade
        if not os.path.isfile(path):
            data = getattr(self._cv2, "data", None)
            path = os.path.join(data.haarcascades, cascade) if data is not None else cascade
        if not os.path.isfile(path):
            raise FileNotFoundError(
                f"Haar cascade {cascade!r} not found (OpenCV {self._cv2.__version__}; 5.x wheels "
                f"ship no cascade files). Install OpenCV 4 with:\n    {HAAR_INSTALL_HINT}"
            )
        self.classifier = self._cv2.CascadeClassifier(path)
        if self.classifier.empty():
            raise RuntimeError(f"OpenCV could not load the Haar cascade {path}")
        if num_threads is not None:
            self._cv2.setNumThreads(int(num_threads))
        self.cascade_path = path
        self.min_face_size = int(min_face_size)
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.equalize_hist = bool(equalize_hist)
        self.eval()

    def extra_repr(self):
        return "cascade={}, min_face_size={}, scale_factor={}, min_neighbors={}".format(
            os.path.basename(self.cascade_path), self.min_face_size, self.scale_factor,
            self.min_neighbors,
        )

    def detect_bgr(self, image):
        """
        Args:
            image (ndarray): (H, W, 3) uint8 BGR.
        Returns:
            tuple: boxes (K, 4) float32 XYXY and scores (K,) float32 (level weights).
        """
        cv2 = self._cv2
        if min(image.shape[:2]) < self.min_face_size:
            return np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        if self.equalize_hist:
            gray = cv2.equalizeHist(gray)
        rects, _, weights = self.classifier.detectMultiScale3(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(self.min_face_size, self.min_face_size),
            outputRejectLevels=True,
        )
        boxes = np.asarray(rects, np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]  # XYWH -> XYXY
        return boxes, np.asarray(weights, np.float32).reshape(-1)
