# Copyright (c) facecraft_d2 contributors.
"""
Untrusted checkpoints: a file whose pickle would run a shell command is refused, and the
command never runs, through every path in facecraft_d2 that loads weights (the checkpointer,
the Trainer's --resume, train_net --eval-only, build_eval_model, the model zoo, tools/demo.py
and FaceDetector). The shipped models and training checkpoints still load weights-only.
(A shipped file with the wrong SHA-256 is refused: tests/test_model_zoo.py.)
"""
import hashlib
import os
import pickle
import shutil
import sys

import pytest
import torch

from detectron2.modeling import build_model

from facecraft_d2 import model_zoo
from facecraft_d2.engine import FaceCraftCheckpointer, UnsafeCheckpointError
from facecraft_d2.evaluation.run import build_eval_model
from facecraft_d2.model_zoo import model_zoo as zoo_module

from .test_train_cascade import CASCADE, TINY, _run
from .test_train_net import _train_net, load_tool

JOINT = os.path.join(CASCADE, "joint.yaml")


class _Payload:
    """Unpickling this object runs ``touch <marker>``."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, ("touch '{}'".format(self.marker),))


@pytest.fixture
def evil(tmp_path):
    """A malicious ``.pth`` and ``.pkl``, and the marker file their payload would create."""
    marker = tmp_path / "PAYLOAD_RAN"
    shipped = torch.load(model_zoo.get_checkpoint_path("cascade_joint"), weights_only=True)
    data = {"model": shipped["model"], "__reduce_me__": _Payload(str(marker))}
    pth, pkl = tmp_path / "evil.pth", tmp_path / "evil.pkl"
    torch.save(data, str(pth))
    with open(pkl, "wb") as f:
        pickle.dump(data, f)
    yield {"pth": str(pth), "pkl": str(pkl), "marker": marker}
    assert not marker.exists(), "the malicious payload ran"


def _shipped_model(name="cascade_joint"):
    cfg = model_zoo.get_config(name, trained=False)
    cfg.MODEL.DEVICE = "cpu"
    return build_model(cfg)


def test_payload_is_live_when_unpickled_unsafely(evil):
    # the control: an unsafe load DOES run the payload, so the refusals below are meaningful
    torch.load(evil["pth"], weights_only=False)
    assert evil["marker"].exists()
    evil["marker"].unlink()
    with open(evil["pkl"], "rb") as f:
        pickle.load(f)
    assert evil["marker"].exists()
    evil["marker"].unlink()


@pytest.mark.parametrize("kind", ["pth", "pkl"])
def test_checkpointer_refuses_malicious_file(evil, kind, monkeypatch):
    # even when the environment asks torch for unsafe loads by default
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")
    model = _shipped_model()
    with pytest.raises(UnsafeCheckpointError, match="evil." + kind) as excinfo:
        FaceCraftCheckpointer(model).load(evil[kind])
    assert excinfo.value.path == evil[kind]
    assert "posix.system" in str(excinfo.value) or kind == "pkl"


def test_trainer_resume_refuses_malicious_last_checkpoint(evil, datasets_root, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    shutil.copy(evil["pth"], out / "model_0000001.pth")
    (out / "last_checkpoint").write_text("model_0000001.pth")
    with pytest.raises(UnsafeCheckpointError, match="model_0000001.pth"):
        _run(_train_net(), "separate_x12.yaml", "--resume", opts=TINY + ["OUTPUT_DIR", str(out)])


@pytest.mark.parametrize("kind", ["pth", "pkl"])
def test_eval_only_refuses_malicious_weights(evil, kind, datasets_root, tmp_path):
    opts = ["OUTPUT_DIR", str(tmp_path / "eval"), "MODEL.WEIGHTS", evil[kind], "DATASETS.TEST", "()"]
    with pytest.raises(UnsafeCheckpointError):
        _run(_train_net(), "joint.yaml", "--eval-only", opts=opts)


def test_build_eval_model_refuses_malicious_weights(evil):
    with pytest.raises(UnsafeCheckpointError):
        build_eval_model(JOINT, evil["pth"])


def test_model_zoo_refuses_malicious_file_with_matching_checksum(evil, tmp_path, monkeypatch):
    # an attacker who can also rewrite models.json gets past the checksum, not past the loader
    weights = tmp_path / "weights"
    weights.mkdir()
    shutil.copy(evil["pth"], weights / "cascade_joint.pth")
    with open(evil["pth"], "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    registry = zoo_module._registry()
    registry["cascade_joint"]["sha256"] = digest
    monkeypatch.setattr(zoo_module, "_WEIGHTS_DIR", str(weights))
    monkeypatch.setattr(zoo_module, "_registry", lambda: registry)
    with pytest.raises(UnsafeCheckpointError):
        build_eval_model(JOINT, "facecraft://cascade_joint")
    cfg = model_zoo.get_config("cascade_joint")
    with pytest.raises(UnsafeCheckpointError):
        FaceCraftCheckpointer(_shipped_model()).load(cfg.MODEL.WEIGHTS)
    demo = load_tool("demo")
    monkeypatch.setattr(sys, "argv", ["demo.py", "--output", str(tmp_path / "faces.jpg")])
    with pytest.raises(UnsafeCheckpointError):
        demo.main()  # the default shipped model


def test_demo_refuses_malicious_weights(evil, tmp_path, monkeypatch):
    argv = ["demo.py", "--config-file", JOINT, "--output", str(tmp_path / "faces.jpg"),
            "--opts", "MODEL.WEIGHTS", evil["pth"]]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(UnsafeCheckpointError):
        load_tool("demo").main()
    assert not (tmp_path / "faces.jpg").exists()


def test_shipped_models_load_weights_only(monkeypatch):
    monkeypatch.setenv("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "1")  # no effect on an explicit True
    for name in model_zoo.list_models():
        model = _shipped_model(name)
        FaceCraftCheckpointer(model).load("facecraft://" + name)
        state = torch.load(model_zoo.get_checkpoint_path(name), weights_only=True)["model"]
        loaded = model.state_dict()
        assert set(state) <= set(loaded), name
        assert all(torch.equal(loaded[k], v) for k, v in state.items()), name


def test_face_detector_refuses_malicious_weights(evil):
    from facecraft_d2.predictor import FaceDetector  # the Python API of `facecraft detect`

    with pytest.raises(UnsafeCheckpointError):
        FaceDetector(config_file=JOINT, weights=evil["pth"], device="cpu")
