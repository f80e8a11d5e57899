# Copyright (c) facecraft_d2 contributors.
"""
MTCNN (Zhang et al., "Joint Face Detection and Alignment using Multi-task Cascaded
Convolutional Networks", IEEE SPL 2016) as a Detectron2 model, through the PyTorch port in
``facenet-pytorch`` (its P-Net / R-Net / O-Net weights ship inside the wheel: nothing is
downloaded at run time).

``facenet-pytorch==2.6.0`` pins old torch / numpy / Pillow releases in its metadata but runs
unpatched on the current ones, so it is installed without its dependencies::

    pip install --no-deps facenet-pytorch==2.6.0 requests

(``requests`` is imported by the package's ``__init__``; ``tqdm`` is a facecraft_d2 dependency.)
"""
import numpy as np

from .base import PeerDetector, register_peer_detector, require_package

__all__ = ["MTCNNDetector", "MTCNN_INSTALL_HINT"]

MTCNN_INSTALL_HINT = "pip install --no-deps facenet-pytorch==2.6.0 requests"


@register_peer_detector("mtcnn")
class MTCNNDetector(PeerDetector):
    """
    MTCNN face detector. The defaults are the settings of the FaceCraft comparison: smallest
    face 24 px (as the FaceCraft cascade), pyramid factor 0.709 and stage thresholds
    0.6 / 0.7 / 0.7 (the MTCNN paper's). Scores are O-Net's face probabilities.

    Boxes are MTCNN's own (inclusive pixel corners, as its MATLAB original), clipped to the
    image; the five landmarks MTCNN also predicts are not returned.
    """

    def __init__(
        self,
        min_face_size=24,
        factor=0.709,
        thresholds=(0.6, 0.7, 0.7),
        input_format="BGR",
        device="cpu",
    ):
        """
        Args:
            min_face_size (float): smallest face searched, pixels (sets the first pyramid scale
                12 / min_face_size).
            factor (float): scale ratio between pyramid levels.
            thresholds (sequence[float]): face probability a window needs to pass P-Net,
                R-Net and O-Net.
            input_format (str): channel order of the input tensors, "BGR" or "RGB".
            device (str or torch.device): where the three networks run.
        """
        super().__init__(input_format=input_format, device=device)
        facenet = require_package("facenet_pytorch", MTCNN_INSTALL_HINT, "MTCNNDetector")
        if len(thresholds) != 3:
            raise ValueError(f"MTCNN needs 3 stage thresholds, got {list(thresholds)}")
        self.min_face_size = float(min_face_size)
        self.factor = float(factor)
        self.thresholds = [float(t) for t in thresholds]
        self.mtcnn = facenet.MTCNN(
            min_face_size=self.min_face_size,
            factor=self.factor,
            thresholds=self.thresholds,
            keep_all=True,
            select_largest=False,  # keep the score order; the base class sorts anyway
            post_process=False,
            device=self._device,
        )
        self.eval()

    def extra_repr(self):
        return "min_face_size={}, factor={}, thresholds={}".format(
            self.min_face_size, self.factor, self.thresholds
        )

    def detect_bgr(self, image):
        """
        Args:
            image (ndarray): (H, W, 3) uint8 BGR.
        Returns:
            tuple: boxes (K, 4) float32 XYXY and scores (K,) float32.
        """
        empty = np.zeros((0, 4), np.float32), np.zeros((0,), np.float32)
        # facenet-pytorch builds an empty pyramid (and fails) for images smaller than the
        # smallest face; nothing can be found in them anyway
        if min(image.shape[:2]) < self.min_face_size:
            return empty
        rgb = np.ascontiguousarray(image[:, :, ::-1])
        boxes, probs = self.mtcnn.detect(rgb)
        if boxes is None:
            return empty
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        scores = np.asarray(probs, dtype=np.float32).reshape(-1)
        return boxes, scores
