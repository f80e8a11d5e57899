# Copyright (c) facecraft_d2 contributors.
from .allocator import DEFAULT_MMAP_THRESHOLD, malloc_trimmer, set_mmap_threshold, tune_allocator

__all__ = ["DEFAULT_MMAP_THRESHOLD", "malloc_trimmer", "set_mmap_threshold", "tune_allocator"]
