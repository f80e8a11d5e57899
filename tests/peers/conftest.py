# Copyright (c) facecraft_d2 contributors.
"""Fixtures for the peer-detector tests: an MTCNN built and run with the network blocked."""
import socket
import urllib.request

import cv2
import pytest


def _no_network(*args, **kwargs):
    raise AssertionError("a peer detector tried to access the network: {} {}".format(args, kwargs))


def block_network(monkeypatch):
    """Make every socket connection and urllib request fail loudly."""
    monkeypatch.setattr(socket.socket, "connect", _no_network)
    monkeypatch.setattr(socket.socket, "connect_ex", _no_network)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(urllib.request, "urlopen", _no_network)


INSTALL_HINT = "facenet-pytorch missing: pip install --no-deps facenet-pytorch==2.6.0 requests"


@pytest.fixture
def no_network(monkeypatch):
    """Block network access for the duration of a test."""
    block_network(monkeypatch)


@pytest.fixture(scope="session")
def mtcnn_detector():
    """One MTCNNDetector (default settings), built with the network blocked (see ``no_network``)."""
    pytest.importorskip("facenet_pytorch", reason=INSTALL_HINT)
    from facecraft_d2.peers import MTCNNDetector

    with pytest.MonkeyPatch.context() as mp:
        block_network(mp)
        detector = MTCNNDetector()
    return detector


@pytest.fixture(scope="session")
def grace_hopper_bgr():
    """matplotlib's bundled sample photo as an (600, 512, 3) uint8 BGR array."""
    from matplotlib import cbook

    image = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), cv2.IMREAD_COLOR)
    assert image is not None and image.shape == (600, 512, 3)
    return image
