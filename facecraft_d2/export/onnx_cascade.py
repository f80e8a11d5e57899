# Copyright (c) facecraft_d2 contributors.
"""
ONNX export of the FaceCraft cascade, and the cascade running on onnxruntime.

The cascade's test pipeline has data-dependent steps (the pyramid depends on the image size,
the number of boxes on the scores), so it is not one static graph. What is exported are its
three networks, each with dynamic shapes:

    x12.onnx  "images" (N, 3, H, W) normalized  -> "logits" (N, 2, H', W'), "deltas" (N, 4, H', W')
              (fully convolutional, any H, W >= 12; H' = (H - 12) // 2 + 1)
    x24.onnx  "patches" (N, 3, 24, 24)          -> "logits" (N, 2), "deltas" (N, 4)
    x48.onnx  "patches" (N, 3, 48, 48)          -> "logits" (N, 2), "deltas" (N, 4)

and ``facecraft_onnx.json`` holds the model's config and its regression statistics. At run
time :func:`attach_onnxruntime` replaces the model's ``net`` by :class:`OnnxFaceCraftNet`,
whose methods have the same signatures as :class:`FaceCraftNet`'s but call onnxruntime
sessions, so the pyramid, thresholds, crops and NMS are the very same Python code as with
PyTorch, and the boxes agree to float rounding (tests/cli/test_export.py measures it).
"""
import copy
import hashlib
import json
import logging
import os
import warnings

import torch
from torch import nn

from detectron2.config import CfgNode

from ..config import build_config
from ..model_zoo.model_zoo import sha256_file
from ..modeling.cascade import STAGE_INPUT_SIZES

__all__ = ["EXPORT_MANIFEST", "OnnxFaceCraftNet", "attach_onnxruntime", "export_cascade_onnx",
           "load_export_config"]

logger = logging.getLogger(__name__)

EXPORT_MANIFEST = "facecraft_onnx.json"


class _Dense12(nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, images):
        return self.net.x12_dense(images)


class _Stage(nn.Module):
    def __init__(self, net, stage):
        super().__init__()
        self.net, self.stage = net, stage

    def forward(self, patches):
        return self.net(patches, upto=self.stage)[self.stage]


def export_cascade_onnx(model, cfg, out_dir, weights_sha256=None, opset=17):
    """
    Write x12.onnx, x24.onnx, x48.onnx and the manifest of a FaceCraftCascade into ``out_dir``.

    Args:
        model (FaceCraftCascade): the model with its weights loaded.
        cfg (CfgNode): its config (stored in the manifest, to rebuild the pipeline).
        out_dir (str): output folder (created).
        weights_sha256 (str): SHA-256 of the weights file, recorded to detect stale exports.
        opset (int): ONNX opset.
    Returns:
        dict: the manifest written.
    """
    if cfg.MODEL.META_ARCHITECTURE != "FaceCraftCascade":
        raise ValueError(f"ONNX export supports FaceCraftCascade models, not "
                         f"{cfg.MODEL.META_ARCHITECTURE}")
    os.makedirs(out_dir, exist_ok=True)
    net = copy.deepcopy(model.net).cpu().eval()  # the model itself stays where it is
    specs = {
        "x12": (_Dense12(net), torch.rand(1, 3, 40, 52), "images",
                {"images": {0: "batch", 2: "height", 3: "width"},
                 "logits": {0: "batch", 2: "map_height", 3: "map_width"},
                 "deltas": {0: "batch", 2: "map_height", 3: "map_width"}}),
    }
    for stage, size in ((s, STAGE_INPUT_SIZES[s]) for s in ("x24", "x48")):
        specs[stage] = (_Stage(net, stage), torch.rand(2, 3, size, size), "patches",
                        {"patches": {0: "batch"}, "logits": {0: "batch"}, "deltas": {0: "batch"}})
    files = {}
    for stage, (module, example, input_name, axes) in specs.items():
        path = os.path.join(out_dir, f"{stage}.onnx")
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
            torch.onnx.export(module, (example,), path, input_names=[input_name],
                              output_names=["logits", "deltas"], dynamic_axes=axes,
                              opset_version=opset, dynamo=False)
        files[stage] = os.path.basename(path)
    manifest = {
        "format": "facecraft_d2 cascade onnx v1",
        "files": files,
        "delta_mean": model.delta_mean.cpu().tolist(),
        "delta_std": model.delta_std.cpu().tolist(),
        "weights_sha256": weights_sha256,
        "config_sha256": config_digest(cfg),
        "opset": opset,
        "config": cfg.dump(),
    }
    with open(os.path.join(out_dir, EXPORT_MANIFEST), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2)
    return manifest


def _read_manifest(export_dir):
    path = os.path.join(export_dir, EXPORT_MANIFEST)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{export_dir} is not a facecraft ONNX export (no {EXPORT_MANIFEST})")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def load_export_config(export_dir):
    """The (unfrozen) config stored in an export's manifest, with no weights to load."""
    cfg = build_config()
    cfg.merge_from_other_cfg(CfgNode.load_cfg(_read_manifest(export_dir)["config"]))
    cfg.MODEL.WEIGHTS = ""
    return cfg


class OnnxFaceCraftNet(nn.Module):
    """
    Stand-in for :class:`FaceCraftNet` at inference: same ``x12_dense`` / ``forward``
    signatures, computed by onnxruntime sessions (CPU) on the exported graphs.
    """

    def __init__(self, export_dir, num_threads=None):
        super().__init__()
        import onnxruntime as ort

        manifest = _read_manifest(export_dir)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads or torch.get_num_threads()
        opts.log_severity_level = 3
        self.sessions = {
            stage: ort.InferenceSession(os.path.join(export_dir, name), opts,
                                        providers=["CPUExecutionProvider"])
            for stage, name in manifest["files"].items()
        }
        self.input_names = {stage: s.get_inputs()[0].name for stage, s in self.sessions.items()}

    def branch_modules(self, branch):
        """No trainable modules: the graphs live in onnxruntime."""
        return []

    def _run(self, stage, x):
        sess = self.sessions[stage]
        if x.shape[0] == 0:
            return x.new_zeros((0, 2)), x.new_zeros((0, 4))
        feed = {self.input_names[stage]: x.detach().cpu().contiguous().numpy()}
        logits, deltas = sess.run(["logits", "deltas"], feed)
        return torch.from_numpy(logits).to(x.device), torch.from_numpy(deltas).to(x.device)

    def x12_dense(self, images):
        """(N, 3, H, W) normalized images -> logits (N, 2, H', W'), deltas (N, 4, H', W')."""
        return self._run("x12", images)

    def forward(self, patches, upto="x48"):
        """
        (N, 3, S, S) normalized patches, S = 24 for ``upto="x24"`` and 48 for "x48" (the
        sizes the test pipeline crops) -> {upto: (logits (N, 2), deltas (N, 4))}.
        """
        size = STAGE_INPUT_SIZES.get(upto) if upto != "x12" else None
        if size is None or patches.shape[-1] != size:
            raise ValueError(f"the ONNX export runs {upto!r} on {size}x{size} patches only, got "
                             f"{tuple(patches.shape)}")
        return {upto: self._run(upto, patches)}


def attach_onnxruntime(model, export_dir):
    """
    Make a FaceCraftCascade (built from the export's config) run on the exported graphs: set
    its regression statistics from the manifest and replace ``model.net``. In place.
    """
    manifest = _read_manifest(export_dir)
    model.set_delta_stats(manifest["delta_mean"], manifest["delta_std"])
    model.net = OnnxFaceCraftNet(export_dir)
    # onnxruntime takes NCHW arrays: normalized inputs made channels-last would be copied back
    model.inference_pipeline.memory_format = torch.contiguous_format
    return model.eval()


def config_digest(cfg):
    """SHA-256 of a config without its weights path and device (what an export depends on)."""
    cfg = cfg.clone()
    cfg.defrost()
    cfg.MODEL.WEIGHTS, cfg.MODEL.DEVICE = "", "cpu"
    return hashlib.sha256(cfg.dump().encode("utf-8")).hexdigest()


def stale_export(export_dir, weights_path, cfg=None):
    """
    True if ``export_dir`` lacks its manifest or a graph, or was exported from other weights
    or (when ``cfg`` is given) from another config.
    """
    try:
        manifest = _read_manifest(export_dir)
    except (FileNotFoundError, ValueError):
        return True
    if not all(os.path.isfile(os.path.join(export_dir, f)) for f in manifest.get("files", {}).values()):
        return True
    if cfg is not None and manifest.get("config_sha256") != config_digest(cfg):
        return True
    return manifest.get("weights_sha256") != sha256_file(weights_path)
