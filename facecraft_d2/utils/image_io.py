# Copyright (c) facecraft_d2 contributors.
"""
Robust image loading for inference (:class:`facecraft_d2.FaceDetector` and ``facecraft detect``).

Every input gets a defined outcome: a (H, W, 3) uint8 array, or one :class:`ImageLoadError`
whose message names the file and says what is wrong with it. What is handled:

* empty files, files that are not images, truncated or corrupt image data -> ImageLoadError;
* any Pillow mode: grayscale (L, 1), 16-bit (I;16, I), float (F), palette (P), RGBA / LA /
  transparent palettes (composited over white), CMYK and YCbCr -> 3 channels, 8 bits;
* EXIF orientation: the image is rotated / flipped to its **displayed orientation** (as
  :func:`detectron2.data.detection_utils.read_image` does), so boxes are in the coordinates
  of the image as viewers show it, not of the stored pixel grid;
* huge images: above ``max_pixels`` the image is downscaled while it is decoded (JPEG DCT
  scaling through Pillow's ``draft``, so the full-size pixels are never in memory), then
  resized to fit; :attr:`LoadedImage.scale` tells how to map boxes back. Non-JPEG images
  above ``max_decode_pixels`` cannot be decoded at reduced size and are refused.
"""
import contextlib
import math
import os
import warnings
from dataclasses import dataclass, field

import cv2
import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

__all__ = [
    "DEFAULT_MAX_DECODE_PIXELS",
    "DEFAULT_MAX_PIXELS",
    "IMAGE_EXTENSIONS",
    "ImageLoadError",
    "LoadedImage",
    "channel_order_matters",
    "convert_image",
    "load_image",
]

DEFAULT_MAX_PIXELS = 16_000_000
"""Images with more pixels are downscaled to at most this many (about 4900x3300) before
detection: the cascade's peak memory grows with the pixel count (about +0.8 GB at 16 MP,
+1.9 GB at 37.5 MP, measured by tools/measure_huge_image.py)."""
DEFAULT_MAX_DECODE_PIXELS = 180_000_000
"""Largest non-JPEG image decoded at all (Pillow's decompression-bomb limit): about 540 MB."""
_EXIF_ORIENTATION = 0x0112
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm",
                    ".pgm", ".jfif")
"""Suffixes treated as images when a folder is searched."""


class ImageLoadError(ValueError):
    """An input that cannot be turned into an image; ``str(err)`` is ``"<file>: <reason>"``."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = str(path), reason


@dataclass
class LoadedImage:
    """
    Attributes:
        image (np.ndarray): (H, W, 3) uint8 in the requested channel order.
        original_size (tuple[int, int]): (height, width) of the displayed image at full size.
        scale (float): ``image`` size / original size (1.0 unless a huge image was downscaled);
            divide box coordinates by it to get original-image coordinates.
        notes (list[str]): what was done to the file (downscaling, EXIF rotation, mode).
    """

    image: np.ndarray
    original_size: tuple
    scale: float = 1.0
    notes: list = field(default_factory=list)


@contextlib.contextmanager
def _own_size_policy():
    """Disable Pillow's global decompression-bomb check: :func:`load_image` applies its own."""
    old = Image.MAX_IMAGE_PIXELS
    Image.MAX_IMAGE_PIXELS = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            yield
    finally:
        Image.MAX_IMAGE_PIXELS = old


def _to_array(img, format):
    """
    Any Pillow image -> (H, W, 3) uint8 array in ``format``, with as few full-size copies as
    possible; 16-bit and float grayscale are scaled to 8 bits, alpha is composited over white.
    """
    mode = img.mode
    if mode.startswith("I") or mode == "F":  # 16/32-bit integer or float grayscale
        arr = np.asarray(img, dtype=np.float32)
        top = float(arr.max()) if arr.size else 0.0
        if mode == "F" and top <= 1.0:
            arr = arr * 255.0
        elif top > 255:
            arr = arr * (255.0 / (65535.0 if top <= 65535 else top))
        img, mode = Image.fromarray(np.clip(np.rint(arr), 0, 255).astype(np.uint8), "L"), "L"
    if mode in ("L", "1"):
        gray = np.asarray(img.convert("L") if mode == "1" else img)
        out = np.empty(gray.shape + (3,), dtype=np.uint8)
        out[...] = gray[:, :, None]
        return out
    has_alpha = mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        mode == "P" and "transparency" in img.info
    )
    if has_alpha:
        rgba = img.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    out = np.array(img if img.mode == "RGB" else img.convert("RGB"))
    if format == "BGR":
        cv2.cvtColor(out, cv2.COLOR_RGB2BGR, dst=out)
    return out


def channel_order_matters(image):
    """
    Whether ``image`` is an array whose colours change with its channel order: (H, W, 3) or
    (H, W, 4) with different channels (gray images stored in 3 channels are the same either way).

    The order itself cannot be told from the pixels reliably: on matplotlib's
    ``grace_hopper.jpg`` (navy uniform, red and blue flag) both orders have 19-20% skin-coloured
    pixels, and on 400 WIDER FACE / FDDB photos a skin-colour test (Kovac's rule, both orders
    compared) flagged 29-40 of them as RGB when given in BGR order and caught only 213-272 of
    them given in RGB order; so callers ask for the order instead of guessing it.
    """
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] not in (3, 4):
        return False
    return not (np.array_equal(image[:, :, 0], image[:, :, 1])
                and np.array_equal(image[:, :, 1], image[:, :, 2]))


def convert_image(image, format="BGR", input_format="BGR"):
    """
    An in-memory image -> (H, W, 3) uint8 array in ``format``.

    Args:
        image (np.ndarray or PIL.Image.Image): a PIL image (any mode), or an array
            (H, W) or (H, W, 1) grayscale (copied into the 3 channels), (H, W, 3) in
            ``input_format`` order, or (H, W, 4) with alpha last; uint8, uint16 (scaled to
            8 bits) or float in [0, 1] or [0, 255].
        format (str): "BGR" or "RGB", the channel order returned.
        input_format (str): "BGR" (OpenCV, ``cv2.imread``) or "RGB" (PIL, matplotlib,
            imageio): the channel order of a 3/4-channel array. Ignored for PIL images.
    Returns:
        np.ndarray: (H, W, 3) uint8, C-contiguous.
    """
    for f in (format, input_format):
        if f not in ("BGR", "RGB"):
            raise ValueError(f"format must be 'BGR' or 'RGB', got {f!r}")
    if isinstance(image, Image.Image):
        return _to_array(ImageOps.exif_transpose(image), format)
    arr = np.asarray(image)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)) or 0 in arr.shape:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {arr.shape}")
    if arr.dtype == np.uint16:
        arr = (arr.astype(np.float32) / 257.0)
    elif arr.dtype.kind == "f":
        arr = arr * 255.0 if arr.size and float(np.nanmax(arr)) <= 1.0 else arr
    if arr.dtype != np.uint8:
        arr = np.clip(np.rint(np.nan_to_num(arr)), 0, 255).astype(np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
        input_format = format
    elif arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        arr = np.rint(arr[:, :, :3] * alpha + 255.0 * (1.0 - alpha)).astype(np.uint8)
    if input_format != format:
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr)


def _open(path):
    if os.path.isdir(path):
        raise ImageLoadError(path, "is a directory, not an image")
    if not os.path.exists(path):
        raise ImageLoadError(path, "no such file")
    if os.path.getsize(path) == 0:
        raise ImageLoadError(path, "empty file (0 bytes)")
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        raise ImageLoadError(path, "not an image (Pillow cannot identify the file format)") from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(path, f"cannot read the image header ({e})") from None


def load_image(path, format="BGR", max_pixels=DEFAULT_MAX_PIXELS,
               max_decode_pixels=DEFAULT_MAX_DECODE_PIXELS):
    """
    Read an image file for detection, whatever its mode, orientation or size.

    Args:
        path (str): the file.
        format (str): "BGR" (Detectron2 models, OpenCV) or "RGB".
        max_pixels (int): larger images are downscaled to about this many pixels (None: never).
        max_decode_pixels (int): larger non-JPEG images are refused (JPEG is decoded at 1/2,
            1/4 or 1/8 size, so its limit is 64x this).
    Returns:
        LoadedImage: the (H, W, 3) uint8 image in displayed orientation, and how it was made.
    Raises:
        ImageLoadError: naming the file, if it cannot be loaded.
    """
    path = os.fspath(path)
    notes = []
    with _own_size_policy():
        img = _open(path)
        with img:
            w, h = img.size
            pixels = w * h
            if w < 1 or h < 1:
                raise ImageLoadError(path, f"has no pixels ({w}x{h})")
            factor = math.sqrt(pixels / max_pixels) if max_pixels and pixels > max_pixels else 1.0
            is_jpeg = img.format == "JPEG"
            limit = max_decode_pixels * (64 if is_jpeg else 1)
            if max_decode_pixels and pixels > limit:
                raise ImageLoadError(
                    path, f"image is too large: {w}x{h} ({pixels / 1e6:.0f} MP) exceeds the "
                    f"{limit / 1e6:.0f} MP that can be decoded for {img.format} files; "
                    "downscale it first (only JPEG is decoded at reduced size)")
            if factor > 1.0 and is_jpeg:
                # DCT scaling: decode directly at 1/2, 1/4 or 1/8 size, the first that fits
                r = next((r for r in (2, 4, 8) if pixels / r ** 2 <= max_pixels), 8)
                img.draft(None, (math.ceil(w / r), math.ceil(h / r)))
            try:
                img.load()
            except (OSError, SyntaxError, ValueError, EOFError) as e:
                reason = str(e) or type(e).__name__
                kind = "truncated" if "truncated" in reason else "corrupt"
                raise ImageLoadError(path, f"{kind} image data ({reason})") from None
            if not ImageFile.LOAD_TRUNCATED_IMAGES and getattr(img, "tile", None):
                raise ImageLoadError(path, "truncated image data (decoding stopped early)")
            orientation = img.getexif().get(_EXIF_ORIENTATION, 1)
            out = ImageOps.exif_transpose(img)
            disp_w, disp_h = (h, w) if orientation in (5, 6, 7, 8) else (w, h)
            if orientation not in (None, 1):
                notes.append(f"EXIF orientation {orientation} applied (boxes are in displayed orientation)")
            if factor > 1.0:
                target = (max(1, round(disp_w / factor)), max(1, round(disp_h / factor)))
                if out.size[0] > target[0]:  # never upscale what draft already reduced
                    out = out.resize(target, Image.BILINEAR, reducing_gap=2.0)
                notes.append(f"downscaled from {disp_w}x{disp_h} to {out.size[0]}x{out.size[1]} "
                             f"(above {max_pixels / 1e6:.0f} MP); boxes are mapped back")
            if img.mode != "RGB":
                notes.append(f"converted from mode {img.mode}")
            arr = _to_array(out, format)
    scale = arr.shape[1] / float(disp_w)
    return LoadedImage(arr, (disp_h, disp_w), scale, notes)
