# Copyright (c) facecraft_d2 contributors.
"""
Integration: the FaceCraft cascade trains through tools/train_net.py on real images (the
online window sampler, regression statistics measured before the first iteration), a greedy
stage starts from it with the earlier branch frozen, and the result evaluates with --eval-only.
"""
import os

import torch

from facecraft_d2.data.catalog import register_subset

from .test_train_net import ROOT, _train_net

CASCADE = os.path.join(ROOT, "configs", "cascade")
TINY = ["SOLVER.MAX_ITER", "3", "SOLVER.STEPS", "()", "SOLVER.WARMUP_ITERS", "0", "SOLVER.CHECKPOINT_PERIOD", "2",
        "MODEL.FACECRAFT.SAMPLER.BATCH_SIZE", "64", "MODEL.FACECRAFT.SAMPLER.POOL_SIZE", "256",
        "MODEL.FACECRAFT.SAMPLER.DELTA_STATS_IMAGES", "4", "DATASETS.TRAIN", "('dlib_faces_train',)",
        "DATASETS.TEST", "()", "DATALOADER.NUM_WORKERS", "0",
        "MODEL.FACECRAFT.DATA.CACHE_DIRS", "()"]  # the online window sampler (crop caches: test_crop_cache_training.py)


def _run(train_net, config, *flags, opts):
    args = train_net.default_argument_parser().parse_args(
        ["--config-file", os.path.join(CASCADE, config), *flags, *opts]
    )
    return train_net.main(args)


def test_greedy_then_joint_cascade_training_and_eval(datasets_root, tmp_path):
    train_net = _train_net()
    stage1 = str(tmp_path / "x12")
    _run(train_net, "separate_x12.yaml", opts=TINY + ["OUTPUT_DIR", stage1])
    ckpt = torch.load(os.path.join(stage1, "model_final.pth"), map_location="cpu", weights_only=True)
    assert bool(ckpt["model"]["delta_stats_ready"]) and (ckpt["model"]["delta_std"] > 0).all()
    assert not torch.equal(ckpt["model"]["delta_std"], torch.ones(4))  # measured, not the default

    stage2 = str(tmp_path / "x24")
    _run(train_net, "separate_x24.yaml",
         opts=TINY + ["OUTPUT_DIR", stage2, "MODEL.WEIGHTS", os.path.join(stage1, "model_final.pth")])
    ckpt2 = torch.load(os.path.join(stage2, "model_final.pth"), map_location="cpu", weights_only=True)
    for key in ("net.x12_body.0.weight", "delta_std"):  # frozen x12 and the stored statistics
        assert torch.equal(ckpt["model"][key], ckpt2["model"][key]), key
    assert not torch.equal(ckpt["model"]["net.x24_body.0.weight"], ckpt2["model"]["net.x24_body.0.weight"])

    fddb = register_subset("fddb_fold_01", 2)
    results = _run(train_net, "joint.yaml", "--eval-only",
                   opts=["OUTPUT_DIR", str(tmp_path / "eval"), "MODEL.WEIGHTS", os.path.join(stage2, "model_final.pth"),
                         "DATASETS.TEST", f"('{fddb}',)", "MODEL.FACECRAFT.TEST.MAX_PROPOSALS", "200"])
    assert results["fddb"]["num_images"] == 2  # one test dataset: DefaultTrainer.test unwraps it
