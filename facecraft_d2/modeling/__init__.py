# Copyright (c) facecraft_d2 contributors.
from .backbone import ZF, build_zf_backbone

__all__ = ["ZF", "build_zf_backbone"]
