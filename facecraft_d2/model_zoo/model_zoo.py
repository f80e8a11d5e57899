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

from detectron2.utils.file_io import PathManager

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
    The config of a shipped model (:func:`facecraft_d2.config.build_config` of its file, then
    its ``test_overrides``), its ``MODEL.WEIGHTS`` pointing at the checked weights when
    ``trained``.
    """
    from ..config import build_config

    entry = _entry(name)
    overrides = [str(v) for kv in entry.get("test_overrides", {}).items() for v in kv]
    cfg = build_config(get_config_file(entry["config"]), overrides)
    cfg.MODEL.WEIGHTS = get_checkpoint_path(name) if trained else ""
    return cfg


def resolve_model_name(name):
    """
    "cascade-joint", "Cascade_Joint" -> "cascade_joint" (a key of ``models.json``).

    Raises:
        KeyError: listing the shipped models, if there is no such model.
    """
    models = list_models()
    key = str(name).strip().lower().replace("-", "_")
    if key not in models:
        raise KeyError(f"no shipped model {name!r}; available: {', '.join(models)}")
    return key


def resolve_config(model, config_file=None, weights=None, opts=()):
    """
    The one way to a model's config: a shipped model (by name) or a config file, then
    ``weights`` (if given) as its ``MODEL.WEIGHTS`` and the ``opts`` overrides.

    Returns:
        tuple: (unfrozen CfgNode, model name: the shipped name or the config file's stem).
    """
    from ..config import build_config

    if config_file:
        cfg = build_config(config_file)
        name = os.path.splitext(os.path.basename(config_file))[0]
    else:
        name = resolve_model_name(model)
        cfg = get_config(name)
    if weights:
        cfg.MODEL.WEIGHTS = weights
    cfg.merge_from_list(list(opts))
    if cfg.MODEL.DEVICE.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            cfg.MODEL.DEVICE = "cpu"
    return cfg, name


def load_model(cfg, weights=None):
    """
    The one way to build a model and load its weights: ``build_model(cfg)`` in eval mode,
    with ``weights`` (default ``cfg.MODEL.WEIGHTS``; ``facecraft://<name>`` works) loaded
    weights-only by :class:`facecraft_d2.checkpoint.FaceCraftCheckpointer` (never running
    code from the file).

    Raises:
        FileNotFoundError: if the weights file does not exist.
    """
    from detectron2.modeling import build_model

    from ..checkpoint import FaceCraftCheckpointer

    weights = cfg.MODEL.WEIGHTS if weights is None else weights
    model = build_model(cfg)
    if weights:
        path = PathManager.get_local_path(weights)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"weights {weights!r} do not exist")
        FaceCraftCheckpointer(model).load(path)
    return model.eval()


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
