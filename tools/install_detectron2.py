#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Reproducible, checksum-verified install of detectron2 v0.6 on a current stack.

Detectron2 is not released on PyPI. Its official v0.6 Python sources are re-uploaded there
as the source package ``pb1-detectron2==0.6``, which has no C++/CUDA sources, so a plain
``pip install`` fails. This script:

1. does nothing if a working detectron2 is already importable (for example one built from
   the official repository): it is used as it is;
2. otherwise downloads the sdist from the package index that pip uses (cached under
   ``$FACECRAFT_CACHE``, default ``~/.cache/facecraft_d2``) and **refuses any file whose
   SHA-256 differs** from the pinned one;
3. patches, in a temporary copy, what breaks on a current stack, each patch checked to
   apply exactly as expected (so a changed source fails loudly instead of half-patching):

   - ``detectron2/_C.py``: a pure-Python stand-in for the missing extension. Importing it
     works; calling any compiled op raises :class:`MissingCompiledOpError` saying why
     (facecraft_d2 uses none of them);
   - ``PIL.Image.LINEAR`` (removed in Pillow 10) -> ``Image.BILINEAR`` (upstream ff53992b);
   - the NumPy aliases removed in 1.24 (``np.bool``/``np.int``/``np.float``/``np.str``);
   - ``np.array(..., copy=False)`` (an error in NumPy 2) -> ``np.asarray``;
   - ``pkg_resources`` in ``model_zoo`` -> ``importlib.resources``;
   - ``torch.ops.detectron2.nms_rotated`` -> the stand-in's clear error;
4. installs the patched tree with a setup script that builds no extension, under the
   distribution name ``detectron2`` (version ``0.6``), with its runtime dependencies.

Usage (inside the project's virtualenv)::

    python tools/install_detectron2.py [--force]
"""
import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from html.parser import HTMLParser

SDIST_NAME = "pb1-detectron2"
SDIST_VERSION = "0.6"
SDIST_FILE = "pb1-detectron2-0.6.tar.gz"
SDIST_SHA256 = "5d2e9e51e523ec72f6a31cca04b0a515492e9514b773a3d134cedc0677170b29"

# Runtime dependencies of detectron2 v0.6 (its setup.py), minus what only its optional
# tools use (black for LazyConfig.save, future/pydot for caffe2 export).
D2_REQUIREMENTS = [
    "Pillow>=7.1",
    "matplotlib",
    "pycocotools>=2.0.2",
    "termcolor>=1.1",
    "yacs>=0.1.8",
    "tabulate",
    "cloudpickle",
    "tqdm>4.29.0",
    "tensorboard",
    "fvcore>=0.1.5,<0.1.6",
    "iopath>=0.1.7,<0.1.10",
    "omegaconf>=2.1",
    "hydra-core>=1.1",
]

C_STANDIN = '''\
# Written by facecraft_d2's tools/install_detectron2.py.
"""
Stand-in for detectron2's compiled extension ``detectron2._C``.

This detectron2 was installed from the ``pb1-detectron2==0.6`` source package, which ships
no C++/CUDA sources, so none of detectron2's compiled ops exist here: rotated boxes
(box_iou_rotated, nms_rotated, ROIAlignRotated), deformable convolution and the fast
COCO evaluation. facecraft_d2 uses none of them. Calling one raises MissingCompiledOpError;
build detectron2 from the official repository if you need them.
"""


class MissingCompiledOpError(RuntimeError):
    """Raised when a compiled detectron2 op is used in a build without the extension."""


def get_compiler_version():
    return "none (pure-Python detectron2 0.6 build: no _C extension)"


def get_cuda_version():
    return "none (pure-Python detectron2 0.6 build: no _C extension)"


def has_cuda():
    return False


def __getattr__(name):
    if name.startswith("__"):
        raise AttributeError(name)

    def _missing(*args, **kwargs):
        raise MissingCompiledOpError(
            f"detectron2._C.{name} is a compiled op, and this detectron2 was installed from "
            "the pb1-detectron2==0.6 source package, which has no C++/CUDA sources. "
            "facecraft_d2 never needs it; to use it, build detectron2 from the official "
            "repository (pip install 'git+https://github.com/facebookresearch/detectron2.git')."
        )

    _missing.__name__ = name
    return _missing
'''

SETUP_PY = '''\
# Written by facecraft_d2's tools/install_detectron2.py: detectron2 v0.6 without extensions.
from setuptools import find_packages, setup

setup(
    name="detectron2",
    version="0.6",
    description="Detectron2 v0.6 (pure-Python build from pb1-detectron2==0.6, patched by facecraft_d2)",
    url="https://github.com/facebookresearch/detectron2",
    packages=find_packages(include=["detectron2", "detectron2.*"]),
    package_data={"detectron2.model_zoo": ["configs/**/*.yaml", "configs/**/*.py"]},
    include_package_data=False,
    python_requires=">=3.7",
    install_requires=%r,
)
''' % (D2_REQUIREMENTS,)

_MODEL_ZOO_OLD = """    cfg_file = pkg_resources.resource_filename(
        "detectron2.model_zoo", os.path.join("configs", config_path)
    )"""
_MODEL_ZOO_NEW = """    cfg_file = str(importlib_resources.files("detectron2.model_zoo") / "configs" / config_path)"""

# (relative path, regex, replacement, expected number of substitutions)
PATCHES = [
    ("detectron2/data/transforms/transform.py", r"\bImage\.LINEAR\b", "Image.BILINEAR", 1),
    ("detectron2/layers/mask_ops.py", r"np\.array\(mask, copy=False\)", "np.asarray(mask)", 1),
    ("detectron2/model_zoo/model_zoo.py", r"^import pkg_resources$",
     "from importlib import resources as importlib_resources", 1),
    ("detectron2/model_zoo/model_zoo.py", re.escape(_MODEL_ZOO_OLD), _MODEL_ZOO_NEW, 1),
    ("detectron2/layers/nms.py", r"return torch\.ops\.detectron2\.nms_rotated\(",
     "from detectron2 import _C\n\n    return _C.nms_rotated(", 1),
]
# The NumPy aliases removed in 1.24, replaced by the builtins they always meant, across the
# whole package; v0.6 has 19 of them (data/build.py, structures/masks.py, utils/visualizer.py,
# utils/video_visualizer.py, evaluation/*, data/datasets/pascal_voc.py).
NUMPY_ALIAS = r"\bnp\.(bool|int|float|str|object)\b(?!_)"
NUMPY_ALIAS_COUNT = 19
# After patching, none of these may remain anywhere in the package.
FORBIDDEN = [
    r"\bImage\.LINEAR\b",
    NUMPY_ALIAS,
    r"\bpkg_resources\b",
    r"np\.array\([^)]*copy=False",
    r"torch\.ops\.detectron2\.",
]


class _LinkParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.links = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self.links.extend(v for k, v in attrs if k == "href")


def log(msg):
    print(f"[install_detectron2] {msg}", flush=True)


def detectron2_works(python=sys.executable):
    """Whether detectron2's main modules import in ``python`` (a fresh interpreter)."""
    code = "import detectron2, detectron2.config, detectron2.data, detectron2.engine, detectron2.modeling"
    return subprocess.run([python, "-c", code], capture_output=True).returncode == 0


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def index_url():
    """The package index pip is configured with (PIP_INDEX_URL / pip config), or PyPI."""
    url = os.environ.get("PIP_INDEX_URL")
    if not url:
        out = subprocess.run(
            [sys.executable, "-m", "pip", "config", "get", "global.index-url"],
            capture_output=True, text=True,
        )
        url = out.stdout.strip() if out.returncode == 0 else ""
    return (url or "https://pypi.org/simple").rstrip("/") + "/"


def download_sdist(cache_dir):
    """Return the path of the verified sdist, downloading it through the index if needed."""
    os.makedirs(cache_dir, exist_ok=True)
    dest = os.path.join(cache_dir, SDIST_FILE)
    if os.path.exists(dest) and sha256_of(dest) == SDIST_SHA256:
        log(f"using cached {dest}")
        return dest
    page_url = urllib.parse.urljoin(index_url(), SDIST_NAME + "/")
    log(f"looking up {SDIST_FILE} in {page_url}")
    with urllib.request.urlopen(page_url, timeout=120) as r:
        parser = _LinkParser()
        parser.feed(r.read().decode("utf-8", "replace"))
    links = [l for l in parser.links if urllib.parse.urlparse(l).path.endswith("/" + SDIST_FILE)]
    if not links:
        raise SystemExit(f"{SDIST_FILE} is not listed at {page_url}")
    url = urllib.parse.urljoin(page_url, links[0])
    tmp = dest + ".part"
    with urllib.request.urlopen(url, timeout=300) as r, open(tmp, "wb") as f:
        shutil.copyfileobj(r, f)
    try:
        digest = verify_sdist(tmp)
    except SystemExit:
        os.remove(tmp)
        raise
    os.replace(tmp, dest)
    log(f"downloaded and verified {dest} (sha256 {digest})")
    return dest


def verify_sdist(path):
    """Return the file's SHA-256; exit with an error if it is not the pinned one."""
    digest = sha256_of(path)
    if digest != SDIST_SHA256:
        raise SystemExit(
            f"REFUSING {path}: sha256 {digest} != pinned {SDIST_SHA256}. "
            "The file on the index is not the audited detectron2 v0.6 source."
        )
    return digest


def patch_tree(src_root):
    """Apply :data:`PATCHES` to the extracted tree; raise if any does not apply as expected."""
    for rel, pattern, repl, expected in PATCHES:
        path = os.path.join(src_root, rel)
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text, n = re.subn(pattern, lambda m: repl, text, flags=re.MULTILINE)
        if n != expected:
            raise SystemExit(f"patch {pattern!r} applied {n} times to {rel}, expected {expected}")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    with open(os.path.join(src_root, "detectron2", "_C.py"), "w") as f:
        f.write(C_STANDIN)
    py_files = [
        os.path.join(dirpath, name)
        for dirpath, _, files in os.walk(os.path.join(src_root, "detectron2"))
        for name in files
        if name.endswith(".py")
    ]
    n_alias = 0
    for path in py_files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        text, n = re.subn(NUMPY_ALIAS, lambda m: m.group(1), text)
        if n:
            n_alias += n
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
    if n_alias != NUMPY_ALIAS_COUNT:
        raise SystemExit(f"replaced {n_alias} NumPy aliases, expected {NUMPY_ALIAS_COUNT}")
    leftovers = []
    for path in py_files:
        with open(path, encoding="utf-8") as f:
            text = f.read()
        leftovers += [f"{path}: {p}" for p in FORBIDDEN if re.search(p, text)]
    if leftovers:
        raise SystemExit("unpatched incompatibilities remain:\n" + "\n".join(leftovers))
    with open(os.path.join(src_root, "setup.py"), "w") as f:
        f.write(SETUP_PY)
    log(f"applied {len(PATCHES)} patches and the _C stand-in")


def install(force=False):
    if not force and detectron2_works():
        import detectron2  # noqa: only to report where it is

        log(f"detectron2 {detectron2.__version__} already works at "
            f"{os.path.dirname(detectron2.__file__)}: using it as it is")
        return
    cache_dir = os.environ.get(
        "FACECRAFT_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "facecraft_d2")
    )
    sdist = download_sdist(cache_dir)
    with tempfile.TemporaryDirectory(prefix="d2build-") as tmp:
        with tarfile.open(sdist) as tar:
            tar.extractall(tmp, filter="data")
        src_root = os.path.join(tmp, f"{SDIST_NAME}-{SDIST_VERSION}")
        patch_tree(src_root)
        cmd = [sys.executable, "-m", "pip", "install", "--no-build-isolation", src_root]
        log(" ".join(cmd))
        subprocess.run(cmd, check=True)
    if not detectron2_works():
        raise SystemExit("detectron2 was installed but does not import; see the messages above")
    log("detectron2 0.6 installed and importable")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--force", action="store_true", help="reinstall even if detectron2 works")
    install(parser.parse_args().force)


if __name__ == "__main__":
    main()
