# Copyright (c) facecraft_d2 contributors.
"""Shared pytest fixtures."""

import os

import pytest


@pytest.fixture(scope="session")
def datasets_root():
    """
    The real-data root ($DETECTRON2_DATASETS, e.g. ../shared/datasets).

    Unset: the real-data test is skipped. Set but missing: the test FAILS (CI sets it and must
    never skip silently).
    """
    root = os.environ.get("DETECTRON2_DATASETS")
    if not root:
        pytest.skip("DETECTRON2_DATASETS is not set; real-data tests are skipped")
    root = os.path.expanduser(root)
    if not os.path.isdir(root):
        pytest.fail("DETECTRON2_DATASETS={!r} is set but is not a folder".format(root))
    return root


@pytest.fixture(scope="session")
def shared_datasets_root(datasets_root):
    """Alias of :func:`datasets_root`."""
    return datasets_root
