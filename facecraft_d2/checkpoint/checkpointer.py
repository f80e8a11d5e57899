# Copyright (c) facecraft_d2 contributors.
"""
Checkpoints that survive a crash and never run code from the file they load.

:class:`FaceCraftCheckpointer` is Detectron2's ``DetectionCheckpointer`` with two changes:

* **Atomic saves.** Every checkpoint, and the ``last_checkpoint`` file that names the newest
  one, is written to a temporary file in the same folder, flushed and ``fsync``-ed, then moved
  over the target with ``os.replace`` (:func:`atomic_write`). A process killed at any moment
  leaves either the old file or the new one, never a truncated one; the next
  ``--resume`` starts from the last complete checkpoint. Left-over temporary files
  (``.<name>.<random>.tmp``) are removed when training resumes.
* **No arbitrary unpickling.** Checkpoints are read with ``torch.load(weights_only=True)``
  (:func:`safe_torch_load`), which only rebuilds tensors, numbers, strings and plain
  containers; a file that asks for any other object is refused with
  :class:`UnsafeCheckpointError` before anything in it runs. Detectron/Caffe2 ``.pkl`` files
  are plain pickles that cannot be read safely, so they are refused too.

Every facecraft_d2 code path that loads weights goes through this class (the Trainer's resume,
``tools/train_net.py --eval-only``, :func:`facecraft_d2.evaluation.build_eval_model`, the
model zoo and ``tools/demo.py``); shipped models are also checked against their SHA-256 by
:mod:`facecraft_d2.model_zoo`.
"""
import contextlib
import glob
import os
import pickle

import torch

from detectron2.checkpoint import DetectionCheckpointer

from ..utils.io import TEMP_SUFFIX, atomic_write

__all__ = ["FaceCraftCheckpointer", "UnsafeCheckpointError", "atomic_write", "safe_torch_load"]

class UnsafeCheckpointError(RuntimeError):
    """
    A checkpoint file was refused because loading it could run code: it is a plain pickle
    (``.pkl``) or it holds objects other than tensors, numbers, strings and containers.

    Attributes:
        path (str): the refused file.
        reason (str): why.
    """

    def __init__(self, path, reason):
        self.path = str(path)
        self.reason = reason
        super().__init__(
            f"Refused to load checkpoint {self.path}: {reason.rstrip('.')}. facecraft_d2 only loads "
            "checkpoints with torch.load(weights_only=True) (tensors and plain containers)."
        )

    def __reduce__(self):
        return (type(self), (self.path, self.reason))


def safe_torch_load(path):
    """
    ``torch.load(path, map_location="cpu", weights_only=True)``, with a refusal reported as
    :class:`UnsafeCheckpointError` naming the file.
    """
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        # torch's message: boilerplate, then the refused global, then a pointer to the docs
        parts = [p.strip() for p in str(e).split("\n\n") if p.strip()]
        details = [p for p in parts[1:] if not p.startswith("Check the documentation")]
        reason = (details or parts or ["not a weights-only file"])[0]
        raise UnsafeCheckpointError(path, reason.replace("WeightsUnpickler error: ", "")) from None


class FaceCraftCheckpointer(DetectionCheckpointer):
    """
    ``DetectionCheckpointer`` that saves atomically and loads only with
    ``torch.load(weights_only=True)``; see the module docstring. Same constructor and
    methods as ``DetectionCheckpointer``.
    """

    def save(self, name, **kwargs):
        """Save ``<save_dir>/<name>.pth`` atomically, then tag it in ``last_checkpoint``."""
        if not self.save_dir or not self.save_to_disk:
            return
        data = {"model": self.model.state_dict()}
        for key, obj in self.checkpointables.items():
            data[key] = obj.state_dict()
        data.update(kwargs)
        basename = "{}.pth".format(name)
        save_file = os.path.join(self.save_dir, basename)
        self.logger.info("Saving checkpoint to {}".format(save_file))
        atomic_write(save_file, lambda f: torch.save(data, f))
        self.tag_last_checkpoint(basename)

    def tag_last_checkpoint(self, last_filename_basename):
        """Write ``last_checkpoint`` atomically."""
        save_file = os.path.join(self.save_dir, "last_checkpoint")
        atomic_write(save_file, lambda f: f.write(last_filename_basename), mode="w")

    def resume_or_load(self, path, *, resume=True):
        """Like ``DetectionCheckpointer``; removes temporaries left by a killed save first."""
        if resume and self.save_dir and self.save_to_disk:
            self.remove_stale_temporaries()
        return super().resume_or_load(path, resume=resume)

    def remove_stale_temporaries(self):
        """Delete ``.<name>.<random>.tmp`` files that a killed :func:`atomic_write` left."""
        for tmp in glob.glob(os.path.join(glob.escape(self.save_dir), ".*" + TEMP_SUFFIX)):
            self.logger.warning("Removing %s, left by an interrupted checkpoint save", tmp)
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _load_file(self, filename):
        if filename.endswith(".pkl"):
            raise UnsafeCheckpointError(
                filename,
                "a .pkl file is a plain pickle, which can run code when it is loaded; convert "
                "it to a .pth state dict in a trusted environment",
            )
        data = safe_torch_load(filename)
        if filename.endswith(".pyth"):  # pycls checkpoints, as in DetectionCheckpointer
            model_state = {
                k: v
                for k, v in data["model_state"].items()
                if not k.endswith("num_batches_tracked")
            }
            return {"model": model_state, "__author__": "pycls", "matching_heuristics": True}
        if not isinstance(data, dict):
            raise ValueError(f"Checkpoint {filename} holds a {type(data).__name__}, not a dict")
        if "model" not in data:
            data = {"model": data}
        return data
