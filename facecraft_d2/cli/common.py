# Copyright (c) facecraft_d2 contributors.
"""Options shared by the ``facecraft`` subcommands, and building the detector they name."""
import argparse

from ..utils.image_io import DEFAULT_MAX_PIXELS
from ..predictor import MIN_FACE, POSITIVE_INT, SCORE_THRESHOLD

__all__ = ["add_model_options", "add_verbose_option", "build_detector", "checked", "formatter"]


class formatter(argparse.RawDescriptionHelpFormatter):
    """
    Help with the description's line breaks kept and each option's default shown once: added
    as "(default: X)" unless the help already speaks of its default, or there is none to show
    (None, False for flags).
    """

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default in (None, False, [], argparse.SUPPRESS):
            return text
        return text + " (default: %(default)s)"


def checked(number_range):
    """
    An argparse ``type=`` from a :class:`facecraft_d2.predictor.NumberRange`, so that the
    command line refuses what :class:`FaceDetector` would, at parse time, in one line
    (``argument --threshold: must be a number in [0, 1], got 2``).
    """

    def parse(text):
        try:
            return number_range(text)
        except ValueError as e:
            raise argparse.ArgumentTypeError(str(e)) from None

    return parse


def add_verbose_option(parser):
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log progress details and show full tracebacks on errors")


def add_model_options(parser, detection=True):
    """--model / --config-file / --weights (+ detection settings when ``detection``)."""
    g = parser.add_argument_group("model")
    g.add_argument("--model", default="cascade_joint",
                   help="shipped model name (see MODEL_ZOO.md; '-' or '_')" + (
                       ", or with --backend onnxruntime a folder written by 'facecraft export'"
                       if detection else ""))
    g.add_argument("--config-file", default=None,
                   help="a facecraft_d2 YAML config instead of a shipped model")
    g.add_argument("--weights", default=None, help="weights for --config-file (.pth)")
    g.add_argument("--device", default=None, help="'cpu' or 'cuda' (default: cuda if available)")
    if not detection:
        return g
    g.add_argument("--threshold", type=checked(SCORE_THRESHOLD), default=None,
                   help="minimum face score kept (0-1; default: the model's, chosen on its "
                        "validation split); lower finds more faces and more false positives "
                        "(evaluation protocols use all scores)")
    g.add_argument("--min-face", type=checked(MIN_FACE), default=None,
                   help="smallest face searched, in pixels (default: the model's, 24 for the "
                        "cascades); smaller is slower")
    g.add_argument("--preset", choices=["accurate", "fast"], default=None,
                   help="cascades: 'fast' crops from the image pyramid (paper section 6.5) "
                        "with the settings of configs/cascade/joint_fast.yaml, 'accurate' "
                        "resizes each box; R-CNN: 'fast' runs at 3/4 of the model's test "
                        "scale with 100 proposals, about 2x faster, fewer small faces "
                        "(default: the model's config)")
    g.add_argument("--backend", choices=["torch", "onnxruntime"], default="torch",
                   help="run the networks with PyTorch or with onnxruntime on the ONNX export "
                        "(cascades; exported into $FACECRAFT_CACHE on first use)")
    g.add_argument("--max-pixels", type=checked(POSITIVE_INT), default=DEFAULT_MAX_PIXELS,
                   help="images with more pixels are downscaled to this many for detection "
                        "(boxes are reported at full size)")
    g.add_argument("--batch-size", type=checked(POSITIVE_INT), default=4,
                   help="images per model call")
    g.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE",
                   help="config overrides, e.g. MODEL.FACECRAFT.TEST.NMS_THRESH 0.4")
    return g


def build_detector(args):
    """A :class:`FaceDetector` from the parsed model options."""
    from ..predictor import FaceDetector

    return FaceDetector(
        args.model, config_file=args.config_file, weights=args.weights,
        score_threshold=args.threshold, min_face=args.min_face, preset=args.preset,
        backend=args.backend, device=args.device, opts=args.opts,
        max_pixels=args.max_pixels, batch_size=args.batch_size,
    )
