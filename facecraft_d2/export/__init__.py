# Copyright (c) facecraft_d2 contributors.
"""Export of facecraft_d2 models (ONNX) and running them on other runtimes."""
import logging
import os
import shutil
import tempfile

from .onnx_cascade import (
    EXPORT_MANIFEST,
    OnnxFaceCraftNet,
    attach_onnxruntime,
    export_cascade_onnx,
    load_export_config,
    stale_export,
)
from .onnx_graph import (
    GRAPH_FILE,
    CascadeGraph,
    OnnxCascadeGraphPipeline,
    attach_onnx_graph,
    export_cascade_graph,
)

__all__ = [
    "EXPORT_MANIFEST",
    "GRAPH_FILE",
    "CascadeGraph",
    "OnnxCascadeGraphPipeline",
    "attach_onnx_graph",
    "export_cascade_graph",
    "export_graph_model",
    "OnnxFaceCraftNet",
    "attach_onnxruntime",
    "default_cache_dir",
    "export_model",
    "export_cascade_onnx",
    "load_export_config",
    "onnx_export_dir",
]

logger = logging.getLogger(__name__)


def default_cache_dir():
    """Where ONNX exports of shipped models are cached: ``$FACECRAFT_CACHE`` or
    ``~/.cache/facecraft_d2``, subfolder ``onnx``."""
    root = os.environ.get("FACECRAFT_CACHE") or os.path.join(os.path.expanduser("~"), ".cache",
                                                              "facecraft_d2")
    return os.path.join(root, "onnx")


def _build_torch_model(model, config_file=None, weights=None, preset=None):
    """(model in eval mode with weights, cfg, weights path, name) of a shipped or config
    model, optionally with a test preset of :data:`facecraft_d2.predictor.PRESETS`."""
    from detectron2.utils.file_io import PathManager

    from ..model_zoo import load_model, resolve_config

    cfg, name = resolve_config(model, config_file, weights, opts=["MODEL.DEVICE", "cpu"])
    if preset is not None:
        from ..predictor import _preset_opts

        cfg.merge_from_list(_preset_opts(cfg, preset))
    path = PathManager.get_local_path(cfg.MODEL.WEIGHTS) if cfg.MODEL.WEIGHTS else ""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weights {cfg.MODEL.WEIGHTS!r} of {name} do not exist")
    cfg.MODEL.WEIGHTS = path
    return load_model(cfg), cfg, path, name


def export_model(model="cascade_joint", out_dir=None, config_file=None, weights=None, opset=17):
    """
    Export a shipped model (by name) or a config + weights to ONNX.

    Returns:
        str: the folder written (default ``<cache>/<name>``, see :func:`default_cache_dir`).
    """
    from ..model_zoo.model_zoo import sha256_file

    net, cfg, path, name = _build_torch_model(model, config_file, weights)
    out_dir = os.path.abspath(out_dir or os.path.join(default_cache_dir(), name))
    # write next to the target, then swap it in: readers never see a half-written export
    os.makedirs(os.path.dirname(out_dir), exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=os.path.basename(out_dir) + ".tmp-", dir=os.path.dirname(out_dir))
    try:
        export_cascade_onnx(net, cfg, tmp, weights_sha256=sha256_file(path), opset=opset)
        if os.path.isdir(out_dir):
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    finally:
        if os.path.isdir(tmp):
            shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def export_graph_model(model="cascade_joint", out_dir=None, config_file=None, weights=None,
                       opset=18):
    """
    Export a shipped cascade (by name) or a config + weights, with its fast preset, as one
    ONNX graph that runs the whole test pipeline (:mod:`.onnx_graph`): image in, faces out.

    Returns:
        str: the file written, ``<out_dir>/cascade_graph.onnx`` (default ``out_dir``:
        ``<cache>/<name>_graph``, see :func:`default_cache_dir`).
    """
    net, cfg, _, name = _build_torch_model(model, config_file, weights, preset="fast")
    if cfg.MODEL.META_ARCHITECTURE != "FaceCraftCascade":
        raise ValueError(f"the one-graph export supports FaceCraftCascade models, not "
                         f"{cfg.MODEL.META_ARCHITECTURE}")
    out_dir = os.path.abspath(out_dir or os.path.join(default_cache_dir(), name + "_graph"))
    return export_cascade_graph(net, os.path.join(out_dir, GRAPH_FILE), opset=opset)


def onnx_export_dir(model, config_file=None, weights=None):
    """
    The export folder to run: ``model`` itself if it is one, else the cached export of the
    named model (or config), written now if missing, incomplete, or made from other weights
    or another config.
    """
    if model and os.path.isfile(os.path.join(str(model), EXPORT_MANIFEST)):
        return str(model)
    if config_file:
        from detectron2.utils.file_io import PathManager

        from ..model_zoo import resolve_config

        cfg, _ = resolve_config(None, config_file)
        path = PathManager.get_local_path(weights or cfg.MODEL.WEIGHTS)
        name = os.path.splitext(os.path.basename(config_file))[0]
        out_dir = os.path.join(default_cache_dir(), name)
        if not os.path.isfile(path) or stale_export(out_dir, path, cfg):
            export_model(out_dir=out_dir, config_file=config_file, weights=weights)
        return out_dir
    from ..model_zoo import get_checkpoint_path, get_config, resolve_model_name

    name = resolve_model_name(model)
    out_dir = os.path.join(default_cache_dir(), name)
    if stale_export(out_dir, get_checkpoint_path(name), get_config(name, trained=False)):
        logger.info("exporting %s to ONNX in %s", name, out_dir)
        export_model(name, out_dir)
    return out_dir
