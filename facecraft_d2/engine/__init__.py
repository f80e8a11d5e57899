# Copyright (c) facecraft_d2 contributors.
from .trainer import Trainer, build_face_evaluator

__all__ = ["Trainer", "build_face_evaluator"]
