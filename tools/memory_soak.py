#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Memory soak: run a face detector over many images (the dataset images repeated) and check
that resident memory stays flat after a warm-up.

    python tools/memory_soak.py                        # 2,000 detections on 400 images
    python tools/memory_soak.py --images 50 --distinct 10 --max-image-side 320  # quick check
    python tools/memory_soak.py --config-file configs/cascade/joint_fast.yaml \\
        --weights facecraft://cascade_joint

Images: ``--distinct`` files spread evenly over the sorted FDDB and WIDER FACE val images under
$DETECTRON2_DATASETS (or ``--image-dir``), cycled until ``--images`` detections have run.
The warm-up defaults to one pass over them: the allocator's high-water mark depends on the
largest image seen, so only the later passes, which repeat images already seen, can show a
leak. Resident memory (VmRSS) is sampled every ``--every`` images; the verdict compares the
largest RSS after the warm-up with the RSS right after it: PASS if it grew by at most
``--max-growth-mb``. The script also prints the RSS trend after the warm-up (least-squares
slope, MiB per 1,000 images), writes the figures as JSON with ``--json``, and exits with
status 1 on FAIL.
"""
import argparse
import gc
import glob
import itertools
import json
import os
import sys
import time

import cv2
import torch

from facecraft_d2.evaluation.run import build_eval_model
from facecraft_d2.utils import DEFAULT_MMAP_THRESHOLD, malloc_trimmer, set_mmap_threshold

DEFAULT_IMAGE_DIRS = ("FDDB/originalPics", "widerface/WIDER_val/images")


def rss_mb():
    """Resident set size of this process in MiB (``VmRSS`` of /proc/self/status)."""
    try:
        import psutil  # optional

        return psutil.Process().memory_info().rss / 2**20
    except ImportError:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024.0
    raise RuntimeError("cannot read the resident memory of this process")


def list_images(image_dirs):
    """All .jpg/.png files under the given folders, sorted (a fixed order for every run)."""
    files = []
    for d in image_dirs:
        for ext in ("jpg", "jpeg", "png"):
            files += glob.glob(os.path.join(d, "**", "*." + ext), recursive=True)
    return sorted(set(files))


def spread(files, n):
    """``n`` files spread evenly over ``files`` (all of them if ``n`` <= 0 or too large)."""
    if n <= 0 or n >= len(files):
        return list(files)
    return [files[i * len(files) // n] for i in range(n)]


def slope_per_1000(samples):
    """Least-squares slope of RSS (MiB) per 1,000 images over ``samples`` [(images, MiB)]."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mx = sum(x for x, _ in samples) / n
    my = sum(y for _, y in samples) / n
    var = sum((x - mx) ** 2 for x, _ in samples)
    return 1000.0 * sum((x - mx) * (y - my) for x, y in samples) / var if var else 0.0


def soak(model, files, num_images, warmup, every, max_side=0, log=print, after_image=None):
    """
    Detect faces in ``num_images`` images cycled from ``files`` and sample RSS.

    Returns:
        dict: ``samples`` [(images done, RSS MiB)], ``rss_after_warmup``, ``rss_max``,
        ``rss_end``, ``growth_mb`` (max after warm-up minus after warm-up), ``images``,
        ``faces``, ``seconds`` and ``images_per_s`` (after the warm-up).
    """
    samples, faces = [], 0
    rss_warm, start = None, time.perf_counter()
    t_warm = start
    with torch.inference_mode():
        for i, path in enumerate(itertools.islice(itertools.cycle(files), num_images), 1):
            image = cv2.imread(path, cv2.IMREAD_COLOR)  # BGR, as cfg.INPUT.FORMAT
            if image is None:
                raise RuntimeError(f"cannot read image {path}")
            height, width = image.shape[:2]
            if 0 < max_side < max(height, width):
                scale = max_side / max(height, width)
                image = cv2.resize(image, (round(width * scale), round(height * scale)),
                                   interpolation=cv2.INTER_AREA)
            tensor = torch.as_tensor(image.transpose(2, 0, 1).copy())
            out = model([{"image": tensor, "height": image.shape[0], "width": image.shape[1]}])
            faces += len(out[0]["instances"])
            del out, tensor, image
            if after_image is not None:
                after_image()
            if i == warmup:
                gc.collect()
                rss_warm, t_warm = rss_mb(), time.perf_counter()
                samples.append((i, rss_warm))
                log(f"[{i:5d}] rss {rss_warm:8.1f} MiB  (after warm-up)")
            elif i % every == 0 or i == num_images:
                rss = rss_mb()
                samples.append((i, rss))
                rate = (i - warmup) / max(time.perf_counter() - t_warm, 1e-9) if i > warmup else 0
                log(f"[{i:5d}] rss {rss:8.1f} MiB  {rate:5.2f} images/s")
    seconds = time.perf_counter() - t_warm
    after = [rss for n, rss in samples if n >= warmup]
    rss_warm = rss_warm if rss_warm is not None else samples[0][1]
    return {
        "samples": samples,
        "images": num_images,
        "warmup": warmup,
        "faces": faces,
        "rss_after_warmup": rss_warm,
        "rss_max": max(after),
        "rss_end": samples[-1][1],
        "growth_mb": max(after) - rss_warm,
        "slope_mb_per_1000": slope_per_1000([(n, rss) for n, rss in samples if n >= warmup]),
        "seconds": seconds,
        "images_per_s": (num_images - warmup) / max(seconds, 1e-9),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config-file", default="configs/cascade/joint_fast.yaml")
    parser.add_argument("--weights", default="facecraft://cascade_joint")
    parser.add_argument("--images", type=int, default=2000, help="detections to run")
    parser.add_argument("--distinct", type=int, default=400,
                        help="distinct images, spread over the dataset images (0: all)")
    parser.add_argument("--warmup", type=int, default=0,
                        help="images before the baseline RSS (default: one pass, --distinct)")
    parser.add_argument("--every", type=int, default=100, help="sample RSS every N images")
    parser.add_argument("--max-growth-mb", type=float, default=50.0,
                        help="allowed RSS growth after the warm-up (MiB)")
    parser.add_argument("--max-image-side", type=int, default=0,
                        help="downscale images whose longer side exceeds this (0: keep size)")
    parser.add_argument("--image-dir", action="append", default=None,
                        help="image folder (repeatable); default: FDDB and WIDER val images")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--malloc-trim", action="store_true",
                        help="call glibc malloc_trim(0) after each image")
    parser.add_argument("--mmap-threshold-kb", type=int, default=DEFAULT_MMAP_THRESHOLD // 1024,
                        help="set glibc's M_MMAP_THRESHOLD to this many KiB first, as the "
                        "facecraft command and FaceDetector do (0: glibc's dynamic default)")
    parser.add_argument("--json", default="", help="write the figures to this JSON file")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[], help="KEY VALUE overrides")
    args = parser.parse_args(argv)

    torch.set_num_threads(args.threads)
    mmap_threshold = args.mmap_threshold_kb > 0 and set_mmap_threshold(args.mmap_threshold_kb * 1024)
    root = os.environ.get("DETECTRON2_DATASETS", "datasets")
    dirs = args.image_dir or [os.path.join(root, d) for d in DEFAULT_IMAGE_DIRS]
    files = spread(list_images(dirs), args.distinct)
    if not files:
        parser.error(f"no images found under {dirs}")
    args.warmup = args.warmup or len(files)
    if not 0 < args.warmup < args.images:
        parser.error(f"need 0 < warm-up ({args.warmup}) < --images ({args.images})")
    model, cfg = build_eval_model(args.config_file, args.weights, ["MODEL.DEVICE", "cpu", *args.opts])
    print(f"memory soak: {args.images} images cycled from {len(files)} files in {dirs}; "
          f"model {args.config_file} ({args.weights}); warm-up {args.warmup}; max image side "
          f"{args.max_image_side or 'original'}; malloc_trim {args.malloc_trim}; "
          f"mmap threshold {args.mmap_threshold_kb or 'default'} KiB; "
          f"rss {rss_mb():.1f} MiB")
    trim = malloc_trimmer() if args.malloc_trim else None
    if args.malloc_trim and trim is None:
        print("--malloc-trim: glibc's malloc_trim is not available here; ignored")
    res = soak(model, files, args.images, args.warmup, args.every, args.max_image_side,
               after_image=trim)
    res.update(config=args.config_file, weights=args.weights, max_growth_mb=args.max_growth_mb,
               max_image_side=args.max_image_side, distinct_files=len(files),
               malloc_trim=trim is not None,
               mmap_threshold_kb=args.mmap_threshold_kb if mmap_threshold else 0)
    res["verdict"] = "PASS" if res["growth_mb"] <= args.max_growth_mb else "FAIL"
    print(f"images: {res['images']} ({res['distinct_files']} distinct), faces found: {res['faces']}")
    print(f"rss after warm-up ({args.warmup} images): {res['rss_after_warmup']:.1f} MiB")
    print(f"rss max after warm-up: {res['rss_max']:.1f} MiB; rss at the end: {res['rss_end']:.1f} MiB")
    print(f"growth after warm-up: {res['growth_mb']:+.1f} MiB (bound {args.max_growth_mb:.0f} MiB); "
          f"trend {res['slope_mb_per_1000']:+.1f} MiB per 1000 images")
    print(f"speed after warm-up: {res['images_per_s']:.2f} images/s")
    print(f"verdict: {res['verdict']}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    return 0 if res["verdict"] == "PASS" else 1


if __name__ == "__main__":
    sys.exit(main())
