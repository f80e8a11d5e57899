# Copyright (c) facecraft_d2 contributors.
from ..checkpoint import FaceCraftCheckpointer, UnsafeCheckpointError
from .trainer import Trainer, build_face_evaluator

__all__ = ["FaceCraftCheckpointer", "Trainer", "UnsafeCheckpointError", "build_face_evaluator"]
