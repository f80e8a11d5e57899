# Copyright (c) facecraft_d2 contributors.
"""The shipped models (as ``detectron2.model_zoo``): their configs, checked weights, and the
one way to resolve a config and build a model."""
from .model_zoo import (
    ChecksumMismatchError,
    get_checkpoint_path,
    get_config,
    get_config_file,
    list_models,
    load_model,
    resolve_config,
    resolve_model_name,
)

__all__ = [k for k in globals().keys() if not k.startswith("_")]
