# Copyright (c) facecraft_d2 contributors.
"""
The built wheel works on its own: configs, weights and the console script inside, every shipped
model loads and finds the face in matplotlib's sample photo, with the checkout out of reach.

The wheel is built from a copy of the source tree (as a fresh clone: no config link, no
``build/``) without build isolation, and installed into a new virtualenv that sees the project
venv's packages (torch, detectron2, ...) through a ``.pth`` line but not the editable install.
"""
import json
import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# what a fresh clone does not have (build outputs, caches, the link setup.py makes)
_NOT_IN_A_CLONE = {".git", "build", "dist", "output", "exported", "__pycache__", ".pytest_cache",
                   ".cache", "facecraft_d2.egg-info"}

FACE = (180, 130, 345, 350)
"""Grace Hopper's face in matplotlib's ``grace_hopper.jpg`` (512x600), XYXY pixels."""

_DETECT_EVERY_MODEL = r"""
import json, sys
import matplotlib.cbook
import facecraft_d2
from facecraft_d2 import FaceDetector
from facecraft_d2.model_zoo import get_config_file, list_models

photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
found = {}
for name in list_models():
    faces = FaceDetector(name, score_threshold=0.5, device="cpu").detect(photo)
    found[name] = [[float(v) for v in box] for box in faces.boxes]
print(json.dumps({"module": facecraft_d2.__file__, "models": found,
                  "config": get_config_file("cascade/joint.yaml")}))
"""


def _ignore(folder, names):
    skip = {n for n in names if n in _NOT_IN_A_CLONE}
    skip |= {n for n in names if os.path.isfile(os.path.join(folder, n, "pyvenv.cfg"))}  # venvs
    if os.path.samefile(folder, ROOT):
        skip |= {"datasets", "results"} & set(names)  # not packaged; datasets/ may hold data
    if os.path.basename(folder) == "model_zoo":
        skip |= {"configs"} & set(names)
    return skip


def _iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _run(cmd, cwd, env=None, timeout=600):
    res = subprocess.run([str(c) for c in cmd], cwd=str(cwd), env=env, capture_output=True,
                         text=True, timeout=timeout)
    assert res.returncode == 0, f"{cmd}\n{res.stdout[-3000:]}\n{res.stderr[-3000:]}"
    return res


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory):
    """(venv python, wheel path): the wheel built from a clean copy, installed in a new venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    src, dist, venv = tmp / "src", tmp / "dist", tmp / "venv"
    shutil.copytree(ROOT, src, symlinks=True, ignore=_ignore)
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--disable-pip-version-check", "-q", "-w", dist, src], cwd=tmp)
    wheel, = dist.glob("facecraft_d2-*.whl")
    _run([sys.executable, "-m", "venv", venv], cwd=tmp)
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=tmp).stdout.strip()
    # the project venv's packages, but not its .pth files (the editable facecraft_d2)
    with open(os.path.join(purelib, "project_venv.pth"), "w") as f:
        f.write(sysconfig.get_paths()["purelib"] + "\n")
    _run([python, "-m", "pip", "install", "--no-deps", "--ignore-installed", "-q",
          "--disable-pip-version-check", wheel], cwd=tmp)
    return python, wheel


def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONWARNINGS"] = "ignore"
    return env


def test_wheel_holds_configs_weights_and_registry(wheel_venv):
    import zipfile

    _, wheel = wheel_venv
    names = set(zipfile.ZipFile(wheel).namelist())
    with open(os.path.join(ROOT, "facecraft_d2", "model_zoo", "models.json")) as f:
        models = json.load(f)
    assert "facecraft_d2/model_zoo/models.json" in names
    for entry in models.values():
        assert f"facecraft_d2/model_zoo/configs/{entry['config']}" in names
        assert f"facecraft_d2/model_zoo/weights/{entry['weights']}" in names
    shipped = {os.path.relpath(os.path.join(d, f), os.path.join(ROOT, "configs"))
               for d, _, files in os.walk(os.path.join(ROOT, "configs")) for f in files
               if f.endswith(".yaml")}
    assert {f"facecraft_d2/model_zoo/configs/{c}" for c in shipped} <= names  # _BASE_ files too


def test_installed_wheel_detects_the_face_with_every_model(wheel_venv, tmp_path):
    python, _ = wheel_venv
    venv = os.path.dirname(os.path.dirname(python))
    res = _run([python, "-c", _DETECT_EVERY_MODEL], cwd=tmp_path, env=_clean_env())
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["module"].startswith(venv), f"imported the checkout: {out['module']}"
    assert out["config"].startswith(venv)
    with open(os.path.join(ROOT, "facecraft_d2", "model_zoo", "models.json")) as f:
        assert set(out["models"]) == set(json.load(f))
    for name, boxes in out["models"].items():
        best = max((_iou(b, FACE) for b in boxes), default=0.0)
        assert best >= 0.4, f"{name}: no box on the face at score >= 0.5: {boxes}"


def test_installed_console_script(wheel_venv, tmp_path):
    import matplotlib.cbook

    python, _ = wheel_venv
    photo = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    exe = os.path.join(os.path.dirname(python), "facecraft")
    res = _run([exe, "detect", photo, "--json", "--model", "cascade-joint", "--preset", "fast",
                "--device", "cpu"], cwd=tmp_path, env=_clean_env())
    data = json.loads(res.stdout)  # the entry point runs (faces: the test above)
    assert data["model"] == "cascade_joint" and len(data["images"]) == 1 and not data["failures"]
