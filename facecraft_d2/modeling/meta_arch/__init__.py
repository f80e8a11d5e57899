# Copyright (c) facecraft_d2 contributors.
from .facecraft_cascade import FaceCraftCascade

__all__ = ["FaceCraftCascade"]
