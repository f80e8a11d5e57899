# Copyright (c) facecraft_d2 contributors.
"""
glibc allocator settings for long detection runs.

Images of varying sizes make the cascade allocate pyramid levels and crop batches of varying
sizes; with glibc's default *dynamic* mmap threshold, freed large blocks pile up in the heap
and the resident memory of a process that detects over thousands of images creeps up (+848 MiB
over 2,000 detections in ``tools/memory_soak.py``) although nothing leaks. A fixed threshold of
128 KiB maps every large block separately and returns it to the OS when freed (+17 MiB over the
same run). See docs/reliability.md.
"""
import ctypes
import logging
import os

__all__ = ["DEFAULT_MMAP_THRESHOLD", "malloc_trimmer", "set_mmap_threshold", "tune_allocator"]

logger = logging.getLogger(__name__)

DEFAULT_MMAP_THRESHOLD = 128 * 1024
_M_MMAP_THRESHOLD = -3  # mallopt parameter number in glibc's malloc.h


def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def malloc_trimmer():
    """
    glibc's ``malloc_trim(0)`` as a callable (None elsewhere): it hands the freed parts of
    the heap back to the OS.
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "malloc_trim"):
        return None
    return lambda: libc.malloc_trim(0)


def set_mmap_threshold(num_bytes):
    """
    glibc ``mallopt(M_MMAP_THRESHOLD, num_bytes)``, like starting Python with
    ``MALLOC_MMAP_THRESHOLD_=<num_bytes>``: blocks from this size up are mapped and given back
    to the OS when freed, and glibc's dynamic threshold is switched off.

    Returns:
        bool: whether it was applied (False off glibc).
    """
    libc = _libc()
    if libc is None or not hasattr(libc, "mallopt"):
        return False
    return bool(libc.mallopt(_M_MMAP_THRESHOLD, int(num_bytes)))


def tune_allocator(num_bytes=DEFAULT_MMAP_THRESHOLD):
    """
    Keep resident memory flat over long runs (the ``facecraft`` command and
    :class:`facecraft_d2.FaceDetector` call this once): set glibc's mmap threshold, unless the
    user chose one with the ``MALLOC_MMAP_THRESHOLD_`` environment variable.

    Returns:
        bool: whether the threshold was set here.
    """
    if "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    applied = set_mmap_threshold(num_bytes)
    if not applied:
        logger.debug("glibc's mallopt is not available: allocator left as it is")
    return applied
