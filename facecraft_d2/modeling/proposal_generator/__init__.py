# Copyright (c) facecraft_d2 contributors.
from .ignore_rpn import IgnoreRegionRPN

__all__ = ["IgnoreRegionRPN"]
