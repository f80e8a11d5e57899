# Copyright (c) facecraft_d2 contributors.
"""
The models that ship inside facecraft_d2 (``model_zoo/weights/``), described in
``model_zoo/models.json`` and ``MODEL_ZOO.md``: each has a config, a weights file and its
SHA-256, which is checked whenever the file is opened.

Weights can be named in configs as ``facecraft://<model name>`` (e.g.
``MODEL.WEIGHTS facecraft://cascade_joint``); nothing is ever downloaded.
"""
import hashlib
import json
import os

from iopath.common.file_io import PathHandler

from detectron2.config import get_cfg
from detectron2.utils.file_io import PathManager

__all__ = ["ChecksumMismatchError", "get_checkpoint_path", "get_config", "get_config_file", "list_models"]

_HERE = os.path.dirname(os.path.abspath(__file__))
_WEIGHTS_DIR = os.path.join(_HERE, "weights")
_REGISTRY = os.path.join(_HERE, "models.json")
# configs/ of a source checkout (editable installs); installed wheels carry a copy.
_CONFIG_DIRS = (os.path.join(_HERE, "configs"), os.path.join(os.path.dirname(os.path.dirname(_HERE)), "configs"))


class ChecksumMismatchError(RuntimeError):
    """A shipped weights file does not have the SHA-256 recorded for it."""


def _registry():
    with open(_REGISTRY, encoding="utf-8") as f:
        return json.load(f)


def list_models():
    """Names of the shipped models."""
    return sorted(_registry())


def _entry(name):
    models = _registry()
    if name not in models:
        raise KeyError(f"no shipped model {name!r}; available: {sorted(models)}")
    return models[name]


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def get_checkpoint_path(name):
    """
    Path of a shipped model's weights, after checking its SHA-256.

    Raises:
        ChecksumMismatchError: if the file's SHA-256 differs from ``models.json``.
    """
    entry = _entry(name)
    path = os.path.join(_WEIGHTS_DIR, entry["weights"])
    if not os.path.isfile(path):
        raise FileNotFoundError(f"shipped weights of {name!r} are missing: {path}")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise ChecksumMismatchError(
            f"{path} has SHA-256 {digest}, but {name!r} was shipped with {entry['sha256']}: "
            "the file is corrupt or was replaced; reinstall facecraft_d2"
        )
    return path


def get_config_file(config_path):
    """Absolute path of a config under ``configs/`` (e.g. "cascade/joint.yaml")."""
    for d in _CONFIG_DIRS:
        path = os.path.join(d, config_path)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(f"config {config_path!r} not found in {list(_CONFIG_DIRS)}")


def get_config(name, trained=True):
    """
    The config of a shipped model (with ``add_facecraft_config`` applied), its
    ``MODEL.WEIGHTS`` pointing at the checked weights when ``trained``.
    """
    from ..config import add_facecraft_config

    cfg = get_cfg()
    add_facecraft_config(cfg)
    cfg.merge_from_file(get_config_file(_entry(name)["config"]))
    for key, value in _entry(name).get("test_overrides", {}).items():
        cfg.merge_from_list([key, value])
    cfg.MODEL.WEIGHTS = get_checkpoint_path(name) if trained else ""
    return cfg


class FaceCraftHandler(PathHandler):
    """Resolves ``facecraft://<name>`` to the checked path of a shipped model's weights."""

    PREFIX = "facecraft://"

    def _get_supported_prefixes(self):
        return [self.PREFIX]

    def _get_local_path(self, path, **kwargs):
        name = path[len(self.PREFIX):]
        return get_checkpoint_path(name[:-4] if name.endswith(".pth") else name)

    def _open(self, path, mode="r", **kwargs):
        return PathManager.open(self._get_local_path(path), mode, **kwargs)

    def _isfile(self, path, **kwargs):
        return os.path.isfile(self._get_local_path(path))


if FaceCraftHandler.PREFIX not in getattr(PathManager, "_path_handlers", {}):
    PathManager.register_handler(FaceCraftHandler())
