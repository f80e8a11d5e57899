# Copyright (c) facecraft_d2 contributors.
"""Run the ``facecraft`` console script as a subprocess, on generated files only."""
import os
import shutil
import subprocess
import sys

import matplotlib.cbook
import pytest
from PIL import Image


def facecraft_exe():
    """The installed console script (``make setup`` installs it next to the venv's python)."""
    exe = os.path.join(os.path.dirname(sys.executable), "facecraft")
    return exe if os.path.exists(exe) else shutil.which("facecraft")


def run_facecraft(*args, cache=None, timeout=300):
    exe = facecraft_exe()
    assert exe, "the 'facecraft' console script is not installed (run make setup)"
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    if cache:
        env["FACECRAFT_CACHE"] = str(cache)
    return subprocess.run([exe, *map(str, args)], capture_output=True, text=True, env=env,
                          timeout=timeout)


@pytest.fixture(scope="session")
def small_photo(tmp_path_factory):
    """matplotlib's sample photo (not a dataset image), shrunk to 160x187 for speed."""
    src = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    path = tmp_path_factory.mktemp("photo") / "hopper.jpg"
    with Image.open(src) as im:
        im.convert("RGB").resize((160, 187), Image.BILINEAR).save(path, quality=92)
    return path
