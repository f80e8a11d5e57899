# Copyright (c) facecraft_d2 contributors.
"""Fixtures for the dataset tests: tiny synthetic images and error checks."""

import logging
import os

import numpy as np
import pytest
from PIL import Image

from facecraft_d2.data.datasets.common import AnnotationFormatError


@pytest.fixture
def make_image():
    """``make_image(path, width=64, height=48)`` writes a small random JPEG and returns its path."""

    def _make(path, width=64, height=48):
        os.makedirs(os.path.dirname(str(path)), exist_ok=True)
        pixels = np.random.RandomState(0).randint(0, 255, (height, width, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(str(path), format="JPEG")
        return str(path)

    return _make


@pytest.fixture
def check_format_error():
    """
    ``check_format_error(excinfo, path, *parts)``: the error is an AnnotationFormatError whose
    ``path`` is the file and whose message names the file and contains every record part.
    """

    def _check(excinfo, path, *parts):
        err = excinfo.value
        assert isinstance(err, AnnotationFormatError)
        assert isinstance(err, ValueError)
        assert err.path == str(path)
        message = str(err)
        assert message.startswith("Malformed annotation file {}, record ".format(path)), message
        for part in parts:
            assert str(part) in err.record, (part, err.record)
            assert str(part) in message
        return err

    return _check


@pytest.fixture
def warnings_of():
    """``warnings_of(caplog, module)``: the WARNING records logged by a loader module."""

    def _get(caplog, module):
        return [
            r
            for r in caplog.records
            if r.levelno == logging.WARNING and r.name == "facecraft_d2.data.datasets." + module
        ]

    return _get
