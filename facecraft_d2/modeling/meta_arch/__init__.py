# Copyright (c) facecraft_d2 contributors.
from .facecraft_cascade import FaceCraftCascade
from .joint_rcnn import JointRCNN

__all__ = ["FaceCraftCascade", "JointRCNN"]
