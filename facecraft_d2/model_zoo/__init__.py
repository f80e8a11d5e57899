# Copyright (c) facecraft_d2 contributors.
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

__all__ = [
    "ChecksumMismatchError",
    "get_checkpoint_path",
    "get_config",
    "get_config_file",
    "list_models",
    "load_model",
    "resolve_config",
    "resolve_model_name",
]
