# Copyright (c) facecraft_d2 contributors.
"""
The ``facecraft`` command line (console script installed with the package):

    facecraft detect PATH... [--model NAME] [--out DIR] [--json] [--csv] [--fddb] ...
    facecraft eval --dataset NAME [--model NAME] [--out DIR]
    facecraft export --model NAME --format onnx [--out DIR]

One module per subcommand (``detect``, ``evaluate``, ``export``), each with
``add_parser(subparsers)`` and ``run(args) -> exit code``. Errors are one line on stderr
(``facecraft <command>: error: ...``) unless ``--verbose`` asks for the traceback.
"""
import argparse
import logging
import sys
import traceback
import warnings

__all__ = ["build_parser", "main"]

DESCRIPTION = ("facecraft_d2 face detectors (FaceCraft, CVPR 2016) on images, folders, videos and "
               "webcams; benchmark evaluation; ONNX export. Run 'facecraft COMMAND --help'.")


class _ArgumentParser(argparse.ArgumentParser):
    """Usage errors are one line too (``facecraft detect: error: argument --threshold: ...``)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def build_parser():
    from . import detect, evaluate, export

    parser = _ArgumentParser(prog="facecraft", description=DESCRIPTION)
    from .. import __version__

    parser.add_argument("--version", action="version", version=f"facecraft_d2 {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for module in (detect, evaluate, export):
        module.add_parser(sub)
    return parser


def main(argv=None):
    """Entry point of the ``facecraft`` console script; returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not {"-v", "--verbose"} & set(argv):
        warnings.simplefilter("ignore")  # library deprecation notices at import time
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose = getattr(args, "verbose", False)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"facecraft {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:  # one clear line unless --verbose
        if verbose:
            traceback.print_exc()
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        print(f"facecraft {args.command}: error: {msg}", file=sys.stderr)
        return 1
