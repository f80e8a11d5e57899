# Copyright (c) facecraft_d2 contributors.
"""
The whole FaceCraft test pipeline as **one** ONNX graph: a photo in, its faces out, run by
ONNX Runtime with no Python between the stages (issue 15's "one graph" lever).

:mod:`.onnx_cascade` exports the three networks and keeps the pipeline (pyramid, pooling,
thresholds, crops, NMS) in Python. Here :class:`CascadeGraph` writes that pipeline with
tensor operations only, so that tracing it gives one graph with a dynamic input size:

    "image"  (1, 3, H, W) uint8 BGR  ->  "boxes" (K, 4) XYXY, "scores" (K,)

* the pyramid has a fixed number of levels (``max_levels``, enough for a shorter side of
  about 4,000 pixels at minimum face 24); each level's size is computed in the graph from
  H and W, and the levels a smaller image does not have (scale under 12 / shorter side) are
  resized to a 12 x 12 stub whose windows are masked out;
* x12 runs once per level (ONNX Runtime's per-node cost is small, so no mosaic), then the
  softmax, response-map max pooling (``MaxPool`` with stride 1), the threshold and the box
  regression;
* the stage NMS and the final NMS are ONNX ``NonMaxSuppression`` (torchvision's ``nms``),
  the crops ``RoiAlign`` (torchvision's ``roi_align``) on the pyramid level that
  :func:`facecraft_d2.layers.crop_from_pyramid` picks, x24 and x48 (with x48's test-time
  flip) run on all crops at once; box voting (if set), containment suppression, clipping
  and the top ``max_detections`` follow as in :class:`CascadeInference`.

Only the fast crop mode ("fast": crops resampled from the test pyramid) is written this way,
the preset this export is for; the graph computes in float32 (``TEST.BFLOAT16`` is ignored).
The pyramid levels are ONNX ``Resize`` with its anti-aliasing filter (opset 18), which rounds
8-bit pixels slightly differently from PyTorch's (under 1% of pixels differ, by a few grey
levels at borders), so the boxes are the PyTorch pipeline's up to such differences:
``tests/cli/test_export_graph.py`` measures the agreement.
"""
import copy
import os
import warnings

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import nms, roi_align

from ..layers import crop_level_index
from ..modeling.cascade import BRANCHES, STAGE_INPUT_SIZES
from ..modeling.cascade.pyramid import square_boxes, suppress_contained, vote_boxes

__all__ = ["GRAPH_FILE", "CascadeGraph", "export_cascade_graph", "OnnxCascadeGraphPipeline",
           "attach_onnx_graph"]

GRAPH_FILE = "cascade_graph.onnx"
"""The file name of the one-graph export inside an export folder."""


def _resize_aa_symbolic(g, input, output_size, align_corners, *scales):
    """ONNX (opset 18) ``Resize`` with anti-aliasing for ``aten::_upsample_bilinear2d_aa``
    (PyTorch's ``interpolate(..., antialias=True)``), which its TorchScript exporter lacks."""
    from torch.onnx import symbolic_helper

    shape = g.op("Shape", input)
    batch_channels = g.op("Slice", shape, g.op("Constant", value_t=torch.tensor([0])),
                          g.op("Constant", value_t=torch.tensor([2])))
    size = symbolic_helper._maybe_get_const(output_size, "is")
    if isinstance(size, list):
        size = g.op("Constant", value_t=torch.tensor(size, dtype=torch.int64))
    else:
        size = g.op("Cast", output_size, to_i=7)  # INT64
    sizes = g.op("Concat", batch_channels, size, axis_i=0)
    empty = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
    return g.op("Resize", input, empty, empty, sizes, mode_s="linear", antialias_i=1,
                coordinate_transformation_mode_s="half_pixel")


class CascadeGraph(nn.Module):
    """
    The fast-preset test pipeline of a :class:`FaceCraftCascade` on one image, in tensor
    operations only (traceable into one ONNX graph; it also runs as it is in PyTorch).
    """

    def __init__(self, model, max_levels=16):
        """
        Args:
            model (FaceCraftCascade): the cascade, weights loaded; its test settings
                (``model.inference_pipeline``) are copied.
            max_levels (int): pyramid levels in the graph (16: a shorter side up to about
                4,000 px at minimum face 24; larger images miss only their largest faces).
        """
        super().__init__()
        pipe = model.inference_pipeline
        if pipe.crop_mode != "fast":
            raise ValueError(f"the one-graph export writes the fast crop mode only, not "
                             f"{pipe.crop_mode!r} (use configs/cascade/joint_fast.yaml)")
        self.net = copy.deepcopy(model.net).cpu().eval()
        self.box2box = model.box2box
        for name in ("pixel_mean", "pixel_std", "delta_mean", "delta_std"):
            self.register_buffer(name, getattr(model, name).detach().cpu().clone(), False)
        first = 12 / float(pipe.min_face)
        self.scales = [first * pipe.pyramid_factor ** k for k in range(max_levels)]
        self.with_image_level = self.scales[0] < 1.0  # crops of small boxes come from the image
        self.uint8 = pipe.pyramid_uint8
        self.thresholds = tuple(pipe.score_thresholds)
        self.pool_kernel, self.max_proposals = pipe.pool_kernel, pipe.max_proposals
        self.stage_nms, self.nms = pipe.stage_nms_thresh, pipe.nms_thresh
        self.box_voting = pipe.box_voting_thresh
        self.containment, self.max_detections = pipe.containment_thresh, pipe.max_detections
        self.score_stages, self.flip_stages = tuple(pipe.score_stages), tuple(pipe.flip_stages)

    def _normalize(self, x):
        return (x - self.pixel_mean) / self.pixel_std

    def _regress(self, boxes, deltas):
        return self.box2box.apply_deltas(deltas * self.delta_std + self.delta_mean, boxes)

    def _pool(self, prob):
        """Response-map max pooling of (1, h, w) probabilities (see ``response_map_pool``)."""
        k = self.pool_kernel
        if k <= 1:
            return prob
        pooled = F.max_pool2d(prob[None], k, stride=1, padding=k // 2)[0]
        pooled = pooled[:, : prob.shape[1], : prob.shape[2]]
        return torch.where(prob >= pooled, prob, torch.zeros_like(prob))

    def _pyramid(self, image):
        """
        Returns: list of (scale, level (1, 3, h, w) float, crop-valid (bool scalar),
        searched (bool scalar)); levels the image does not have are 12 x 12 stubs.
        """
        h = torch.as_tensor(image.shape[2], dtype=torch.float64)
        w = torch.as_tensor(image.shape[3], dtype=torch.float64)
        min_scale = 12.0 / torch.minimum(h, w)
        src = image if self.uint8 else image.float()
        levels = []
        for s in self.scales:
            lh, lw = torch.round(h * s), torch.round(w * s)
            exists = s >= min_scale - 1e-9
            searched = exists & (torch.minimum(lh, lw) >= 12)
            size_h = torch.maximum(lh, torch.full_like(lh, 12)).to(torch.int64)
            size_w = torch.maximum(lw, torch.full_like(lw, 12)).to(torch.int64)
            level = F.interpolate(src, size=(size_h, size_w), mode="bilinear",
                                  align_corners=False, antialias=True)
            levels.append((s, level.float(), exists, searched))
        return levels

    def _stage1(self, levels):
        """x12 on every level -> boxes (K, 4), x12 probabilities (K,), at most max_proposals."""
        boxes, deltas, scores = [], [], []
        for s, level, _, searched in levels:
            logits, reg = self.net.x12_dense(self._normalize(level))
            prob = self._pool(F.softmax(logits, dim=1)[:, 1]) * searched.float()
            ys, xs = torch.nonzero(prob[0] >= self.thresholds[0], as_tuple=True)
            x1, y1 = xs.float() * 2 / s, ys.float() * 2 / s
            side = torch.full_like(x1, 12 / s)
            boxes.append(torch.stack([x1, y1, x1 + side, y1 + side], dim=1))
            deltas.append(reg[0, :, ys, xs].t())
            scores.append(prob[0, ys, xs])
        boxes, deltas, scores = torch.cat(boxes), torch.cat(deltas), torch.cat(scores)
        top = scores.argsort(descending=True)[: self.max_proposals]
        return self._regress(boxes[top], deltas[top]), scores[top]

    def _crops(self, image, levels, boxes, size):
        """(K, 3, size, size) crops of square boxes, each from the smallest level on which it
        still spans ``size`` pixels (``crop_from_pyramid`` with ``resample=True``)."""
        sources = [(1.0, image.float(), torch.ones((), dtype=torch.bool))] if self.with_image_level else []
        sources += [(s, level, exists) for s, level, exists, _ in levels]
        level_idx = crop_level_index(boxes.new_tensor([s for s, _, _ in sources]), boxes, size,
                                     usable=torch.stack([e for _, _, e in sources]))
        out = boxes.new_zeros((boxes.shape[0], 3, size, size))
        for i, (s, level, _) in enumerate(sources):
            sel = torch.nonzero(level_idx == i)[:, 0]
            rois = torch.cat([boxes.new_zeros((sel.shape[0], 1)), boxes[sel] * s], dim=1)
            out[sel] = roi_align(level, rois, (size, size), 1.0, 0, True)
        return out

    def forward(self, image):
        """
        Args:
            image (Tensor): (1, 3, H, W) uint8 BGR image.
        Returns:
            boxes (K, 4) XYXY in image coordinates and scores (K,), by decreasing score.
        """
        levels = self._pyramid(image)
        boxes, p12 = self._stage1(levels)
        probs = {"x12": p12}
        last = p12
        for stage, thresh in zip(BRANCHES[1:], self.thresholds[1:]):
            if self.stage_nms < 1.0:
                keep = nms(boxes, last, self.stage_nms).sort().values
                boxes, probs = boxes[keep], {k: v[keep] for k, v in probs.items()}
            boxes = square_boxes(boxes)
            inputs = self._normalize(self._crops(image, levels, boxes, STAGE_INPUT_SIZES[stage]))
            logits, deltas = self.net(inputs, upto=stage)[stage]
            prob = F.softmax(logits, dim=1)[:, 1]
            if stage in self.flip_stages:
                prob = (prob + F.softmax(self.net(inputs.flip(-1), upto=stage)[stage][0], dim=1)[:, 1]) / 2
            keep = torch.nonzero(prob >= thresh)[:, 0]
            boxes = self._regress(boxes[keep], deltas[keep])
            probs = {k: v[keep] for k, v in probs.items()}
            probs[stage] = last = prob[keep]
        scores = torch.stack([probs[b] for b in self.score_stages], dim=1)
        scores = scores.clamp(min=1e-12).log().mean(dim=1).exp()
        # clip to the image, drop empty boxes (CascadeInference._per_image)
        h = torch.as_tensor(image.shape[2], dtype=torch.float32)
        w = torch.as_tensor(image.shape[3], dtype=torch.float32)
        x1, y1, x2, y2 = boxes.clamp(min=0).unbind(dim=1)
        boxes = torch.stack([torch.minimum(x1, w), torch.minimum(y1, h),
                             torch.minimum(x2, w), torch.minimum(y2, h)], dim=1)
        valid = torch.nonzero((boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1]))[:, 0]
        boxes, scores = boxes[valid], scores[valid]
        keep = nms(boxes, scores, self.nms)
        if self.box_voting < 1.0:
            boxes, scores = vote_boxes(boxes[keep], boxes, scores, self.box_voting), scores[keep]
        else:
            boxes, scores = boxes[keep], scores[keep]
        if self.containment < 1.0:
            keep = torch.nonzero(suppress_contained(boxes, scores, self.containment))[:, 0]
            boxes, scores = boxes[keep], scores[keep]
        return boxes[: self.max_detections], scores[: self.max_detections]


def export_cascade_graph(model, out_path, max_levels=16, opset=18):
    """
    Trace :class:`CascadeGraph` of a FaceCraftCascade (fast crop mode) into one ONNX file.

    Args:
        model (FaceCraftCascade): weights loaded, test settings as wanted.
        out_path (str): the .onnx file to write.
    Returns:
        str: ``out_path``.
    """
    torch.onnx.register_custom_op_symbolic("aten::_upsample_bilinear2d_aa", _resize_aa_symbolic,
                                           opset)
    graph = CascadeGraph(model, max_levels).eval()
    example = torch.randint(0, 256, (1, 3, 120, 160), dtype=torch.uint8,
                            generator=torch.Generator().manual_seed(0))
    os.makedirs(os.path.dirname(os.path.abspath(out_path)), exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # tracer notices about shape arithmetic
        torch.onnx.export(graph, (example,), out_path, input_names=["image"],
                          output_names=["boxes", "scores"],
                          dynamic_axes={"image": {2: "height", 3: "width"},
                                        "boxes": {0: "detections"}, "scores": {0: "detections"}},
                          opset_version=opset, dynamo=False)
    return out_path


class OnnxCascadeGraphPipeline:
    """
    Stand-in for a cascade's ``inference_pipeline`` that runs the one-graph export on ONNX
    Runtime: ``pipeline(model, images)`` -> per image (boxes (K, 4), scores (K,)). Whole-image
    detection only (no ``upto``, ``with_probs`` or ``trace``).
    """

    memory_format = torch.contiguous_format  # what the model's train()/eval() read

    def __init__(self, path, num_threads=None, min_face=None):
        """
        Args:
            path (str): the one-graph export (``GRAPH_FILE``).
            num_threads (int): ONNX Runtime's intra-op threads (None: torch's).
            min_face (float): the minimum face the graph was exported with (for reports).
        """
        import onnxruntime as ort

        self.min_face = min_face

        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads or torch.get_num_threads()
        opts.log_severity_level = 3
        self.session = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])

    def __call__(self, model, images, upto=None, with_probs=False, trace=None):
        if upto is not None or with_probs or trace is not None:
            raise NotImplementedError("the one-graph ONNX export detects whole images only")
        results = []
        for img in images:
            img = img.round().clamp(0, 255).to(torch.uint8) if img.dtype != torch.uint8 else img
            boxes, scores = self.session.run(["boxes", "scores"],
                                             {"image": img[None].cpu().contiguous().numpy()})
            results.append((torch.from_numpy(boxes), torch.from_numpy(scores)))
        return results


def attach_onnx_graph(model, path):
    """
    Make a FaceCraftCascade detect through the one-graph export at ``path`` (exported from
    this model and its test settings, which the graph has baked in). In place.
    """
    model.inference_pipeline = OnnxCascadeGraphPipeline(
        path, min_face=model.inference_pipeline.min_face)
    return model.eval()
