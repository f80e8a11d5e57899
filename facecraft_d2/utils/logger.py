# Copyright (c) facecraft_d2 contributors.
"""
Log files without terminal colour codes.

Detectron2's ``default_setup`` logs the config highlighted by pygments, ``build_detection_*``
logs the dataset histogram in cyan (on terminals), and its stdout handler colours the prefix:
written as they are, ``log.txt`` and a redirected stdout are full of ANSI escape sequences.
Here, every handler of the project's loggers that does not write to a terminal writes plain
text; terminals keep their colours.
"""
import logging
import re

from detectron2.utils.logger import setup_logger

__all__ = ["ANSI_ESCAPE", "plain_log_files", "setup_plain_loggers"]

ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
"""An ANSI CSI escape sequence (colours, bold, blink...)."""
LOGGER_NAMES = ("detectron2", "fvcore", "facecraft_d2")


class _PlainFormatter(logging.Formatter):
    """The output of another formatter, without ANSI escape sequences."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def format(self, record):
        return ANSI_ESCAPE.sub("", self.inner.format(record))


def _on_terminal(handler):
    try:
        return bool(handler.stream.isatty())
    except (AttributeError, ValueError):  # no stream, or a closed one
        return False


def plain_log_files(names=LOGGER_NAMES):
    """
    Make the handlers of the loggers ``names`` that write to files (or to a stdout that is
    not a terminal) strip ANSI escape sequences; idempotent.
    """
    for name in names:
        for handler in logging.getLogger(name).handlers:
            if not _on_terminal(handler) and not isinstance(handler.formatter, _PlainFormatter):
                handler.setFormatter(_PlainFormatter(handler.formatter or logging.Formatter()))


def setup_plain_loggers(output_dir, distributed_rank=0):
    """
    Create the loggers of ``detectron2.engine.default_setup`` (with its very arguments, so that
    its own calls get these cached loggers back), and ``facecraft_d2``'s, all writing to
    ``output_dir/log.txt`` without colour codes. Call it before ``default_setup``, which logs
    the highlighted config as soon as its loggers exist.
    """
    setup_logger(output_dir, distributed_rank=distributed_rank, name="fvcore")
    setup_logger(output_dir, distributed_rank=distributed_rank)
    setup_logger(output_dir, distributed_rank=distributed_rank, name="facecraft_d2")
    plain_log_files()
