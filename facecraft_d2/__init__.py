# Copyright (c) facecraft_d2 contributors.
"""FaceCraft (Qin et al., CVPR 2016) face detectors as a Detectron2 plugin."""
from .config import add_facecraft_config
from . import data  # noqa: F401  registers the face datasets in DatasetCatalog
from . import modeling  # noqa: F401  registers backbones / meta-architectures
from . import model_zoo  # noqa: F401  registers the facecraft:// weights handler

__version__ = "0.1.0"
__all__ = ["add_facecraft_config"]
