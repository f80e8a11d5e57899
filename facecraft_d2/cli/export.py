# Copyright (c) facecraft_d2 contributors.
"""
Export a face detector to ONNX, with dynamic input size.

A cascade is exported as its three networks (x12 fully convolutional on any (N, 3, H, W)
image, x24 and x48 on (N, 3, 24, 24) / (N, 3, 48, 48) crops) plus facecraft_onnx.json (the
config and regression statistics); 'facecraft detect --backend onnxruntime --model DIR' runs
the same pipeline on them with onnxruntime and gives the same boxes as PyTorch.

'--format onnx-graph' writes the whole fast-preset pipeline (pyramid, x12, pooling, crops,
x24, x48, NMS) as one file, cascade_graph.onnx: input "image" (1, 3, H, W) uint8 BGR, outputs
"boxes" (K, 4) and "scores" (K,), for any ONNX Runtime (C++, C#, Java, JavaScript) with no
Python around it.

Examples:
  facecraft export --model cascade_joint --format onnx --out exported/cascade_joint
  facecraft detect photo.jpg --backend onnxruntime --model exported/cascade_joint
  facecraft export --model cascade_joint --format onnx-graph --out exported/cascade_joint_graph
"""
import os
import sys

from ..predictor import POSITIVE_INT
from .common import add_verbose_option, checked, formatter

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    p = subparsers.add_parser("export", help="export a model to ONNX (dynamic input size)",
                              description=__doc__, formatter_class=formatter)
    p.add_argument("--model", default="cascade_joint",
                   help="shipped model name (see MODEL_ZOO.md); cascades only")
    p.add_argument("--config-file", default=None, help="a cascade config instead of --model")
    p.add_argument("--weights", default=None, help="weights for --config-file (.pth)")
    p.add_argument("--format", choices=["onnx", "onnx-graph"], default="onnx",
                   help="onnx: the three networks (the pipeline stays in Python); onnx-graph: "
                        "the whole fast-preset pipeline as one graph")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: $FACECRAFT_CACHE/onnx/<model>, where "
                        "'detect --backend onnxruntime --model <name>' looks for it)")
    p.add_argument("--opset", type=checked(POSITIVE_INT), default=None,
                   help="ONNX opset version (default: 17 for onnx, 18 for onnx-graph, whose "
                        "anti-aliased Resize needs 18)")
    add_verbose_option(p)
    p.set_defaults(func=run)
    return p


def run(args):
    from ..export import EXPORT_MANIFEST, export_graph_model, export_model

    if args.format == "onnx-graph":
        path = export_graph_model(args.model, out_dir=args.out, config_file=args.config_file,
                                  weights=args.weights, opset=args.opset or 18)
        print(f"exported to {path}")
        print("inputs: image (1, 3, H, W) uint8 BGR; outputs: boxes (K, 4) XYXY, scores (K,)",
              file=sys.stderr)
        return 0
    out = export_model(args.model, out_dir=args.out, config_file=args.config_file,
                       weights=args.weights, opset=args.opset or 17)
    files = sorted(f for f in os.listdir(out) if f.endswith(".onnx") or f == EXPORT_MANIFEST)
    print(f"exported to {out}: {', '.join(files)}")
    print(f"run it with: facecraft detect IMAGE --backend onnxruntime --model {out}", file=sys.stderr)
    return 0
