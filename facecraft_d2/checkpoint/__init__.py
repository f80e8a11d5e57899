# Copyright (c) facecraft_d2 contributors.
"""Checkpoints saved atomically and loaded weights-only (as ``detectron2.checkpoint``)."""
from .checkpointer import FaceCraftCheckpointer, UnsafeCheckpointError, safe_torch_load

__all__ = ["FaceCraftCheckpointer", "UnsafeCheckpointError", "safe_torch_load"]
