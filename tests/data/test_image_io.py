# Copyright (c) facecraft_d2 contributors.
"""Bad and unusual image files: each loads, or fails with one ImageLoadError naming the file."""
import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from facecraft_d2.utils.image_io import ImageLoadError, convert_image, load_image
from facecraft_d2.utils.testing import BAD_IMAGE_CASES, synthetic_face_image, write_bad_image

# case -> (expected outcome, text the error must contain)
ERRORS = {
    "truncated_jpeg": "truncated",
    "not_an_image": "not an image",
    "empty": "empty file",
    "huge_png": "too large",
}
LOADS = ["one_pixel", "grayscale_png", "rgba_png", "palette_png", "gray16_png", "rgb16_png",
         "cmyk_jpeg", "exif_rotated_jpeg"]


def test_every_case_is_classified():
    assert set(ERRORS) | set(LOADS) | {"huge_jpeg"} == set(BAD_IMAGE_CASES)


@pytest.mark.parametrize("case", sorted(ERRORS))
def test_bad_files_raise_one_error_naming_the_file(case, tmp_path):
    path = write_bad_image(case, str(tmp_path))
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    msg = str(info.value)
    assert msg.startswith(path + ": ")
    assert ERRORS[case] in msg
    assert "\n" not in msg


@pytest.mark.parametrize("case", LOADS)
def test_unusual_modes_load_as_8bit_bgr(case, tmp_path):
    path = write_bad_image(case, str(tmp_path))
    out = load_image(path)
    img = out.image
    assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
    assert img.flags["C_CONTIGUOUS"]
    assert out.scale == 1.0
    assert out.original_size == img.shape[:2]
    if case == "one_pixel":
        assert img.shape == (1, 1, 3)
        return
    ref = synthetic_face_image()  # what write_bad_image encoded (BGR)
    gray_ref = np.asarray(Image.fromarray(ref[:, :, ::-1]).convert("L"), dtype=np.float32)
    if case == "exif_rotated_jpeg":
        # stored 128 wide x 96 high with orientation 6: displayed 96 wide x 128 high, i.e.
        # the stored pixels rotated 90 degrees clockwise
        assert img.shape[:2] == (128, 96)
        with Image.open(path) as im:
            stored = np.asarray(im.convert("RGB"))[:, :, ::-1]  # pixels as stored, no EXIF
        assert (img == np.rot90(stored, k=-1)).all()
    elif case in ("grayscale_png", "gray16_png"):
        assert np.abs(img[:, :, 0].astype(np.float32) - gray_ref).max() <= 1
        assert (img[:, :, 0] == img[:, :, 2]).all()
    elif case == "rgba_png":
        # the top half is transparent, the bottom half opaque
        assert (img[:48] == 255).all(), "transparent pixels are composited over white"
        assert (img[48:] == ref[48:]).all()
    else:  # palette (64 colours), 16-bit RGB, CMYK JPEG: close to the original colours
        assert np.abs(img.astype(np.float32) - ref).mean() < 8


def test_rgb_order(tmp_path):
    path = write_bad_image("rgb16_png", str(tmp_path))
    bgr = load_image(path, format="BGR").image
    rgb = load_image(path, format="RGB").image
    assert (bgr[:, :, ::-1] == rgb).all()


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        load_image(str(tmp_path / "nope.jpg"))
    with pytest.raises(ImageLoadError, match="is a directory"):
        load_image(str(tmp_path))


_MEASURE = r"""
import importlib.util, resource, sys
# the module alone, without importing torch through the facecraft_d2 package
spec = importlib.util.spec_from_file_location("image_io", sys.argv[2])
image_io = importlib.util.module_from_spec(spec)
spec.loader.exec_module(image_io)
load_image = image_io.load_image
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
out = load_image(sys.argv[1])
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(out.image.shape[0], out.image.shape[1], out.original_size[0], out.original_size[1],
      out.scale, (after - before) / 1024.0)
"""


def test_huge_jpeg_is_downscaled_with_bounded_memory(tmp_path):
    """30000x20000 (600 MP; 1.8 GB as RGB): decoded at 1/4 size, peak memory measured."""
    path = write_bad_image("huge_jpeg", str(tmp_path))
    module = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__)))), "facecraft_d2", "utils", "image_io.py")
    res = subprocess.run([sys.executable, "-c", _MEASURE, path, module], capture_output=True,
                         text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    h, w, oh, ow, scale, extra_mb = res.stdout.split()
    assert (int(oh), int(ow)) == (20000, 30000)
    assert int(h) * int(w) <= 16_000_000 and float(scale) == pytest.approx(int(w) / 30000)
    print(f"huge JPEG: loaded {w}x{h}, peak memory +{float(extra_mb):.0f} MB")
    assert float(extra_mb) < 400, f"loading took {extra_mb} MB more peak memory"


def test_huge_jpeg_notes(tmp_path):
    path = write_bad_image("huge_jpeg", str(tmp_path))
    out = load_image(path, max_pixels=1_000_000)
    assert out.image.shape[0] * out.image.shape[1] <= 1_000_000
    assert any("downscaled from 30000x20000" in n for n in out.notes)
    assert out.original_size == (20000, 30000)


@pytest.mark.parametrize("fmt", ["BGR", "RGB"])
def test_convert_arrays(fmt):
    bgr = synthetic_face_image(20, 30)
    rgb = bgr[:, :, ::-1]
    assert (convert_image(bgr, format=fmt, input_format="BGR")
            == convert_image(rgb, format=fmt, input_format="RGB")).all()
    pil = Image.fromarray(np.ascontiguousarray(rgb))
    assert (convert_image(pil, format=fmt) == convert_image(bgr, format=fmt)).all()
    gray = convert_image(bgr[:, :, 0], format=fmt)
    assert gray.shape == (20, 30, 3) and (gray[:, :, 0] == bgr[:, :, 0]).all()
    assert (convert_image(bgr.astype(np.float32) / 255.0, format=fmt)
            == convert_image(bgr, format=fmt)).all()
    assert (convert_image(bgr.astype(np.uint16) * 257, format=fmt)
            == convert_image(bgr, format=fmt)).all()
    rgba = np.concatenate([bgr, np.zeros((20, 30, 1), np.uint8)], axis=2)
    assert (convert_image(rgba, format=fmt) == 255).all()


@pytest.mark.parametrize("shape", [(0, 5, 3), (4, 5, 2), (2, 3, 4, 5)])
def test_convert_rejects_bad_shapes(shape):
    with pytest.raises(ValueError, match="expected an"):
        convert_image(np.zeros(shape, np.uint8))


def test_no_dataset_images_are_used(tmp_path):
    """Everything above is generated: the folder holds only what the writers made."""
    for case in ("grayscale_png", "cmyk_jpeg"):
        write_bad_image(case, str(tmp_path))
    assert sorted(os.listdir(tmp_path)) == ["cmyk.jpg", "gray.png"]
