# Copyright (c) facecraft_d2 contributors.
"""FaceCraft (Qin et al., CVPR 2016) face detectors as a Detectron2 plugin."""
import warnings

with warnings.catch_warnings():
    # detectron2 v0.6 calls torch.jit.script at import time, which current torch flags as
    # deprecated on every import; nothing for users to act on.
    warnings.filterwarnings("ignore", message=r"`torch\.jit\.script` is deprecated",
                            category=FutureWarning)
    from .config import add_facecraft_config
    from . import data  # noqa: F401  registers the face datasets in DatasetCatalog
    from . import modeling  # noqa: F401  registers backbones / meta-architectures
    from . import model_zoo  # noqa: F401  registers the facecraft:// weights handler
    from .predictor import FaceDetections, FaceDetector

__version__ = "0.1.0"
__all__ = ["FaceDetections", "FaceDetector", "add_facecraft_config"]
