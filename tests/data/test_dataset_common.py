# Copyright (c) facecraft_d2 contributors.
"""Shared loader helpers: the error type, number parsing, image sizes, missing-image warnings."""

import logging
import pickle

import pytest
from PIL import Image

from facecraft_d2.data import AnnotationFormatError
from facecraft_d2.data.datasets.common import MissingImages, image_size, parse_numbers


def test_error_message_and_pickle():
    err = AnnotationFormatError("/a/gt.txt", "#3 'x.jpg' at line 7", "bad field")
    assert str(err) == "Malformed annotation file /a/gt.txt, record #3 'x.jpg' at line 7: bad field"
    assert isinstance(err, ValueError)
    again = pickle.loads(pickle.dumps(err))
    assert (again.path, again.record, again.reason) == (err.path, err.record, err.reason)


def test_parse_numbers():
    assert parse_numbers(["1", "2.5", "-3e1"], "f", "r") == [1.0, 2.5, -30.0]
    assert parse_numbers(["1", "2.0"], "f", "r", count=2, kind=int) == [1, 2]
    for tokens, kwargs in [
        (["1"], dict(count=2)),
        (["nan"], {}),
        (["inf"], {}),
        (["2.5"], dict(kind=int)),
    ]:
        with pytest.raises(AnnotationFormatError, match="record r"):
            parse_numbers(tokens, "f", "r", **kwargs)


@pytest.mark.parametrize("orientation, expected", [(None, (30, 50)), (1, (30, 50)), (6, (50, 30))])
def test_image_size_follows_exif_orientation(tmp_path, orientation, expected):
    path = str(tmp_path / "x.jpg")
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    Image.new("RGB", (50, 30)).save(path, exif=exif)
    assert image_size(path) == expected


def test_missing_images_warns_once(tmp_path, make_image, caplog):
    logger = logging.getLogger("facecraft_d2.test_missing")
    present = make_image(tmp_path / "a.jpg")
    missing = MissingImages(logger, "ann.txt", str(tmp_path), "some_name")
    with caplog.at_level(logging.WARNING):
        assert missing.check(present)
        missing.report()
        assert caplog.records == []  # nothing missing, nothing logged
        for k in range(5):
            assert not missing.check(str(tmp_path / "gone{}.jpg".format(k)))
        missing.report()
    (record,) = caplog.records
    message = record.getMessage()
    assert "'some_name' (ann.txt): 5 of 6 listed images are missing" in message
    assert str(tmp_path) in message and "gone0.jpg" in message and "gone3.jpg" not in message
