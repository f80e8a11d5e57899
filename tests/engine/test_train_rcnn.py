# Copyright (c) facecraft_d2 contributors.
"""
Integration: the two-step procedure of configs/rcnn/steps on real images, a few iterations
per step: the RPN trains, its proposals on the training images are dumped, the joint network
trains from the RPN model on them, and the result evaluates with --eval-only.
"""
import os
import pickle

import torch

from facecraft_d2.data.catalog import register_subset

from .test_train_net import ROOT, _train_net, load_tool

STEPS = os.path.join(ROOT, "configs", "rcnn", "steps")
TINY = ["SOLVER.MAX_ITER", "2", "SOLVER.STEPS", "()", "SOLVER.WARMUP_ITERS", "0", "MODEL.ZF.WIDTH_MULT", "0.125",
        "DATASETS.TRAIN", "('dlib_faces_train',)", "DATASETS.TEST", "()", "DATALOADER.NUM_WORKERS", "0",
        "INPUT.MIN_SIZE_TRAIN", "(192,)", "INPUT.MIN_SIZE_TEST", "192", "MODEL.RPN.POST_NMS_TOPK_TEST", "50"]


def _run(train_net, config, *flags, opts):
    args = train_net.default_argument_parser().parse_args(["--config-file", os.path.join(STEPS, config), *flags, *opts])
    return train_net.main(args)


def test_two_step_training_chain_and_eval(datasets_root, tmp_path):
    train_net, dump = _train_net(), load_tool("dump_proposals")
    rpn = str(tmp_path / "rpn")
    _run(train_net, "rpn.yaml", opts=TINY + ["OUTPUT_DIR", rpn])
    rpn_ckpt = torch.load(os.path.join(rpn, "model_final.pth"), map_location="cpu", weights_only=True)["model"]

    props = os.path.join(rpn, "proposals_train.pkl")
    dump.main(dump.get_parser().parse_args(
        ["--config-file", os.path.join(STEPS, "rpn.yaml"), "--output", props, *TINY, "OUTPUT_DIR", rpn]))
    with open(props, "rb") as f:
        data = pickle.load(f)
    assert len(data["ids"]) == 4 and all(0 < len(b) <= 50 for b in data["boxes"])  # dlib_faces_train: 4 images

    joint = str(tmp_path / "joint")
    _run(train_net, "two_step_joint.yaml", opts=TINY + [
        "OUTPUT_DIR", joint, "MODEL.WEIGHTS", os.path.join(rpn, "model_final.pth"),
        "DATASETS.PROPOSAL_FILES_TRAIN", f"('{props}',)"])
    joint_ckpt = torch.load(os.path.join(joint, "model_final.pth"), map_location="cpu", weights_only=True)["model"]
    key = "backbone.conv1.0.weight"  # the shared convs move in the joint step
    assert not torch.equal(rpn_ckpt[key], joint_ckpt[key])

    fddb = register_subset("fddb_fold_01", 2)
    results = _run(train_net, "../two_step.yaml", "--eval-only", opts=[
        "OUTPUT_DIR", str(tmp_path / "eval"), "MODEL.WEIGHTS", os.path.join(joint, "model_final.pth"),
        "MODEL.ZF.WIDTH_MULT", "0.125", "DATASETS.TEST", f"('{fddb}',)"])
    assert results["fddb"]["num_images"] == 2
