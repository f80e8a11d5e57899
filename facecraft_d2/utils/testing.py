# Copyright (c) facecraft_d2 contributors.
"""
Synthetic image and video files for tests and measuring tools (like
``detectron2.utils.testing``): one writer per hard case of :mod:`facecraft_d2.utils.image_io`.
Everything is generated; nothing comes from a dataset.
"""
import os
import struct
import zlib

import numpy as np
from PIL import Image

__all__ = ["BAD_IMAGE_CASES", "load_tool", "synthetic_face_image", "write_bad_image", "write_huge_jpeg",
           "write_huge_png", "write_video"]


def synthetic_face_image(height=96, width=128, seed=0):
    """
    A (H, W, 3) uint8 BGR test image: smooth noise with a bright ellipse ("face") and two dark
    dots ("eyes"). Detectors may or may not fire on it; it exercises every code path.
    """
    rng = np.random.default_rng(seed)
    img = (rng.random((height, width, 3)) * 60 + 60).astype(np.float32)
    yy, xx = np.mgrid[:height, :width]
    cy, cx, ry, rx = height * 0.5, width * 0.5, height * 0.3, width * 0.18
    face = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1
    img[face] = (140, 170, 210)
    for ex in (cx - rx * 0.4, cx + rx * 0.4):
        img[((yy - (cy - ry * 0.2)) ** 2 + (xx - ex) ** 2) <= (rx * 0.12) ** 2] = (40, 40, 40)
    return img.astype(np.uint8)


def _segment(marker, payload):
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def write_huge_jpeg(path, width=30000, height=20000):
    """
    Write a valid baseline grayscale JPEG of ``width`` x ``height`` (multiples of 8) without
    ever holding its pixels: every 8x8 block is uniform gray, coded with one-symbol Huffman
    tables (DC difference 0, then end-of-block) as 2 zero bits, so the file is
    width*height/256 bytes (2.3 MB for 30000x20000, a 600-megapixel image).
    """
    if width % 8 or height % 8 or width * height % 32:
        raise ValueError("width and height must be multiples of 8 (and blocks a multiple of 4)")
    with open(path, "wb") as f:
        f.write(b"\xff\xd8")  # SOI
        f.write(_segment(0xDB, b"\x00" + bytes([1] * 64)))  # DQT: table 0, all ones
        f.write(_segment(0xC0, struct.pack(">BHHB", 8, height, width, 1) + b"\x01\x11\x00"))
        one_code = bytes([1] + [0] * 15)  # one code of length 1 ("0")
        f.write(_segment(0xC4, b"\x00" + one_code + b"\x00"))  # DC table 0: category 0
        f.write(_segment(0xC4, b"\x10" + one_code + b"\x00"))  # AC table 0: EOB
        f.write(_segment(0xDA, b"\x01\x01\x00\x00\x3f\x00"))  # SOS
        nbytes = width * height // 64 * 2 // 8
        chunk = bytes(1 << 20)
        for start in range(0, nbytes, len(chunk)):
            f.write(chunk[: min(len(chunk), nbytes - start)])
        f.write(b"\xff\xd9")  # EOI


def write_huge_png(path, width=30000, height=20000):
    """Write an 8-bit grayscale black PNG of any size, streaming its rows (a few MB on disk)."""
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")

        def chunk(kind, data):
            f.write(struct.pack(">I", len(data)) + kind + data)
            f.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))

        chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
        comp, row, out = zlib.compressobj(1), bytes(width + 1), []
        rows_per_block = max(1, (1 << 22) // (width + 1))
        for start in range(0, height, rows_per_block):
            out.append(comp.compress(row * min(rows_per_block, height - start)))
        out.append(comp.flush())
        chunk(b"IDAT", b"".join(out))
        chunk(b"IEND", b"")


def write_bad_image(case, folder):
    """
    Write one hard case (a name in :data:`BAD_IMAGE_CASES`) into ``folder``; returns its path.
    """
    bgr = synthetic_face_image()
    rgb = Image.fromarray(bgr[:, :, ::-1].copy())
    path = os.path.join(folder, BAD_IMAGE_CASES[case])
    if case == "truncated_jpeg":
        rgb.save(path + ".tmp", "JPEG", quality=90)
        data = open(path + ".tmp", "rb").read()
        os.remove(path + ".tmp")
        open(path, "wb").write(data[: len(data) // 2])
    elif case == "not_an_image":
        open(path, "w").write("this is a text file, not an image\n")
    elif case == "empty":
        open(path, "wb").close()
    elif case == "one_pixel":
        Image.new("RGB", (1, 1), (128, 128, 128)).save(path)
    elif case == "grayscale_png":
        rgb.convert("L").save(path)
    elif case == "rgba_png":
        alpha = np.full(bgr.shape[:2], 255, np.uint8)
        alpha[: bgr.shape[0] // 2] = 0  # top half transparent, bottom half opaque
        rgba = rgb.convert("RGBA")
        rgba.putalpha(Image.fromarray(alpha))
        rgba.save(path)
    elif case == "palette_png":
        rgb.convert("P", palette=Image.ADAPTIVE, colors=64).save(path)
    elif case == "gray16_png":
        gray16 = np.asarray(rgb.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(gray16).save(path)
    elif case == "rgb16_png":
        import cv2

        cv2.imwrite(path, bgr.astype(np.uint16) * 257)
    elif case == "cmyk_jpeg":
        rgb.convert("CMYK").save(path, "JPEG", quality=90)
    elif case == "exif_rotated_jpeg":
        # stored landscape, displayed portrait: orientation 6 = rotate 90 degrees clockwise
        exif = Image.Exif()
        exif[0x0112] = 6
        rgb.save(path, "JPEG", quality=90, exif=exif.tobytes())
    elif case == "huge_jpeg":
        write_huge_jpeg(path)
    elif case == "huge_png":
        write_huge_png(path)
    else:
        raise KeyError(f"unknown case {case!r}; choose from {sorted(BAD_IMAGE_CASES)}")
    return path


BAD_IMAGE_CASES = {
    "truncated_jpeg": "truncated.jpg",
    "not_an_image": "notes.jpg",
    "empty": "empty.png",
    "one_pixel": "one_pixel.png",
    "grayscale_png": "gray.png",
    "rgba_png": "rgba.png",
    "palette_png": "palette.png",
    "gray16_png": "gray16.png",
    "rgb16_png": "rgb16.png",
    "cmyk_jpeg": "cmyk.jpg",
    "exif_rotated_jpeg": "exif_rotated.jpg",
    "huge_jpeg": "huge_30000x20000.jpg",
    "huge_png": "huge_30000x20000.png",
}
"""Case name -> file name written by :func:`write_bad_image`."""


def write_video(path, num_frames=6, size=(128, 96), fps=5, damage=None):
    """
    Write a short MJPG ``.avi`` of synthetic frames with ``cv2.VideoWriter``, then optionally
    damage it: ``"truncate"`` cuts off the second half of the file (a video that ends early),
    ``"zero_middle"`` overwrites its middle fifth with zeros (corrupt partway through).
    """
    import cv2

    writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*"MJPG"), fps, size)
    if not writer.isOpened():
        raise RuntimeError(f"OpenCV cannot write {path}")
    for i in range(num_frames):
        frame = synthetic_face_image(size[1], size[0], seed=i)
        writer.write(np.roll(frame, 4 * i, axis=1))
    writer.release()
    data = bytearray(open(path, "rb").read())
    n = len(data)
    if damage == "truncate":
        data = data[: n // 2]
    elif damage == "zero_middle":
        data[2 * n // 5: 3 * n // 5] = bytes(3 * n // 5 - 2 * n // 5)
    elif damage is not None:
        raise ValueError(f"damage must be None, 'truncate' or 'zero_middle', got {damage!r}")
    open(path, "wb").write(bytes(data))
    return path


def load_tool(name):
    """
    A script of a source checkout's ``tools/`` folder (not a package) as a module, for tests:
    ``load_tool("train_net").main(args)``.
    """
    import importlib.util

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    spec = importlib.util.spec_from_file_location(name, os.path.join(root, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
