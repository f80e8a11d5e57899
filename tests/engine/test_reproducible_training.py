# Copyright (c) facecraft_d2 contributors.
"""
Seeded CPU training is reproducible: two runs with the same ``SEED`` (seeded by detectron2's
``default_setup`` -> ``seed_all_rng``; the cascade's data loader and its worker process seed
their generators from ``SEED``) give the same losses, bit for bit, for the first iterations.
"""
import pytest
import torch


from facecraft_d2.engine import Trainer

from .test_train_cascade import CASCADE, TINY
from .test_train_net import _train_net

NUM_ITER = 4
LOSSES = ("total_loss", "loss_x12_cls", "loss_x12_reg")


@pytest.fixture
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _losses(train_net, out, seed):
    args = train_net.default_argument_parser().parse_args(
        ["--config-file", f"{CASCADE}/separate_x12.yaml", *TINY, "OUTPUT_DIR", str(out),
         "SOLVER.MAX_ITER", str(NUM_ITER), "SOLVER.CHECKPOINT_PERIOD", "1000",
         "DATALOADER.NUM_WORKERS", "1", "SEED", str(seed)]
    )
    cfg = train_net.setup(args)
    trainer = Trainer(cfg)
    trainer.resume_or_load(resume=False)
    trainer.train()
    return {k: [v for v, _ in trainer.storage.history(k).values()] for k in LOSSES}


def test_same_seed_same_losses(datasets_root, tmp_path, one_thread):
    train_net = _train_net()
    first = _losses(train_net, tmp_path / "a", seed=7)
    second = _losses(train_net, tmp_path / "b", seed=7)
    assert all(len(v) == NUM_ITER for v in first.values()), first
    assert first == second  # exactly equal, every loss term, every iteration
    other = _losses(train_net, tmp_path / "c", seed=8)
    assert other["total_loss"] != first["total_loss"]  # the seed does drive the run
