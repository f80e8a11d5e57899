# Copyright (c) facecraft_d2 contributors.
"""The facecraft_d2 trainer: detectron2's DefaultTrainer with the face benchmarks' evaluators."""
import logging
import weakref

from detectron2.engine import DefaultTrainer
from torch.nn.parallel import DistributedDataParallel

from ..checkpoint import FaceCraftCheckpointer
from ..data import (
    build_cascade_train_loader,
    build_crop_cache_loader,
    build_rcnn_train_loader,
    estimate_delta_stats,
)
from ..evaluation import build_face_evaluator

__all__ = ["Trainer", "build_face_evaluator"]


class Trainer(DefaultTrainer):
    """
    DefaultTrainer whose evaluators follow each face benchmark's official protocol. For the
    FaceCraft cascade it trains on the online window sampler's patches, and measures the
    regression-target statistics before the first iteration when the weights lack them.
    """

    def build_hooks(self):
        # Checkpoints are saved atomically and loaded weights-only (FaceCraftCheckpointer);
        # replaced here because DefaultTrainer.__init__ hands self.checkpointer to these hooks.
        self.checkpointer = FaceCraftCheckpointer(
            self._trainer.model, self.cfg.OUTPUT_DIR, trainer=weakref.proxy(self)
        )
        return super().build_hooks()

    def state_dict(self):
        # detectron2 v0.6 leaves the optimizer state (SGD momentum) out of checkpoints; later
        # versions save it under "_trainer", as here, so that --resume continues exactly.
        ret = super().state_dict()
        ret["_trainer"] = self._trainer.state_dict()
        return ret

    def load_state_dict(self, state_dict):
        super().load_state_dict(state_dict)
        if "_trainer" in state_dict:  # absent from checkpoints of older versions
            self._trainer.load_state_dict(state_dict["_trainer"])

    @classmethod
    def build_train_loader(cls, cfg):
        if cfg.MODEL.META_ARCHITECTURE == "FaceCraftCascade":
            if cfg.MODEL.FACECRAFT.DATA.CACHE_DIRS:
                return build_crop_cache_loader(cfg)
            return build_cascade_train_loader(cfg)
        if cfg.MODEL.META_ARCHITECTURE == "JointRCNN":
            return build_rcnn_train_loader(cfg)  # with INPUT.PHOTOMETRIC jitter
        return super().build_train_loader(cfg)

    def resume_or_load(self, resume=True):
        super().resume_or_load(resume=resume)
        loader = self._trainer.data_loader
        if isinstance(getattr(loader, "seed", None), int) and hasattr(loader, "delta_stats"):
            loader.seed += self.start_iter  # a resumed run draws new batches, not the first ones again
        model = self.model.module if isinstance(self.model, DistributedDataParallel) else self.model
        if hasattr(model, "set_delta_stats") and not bool(model.delta_stats_ready):
            loader = self._trainer.data_loader
            if hasattr(loader, "delta_stats"):  # crop caches: all their regression targets
                mean, std = loader.delta_stats()
            else:
                mean, std = estimate_delta_stats(
                    loader, loader.dataset_dicts,
                    self.cfg.MODEL.FACECRAFT.SAMPLER.DELTA_STATS_IMAGES, seed=max(self.cfg.SEED, 0),
                )
            model.set_delta_stats(mean, std)
            logging.getLogger(__name__).info(
                "Regression target mean %s, std %s", mean.tolist(), std.tolist()
            )

    @classmethod
    def build_evaluator(cls, cfg, dataset_name, output_folder=None):
        return build_face_evaluator(cfg, dataset_name, output_folder)
