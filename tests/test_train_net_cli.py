# Copyright (c) facecraft_d2 contributors.
"""
``tools/train_net.py`` as a user runs it: a wrong config path or missing weights is one line,
and its log files hold no terminal colour codes.
"""
import logging
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = os.path.join("configs", "tests", "zf_rcnn_tiny.yaml")


def _train_net(*argv, cwd=ROOT, env=None):
    return subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train_net.py"), *argv],
                          cwd=cwd, capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONWARNINGS="ignore", **(env or {})))


def _one_line_error(res):
    assert res.returncode == 1, res.stderr
    assert "Traceback" not in res.stderr, res.stderr
    lines = [line for line in res.stderr.splitlines() if "warn" not in line.lower()]
    assert len(lines) == 1, res.stderr
    assert lines[0].startswith("train_net.py: error: ")
    return lines[0]


@pytest.mark.parametrize("argv,expected", [
    (["--config-file", "configs/no_such.yaml"], "config file 'configs/no_such.yaml' does not exist"),
    (["--config-file", TINY, "MODEL.WEIGHTS", "no_such.pth"],
     "weights file 'no_such.pth' (MODEL.WEIGHTS) does not exist"),
    (["--config-file", TINY, "--eval-only", "MODEL.WEIGHTS", "facecraft://no_such"],
     "MODEL.WEIGHTS facecraft://no_such: no shipped model 'no_such' (shipped: cascade_joint"),
])
def test_wrong_paths_are_one_line(argv, expected, tmp_path):
    assert expected in _one_line_error(_train_net(*argv, "OUTPUT_DIR", str(tmp_path)))


def test_config_that_needs_earlier_weights_says_so(tmp_path):
    """joint.yaml starts from the separate cascade's output: name the key and the ways out."""
    config = os.path.join(ROOT, "configs", "cascade", "joint.yaml")  # run away from output/
    line = _one_line_error(_train_net("--config-file", config, "OUTPUT_DIR", str(tmp_path),
                                      cwd=tmp_path))
    assert "configs/cascade/joint.yaml needs MODEL.WEIGHTS" in line
    assert "output/cascade/separate_x48/model_final.pth" in line
    assert "facecraft://<shipped model> (cascade_joint, cascade_separate" in line


def test_log_handlers_that_are_not_terminals_get_no_colour_codes(tmp_path):
    from facecraft_d2.utils.logger import plain_log_files

    logger = logging.getLogger("facecraft_d2.tests.colour")
    logger.propagate = False
    path = tmp_path / "log.txt"
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("\x1b[32m[%(name)s]\x1b[0m %(message)s"))
    logger.addHandler(handler)
    try:
        plain_log_files([logger.name])
        plain_log_files([logger.name])  # idempotent
        logger.warning("\x1b[38;5;204mMODEL\x1b[39m: \x1b[1;36mcyan\x1b[0m")
    finally:
        logger.removeHandler(handler)
        handler.close()
    assert path.read_text() == "[facecraft_d2.tests.colour] MODEL: cyan\n"


def test_training_log_has_no_colour_codes(datasets_root, tmp_path):
    """default_setup's highlighted config and the cyan histogram, written plain, once."""
    out = tmp_path / "tiny"
    res = _train_net("--config-file", TINY, "SOLVER.MAX_ITER", "2", "DATASETS.TEST", "()",
                     "OUTPUT_DIR", str(out), env={"DETECTRON2_DATASETS": datasets_root})
    assert res.returncode == 0, res.stderr[-3000:]
    log = (out / "log.txt").read_text()
    assert "Running with full config" in log and "Distribution of instances" in log
    assert "\x1b" not in log and "\x1b" not in res.stdout
    assert log.count("Running with full config") == 1  # no duplicated handlers
