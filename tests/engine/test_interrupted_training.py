# Copyright (c) facecraft_d2 contributors.
"""
Training survives SIGKILL: tools/train_net.py is killed while a checkpoint is half written and
between checkpoint writes, resumed with --resume each time, and ends at the same final
iteration with a loadable model; no more than one checkpoint period is lost. The
``last_checkpoint`` file is written atomically too (killed mid-write in a small subprocess).
"""
import glob
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch

from detectron2.config import get_cfg
from detectron2.modeling import build_model

from facecraft_d2 import add_facecraft_config
from facecraft_d2.checkpoint.checkpointer import FaceCraftCheckpointer, atomic_write, safe_torch_load

from .test_train_cascade import CASCADE, TINY
from .test_train_net import ROOT

HELPER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "interrupt_helper.py")
# 6 iterations, a checkpoint every 2: model_0000001, model_0000003, model_0000005 + model_final
OPTS = TINY + ["SOLVER.MAX_ITER", "6", "SOLVER.CHECKPOINT_PERIOD", "2"]
TIMEOUT = 300


def _env():
    return dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=ROOT)


def _train_args(out, *flags):
    return ["--config-file", os.path.join(CASCADE, "separate_x12.yaml"), *flags,
            *OPTS, "OUTPUT_DIR", str(out)]


def _kill_at(out, log_name, stop, *flags):
    """Run train_net under interrupt_helper until it stops at ``stop`` = (file, when, nth); SIGKILL it."""
    ready = out.parent / (log_name + ".stopped")
    file_name, when, nth = stop
    cmd = [sys.executable, HELPER, "--file", file_name, "--when", when, "--nth", str(nth),
           "--signal", str(ready), "--", *_train_args(out, *flags)]
    with open(out.parent / log_name, "w") as log:
        proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env(), cwd=ROOT)
        deadline = time.monotonic() + TIMEOUT
        while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    log_text = (out.parent / log_name).read_text()
    assert ready.exists(), "the run never reached {}:\n{}".format(stop, log_text[-3000:])
    assert proc.returncode == -signal.SIGKILL
    return log_text


def _last(out):
    return (out / "last_checkpoint").read_text()


def _temporaries(out):
    return glob.glob(os.path.join(str(out), ".*.tmp"))


def _start_iteration(log_text):
    lines = [l for l in log_text.splitlines() if "Starting training from iteration" in l]
    assert len(lines) == 1, lines
    return int(lines[0].rsplit(" ", 1)[1])


def test_sigkill_during_and_between_checkpoint_writes_then_resume(datasets_root, tmp_path):
    out = tmp_path / "run"

    # 1. killed while model_0000003.pth is half written
    log = _kill_at(out, "1.log", ("model_0000003.pth", "during", 1))
    assert _start_iteration(log) == 0
    assert _last(out) == "model_0000001.pth"
    assert not (out / "model_0000003.pth").exists()
    (partial,) = _temporaries(out)
    assert os.path.basename(partial).startswith(".model_0000003.pth.")
    assert 0 < os.path.getsize(partial) < os.path.getsize(out / "model_0000001.pth")
    assert safe_torch_load(str(out / "model_0000001.pth"))["iteration"] == 1

    # 2. resumed after the last complete checkpoint; killed between writes, just after
    #    model_0000003.pth and its last_checkpoint tag were written
    log = _kill_at(out, "2.log", ("last_checkpoint", "after", 1), "--resume")
    assert _start_iteration(log) == 2  # nothing lost beyond one checkpoint period
    assert _temporaries(out) == []  # the half-written file of run 1 was removed
    assert _last(out) == "model_0000003.pth"

    # 3. resumed again; runs to the end
    res = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "train_net.py"),
                          *_train_args(out, "--resume")],
                         capture_output=True, text=True, env=_env(), cwd=ROOT, timeout=TIMEOUT)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    assert _start_iteration(res.stdout + res.stderr) == 4
    assert _last(out) == "model_final.pth"
    assert _temporaries(out) == []
    final = safe_torch_load(str(out / "model_final.pth"))  # weights-only, with optimizer etc.
    assert final["iteration"] == 5  # MAX_ITER - 1, as in an uninterrupted run
    trainer_state = final["trainer"]  # iteration, LR scheduler and optimizer (momentum)
    assert trainer_state["iteration"] == 5 and "LRScheduler" in trainer_state["hooks"]
    assert trainer_state["_trainer"]["optimizer"]["state"]  # SGD momentum buffers
    cfg = get_cfg()
    add_facecraft_config(cfg)
    cfg.merge_from_file(str(out / "config.yaml"))
    model = build_model(cfg)
    FaceCraftCheckpointer(model).load(str(out / "model_final.pth"))
    assert model.state_dict().keys() == final["model"].keys()
    assert bool(model.delta_stats_ready)
    assert all(torch.isfinite(v).all() for v in final["model"].values() if v.is_floating_point())


_TAG_SCRIPT = textwrap.dedent(
    """
    import sys, torch
    sys.path.insert(0, {helper_dir!r})
    from interrupt_helper import install
    from facecraft_d2.checkpoint.checkpointer import FaceCraftCheckpointer
    install("last_checkpoint", "during", 2, {ready!r})
    ckpt = FaceCraftCheckpointer(torch.nn.Linear(2, 2), {out!r})
    ckpt.save("model_a")
    ckpt.save("model_b")  # its last_checkpoint write stops half way
    """
)


def test_sigkill_during_last_checkpoint_write_keeps_previous_tag(tmp_path):
    out, ready = tmp_path / "ckpt", tmp_path / "ready"
    out.mkdir()
    script = _TAG_SCRIPT.format(helper_dir=os.path.dirname(HELPER), ready=str(ready), out=str(out))
    proc = subprocess.Popen([sys.executable, "-c", script], env=_env(), cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + TIMEOUT
    while not ready.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    output = proc.communicate()[0].decode()
    assert ready.exists(), output
    assert _last(out) == "model_a.pth"  # not an empty or half-written name
    assert (out / "model_b.pth").is_file()  # complete, just not tagged yet
    (partial,) = _temporaries(out)
    assert open(partial).read() == "model_b.pth"[:5]  # half of the new name was on disk
    ckpt = FaceCraftCheckpointer(torch.nn.Linear(2, 2), str(out))
    ckpt.resume_or_load("", resume=True)  # loads model_a, removes the stale temporary
    assert _temporaries(out) == []


def test_atomic_write_failure_keeps_old_content(tmp_path):
    target = tmp_path / "last_checkpoint"
    atomic_write(str(target), lambda f: f.write("model_0000001.pth"), mode="w")
    assert oct(target.stat().st_mode & 0o777) == oct(0o644)

    def fail(f):
        f.write("model_00")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        atomic_write(str(target), fail, mode="w")
    assert target.read_text() == "model_0000001.pth"
    assert _temporaries(tmp_path) == []
