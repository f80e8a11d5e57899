# Copyright (c) facecraft_d2 contributors.
"""
Export a face detector to ONNX, with dynamic input size.

A cascade is exported as its three networks (x12 fully convolutional on any (N, 3, H, W)
image, x24 and x48 on (N, 3, 24, 24) / (N, 3, 48, 48) crops) plus facecraft_onnx.json (the
config and regression statistics); 'facecraft detect --backend onnxruntime --model DIR' runs
the same pipeline on them with onnxruntime and gives the same boxes as PyTorch.

Examples:
  facecraft export --model cascade_joint --format onnx --out exported/cascade_joint
  facecraft detect photo.jpg --backend onnxruntime --model exported/cascade_joint
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
    p.add_argument("--format", choices=["onnx"], default="onnx", help="export format")
    p.add_argument("--out", default=None, metavar="DIR",
                   help="output folder (default: $FACECRAFT_CACHE/onnx/<model>, where "
                        "'detect --backend onnxruntime --model <name>' looks for it)")
    p.add_argument("--opset", type=checked(POSITIVE_INT), default=17, help="ONNX opset version")
    add_verbose_option(p)
    p.set_defaults(func=run)
    return p


def run(args):
    from ..export import EXPORT_MANIFEST, export_model

    out = export_model(args.model, out_dir=args.out, config_file=args.config_file,
                       weights=args.weights, opset=args.opset)
    files = sorted(f for f in os.listdir(out) if f.endswith(".onnx") or f == EXPORT_MANIFEST)
    print(f"exported to {out}: {', '.join(files)}")
    print(f"run it with: facecraft detect IMAGE --backend onnxruntime --model {out}", file=sys.stderr)
    return 0
