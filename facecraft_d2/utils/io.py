# Copyright (c) facecraft_d2 contributors.
"""Files written atomically: checkpoints, caches' manifests, results."""
import contextlib
import json
import os
import tempfile

__all__ = ["TEMP_SUFFIX", "atomic_write", "atomic_write_json"]

TEMP_SUFFIX = ".tmp"
"""Suffix of the temporary files of :func:`atomic_write` (never ``.pth``)."""


def _fsync_dir(directory):
    """Make a rename in ``directory`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_write(path, write, mode="wb"):
    """
    Write a file atomically: ``write(f)`` fills a temporary file in the same folder, which is
    flushed, ``fsync``-ed and renamed over ``path`` (``os.replace``). Readers, and a process
    that restarts after a kill, see either the previous content of ``path`` or the new one.

    Args:
        path (str): the local file to (re)place.
        write (callable): ``write(f)`` writes the content to the open file object ``f``.
        mode (str): "wb" (binary) or "w" (text).
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(
        prefix="." + os.path.basename(path) + ".", suffix=TEMP_SUFFIX, dir=directory
    )
    try:
        os.fchmod(fd, 0o644)  # mkstemp creates 0600; checkpoints are ordinary files
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(directory)


def atomic_write_json(path, obj, indent=1):
    """Write ``obj`` as JSON to ``path`` with :func:`atomic_write`."""
    atomic_write(path, lambda f: json.dump(obj, f, indent=indent), mode="w")
