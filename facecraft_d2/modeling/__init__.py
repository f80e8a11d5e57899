# Copyright (c) facecraft_d2 contributors.
from .backbone import ZF, build_zf_backbone
from .cascade import FaceCraftNet
from .meta_arch import FaceCraftCascade, JointRCNN
from .proposal_generator import IgnoreRegionRPN

__all__ = ["ZF", "build_zf_backbone", "FaceCraftNet", "FaceCraftCascade", "JointRCNN", "IgnoreRegionRPN"]
