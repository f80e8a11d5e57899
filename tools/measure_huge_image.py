#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Measure what a huge image costs: generate a 30000x20000 JPEG (600 MP, 2.3 MB on disk, never
held at full size) and a 30000x20000 PNG, then load and detect on them with FaceDetector and
print the outcome, the time and the peak resident memory (ru_maxrss) each step adds.

    .venv/bin/python tools/measure_huge_image.py [--max-pixels 16e6] [--width 30000 --height 20000]

Each measurement runs in a fresh subprocess, so the peaks do not hide one another.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile

from tabulate import tabulate

_CHILD = r"""
import json, resource, sys, time
from facecraft_d2 import FaceDetector
from facecraft_d2.utils.image_io import ImageLoadError, load_image
path, max_pixels, detect = sys.argv[1], int(float(sys.argv[2])), sys.argv[3] == "1"
rss = lambda: resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
det = FaceDetector("cascade_joint", max_pixels=max_pixels) if detect else None
base, t = rss(), time.perf_counter()
try:
    if detect:
        faces = det.detect(path)
        outcome = f"{len(faces)} face(s); " + "; ".join(faces.notes)
    else:
        img = load_image(path, max_pixels=max_pixels)
        outcome = f"loaded {img.image.shape[1]}x{img.image.shape[0]}; " + "; ".join(img.notes)
except ImageLoadError as e:
    outcome = f"ImageLoadError: {e.reason}"
print(json.dumps({"outcome": outcome, "seconds": time.perf_counter() - t,
                  "baseline_mb": base, "peak_mb": rss()}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=30000)
    parser.add_argument("--height", type=int, default=20000)
    parser.add_argument("--max-pixels", type=float, default=16e6,
                        help="FaceDetector / load_image max_pixels")
    args = parser.parse_args()

    from facecraft_d2.utils.testing import write_huge_jpeg, write_huge_png

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        files = {"JPEG": os.path.join(tmp, "huge.jpg"), "PNG": os.path.join(tmp, "huge.png")}
        write_huge_jpeg(files["JPEG"], args.width, args.height)
        write_huge_png(files["PNG"], args.width, args.height)
        for kind, path in files.items():
            for step, detect in (("load", "0"), ("load + detect", "1")):
                res = subprocess.run([sys.executable, "-W", "ignore", "-c", _CHILD, path,
                                      str(args.max_pixels), detect],
                                     capture_output=True, text=True)
                if res.returncode != 0:
                    rows.append([kind, step, "CRASHED: " + res.stderr.strip()[-200:], "", ""])
                    continue
                r = json.loads(res.stdout.strip().splitlines()[-1])
                rows.append([kind, step, r["outcome"], f"{r['seconds']:.1f}",
                             f"+{r['peak_mb'] - r['baseline_mb']:.0f} (peak {r['peak_mb']:.0f})"])
    print(f"{args.width}x{args.height} ({args.width * args.height / 1e6:.0f} MP), "
          f"max_pixels={args.max_pixels / 1e6:.0f} MP")
    print(tabulate(rows, headers=["file", "step", "outcome", "seconds", "memory MB"],
                   tablefmt="github"))


if __name__ == "__main__":
    main()
