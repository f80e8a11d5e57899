# Copyright (c) facecraft_d2 contributors.
"""JointRCNN: face anchors, the joint loss and its branches, frozen parts, backbone swap."""
import pytest
import torch

from detectron2.layers import ShapeSpec
from detectron2.modeling import build_anchor_generator, build_model
from detectron2.structures import Boxes, pairwise_iou
from detectron2.utils.events import EventStorage

from facecraft_d2.modeling import JointRCNN

from rcnn_common import rcnn_cfg, synthetic_inputs


def _model(*opts, config="Base-ZF-RCNN.yaml", seed=3):
    torch.manual_seed(seed)
    model = build_model(rcnn_cfg(config, *opts))
    assert isinstance(model, JointRCNN)
    return model.train()


def _losses(model, seed=0):
    with EventStorage():
        return model(synthetic_inputs(seed))


def test_backbone_shape_matches_features_and_heads():
    model = _model()
    shape = model.backbone.output_shape()["conv5"]
    assert (shape.channels, shape.stride) == (32, 16)  # 256 x 0.125, 4 x 4 from conv1/pool1 ... pool2
    feats = model.backbone(torch.rand(2, 3, 96, 130))
    assert feats["conv5"].shape == (2, 32, 6, 9)  # ceil(96/16), ceil(130/16)
    assert model.proposal_generator.rpn_head.conv.in_channels == 32
    assert model.roi_heads.box_pooler.level_poolers[0].spatial_scale == 1 / 16


def test_face_anchors_are_square_half_octave_and_cover_faces():
    cfg = rcnn_cfg()
    gen = build_anchor_generator(cfg, [ShapeSpec(channels=32, stride=16)])
    assert gen.num_cell_anchors == [10]
    cell = list(gen.cell_anchors)[0]
    w, h = cell[:, 2] - cell[:, 0], cell[:, 3] - cell[:, 1]
    assert torch.allclose(w, h)  # square
    assert torch.allclose(w, torch.tensor([16.0, 23, 32, 45, 64, 91, 128, 181, 256, 362]))
    ratios = w[1:] / w[:-1]
    assert ratios.min() > 1.38 and ratios.max() < 1.45  # half-octave steps
    # anchors on the stride-16 grid of a 64 x 80 feature map
    anchors = gen([torch.zeros(1, 8, 4, 5)])[0]
    assert len(anchors) == 4 * 5 * 10
    centers = anchors.get_centers()
    assert torch.allclose(centers[:10], torch.zeros(10, 2)) and torch.allclose(centers[-1], torch.tensor([64.0, 48]))
    # every face size from 16 to 362 px, centred on a cell, has an anchor with IoU >= 0.7
    sizes = torch.linspace(16, 362, 60)
    faces = Boxes(torch.stack([-sizes / 2, -sizes / 2, sizes / 2, sizes / 2], 1))
    best = pairwise_iou(faces, Boxes(cell)).max(dim=1).values
    assert best.min() >= 0.7


def test_joint_loss_has_both_branches_and_backprops_into_shared_convs():
    model = _model()
    losses = _losses(model)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}
    assert all(torch.isfinite(v) and v > 0 for v in losses.values())
    shared = model.backbone.conv1[0].weight
    for branch in (("loss_rpn_cls", "loss_rpn_loc"), ("loss_cls", "loss_box_reg")):
        model.zero_grad()
        sum(losses[k] for k in branch).backward(retain_graph=True)
        assert shared.grad is not None and shared.grad.abs().sum() > 0, branch
        assert model.backbone.conv5[0].weight.grad.abs().sum() > 0, branch


def test_loss_weights_scale_each_branch():
    plain = _losses(_model())
    weighted = _losses(_model("MODEL.JOINT_RCNN.LOSS_WEIGHTS", [2.0, 0.5]))
    for k in ("loss_rpn_cls", "loss_rpn_loc"):
        assert torch.allclose(weighted[k], 2.0 * plain[k])
    for k in ("loss_cls", "loss_box_reg"):
        assert torch.allclose(weighted[k], 0.5 * plain[k])


def test_single_branch_steps_and_frozen_parts():
    rpn_only = _losses(_model("MODEL.JOINT_RCNN.TRAIN_BRANCHES", ["rpn"]))
    assert set(rpn_only) == {"loss_rpn_cls", "loss_rpn_loc"}

    model = _model("MODEL.JOINT_RCNN.TRAIN_BRANCHES", ["frcnn"],
                   "MODEL.JOINT_RCNN.FROZEN", ["backbone", "proposal_generator"])
    losses = _losses(model)
    assert set(losses) == {"loss_cls", "loss_box_reg"}
    sum(losses.values()).backward()
    assert all(p.grad is None and not p.requires_grad for p in model.backbone.parameters())
    assert all(not p.requires_grad for p in model.proposal_generator.parameters())
    assert model.roi_heads.box_predictor.cls_score.weight.grad.abs().sum() > 0


def test_frcnn_branch_needs_precomputed_proposals_and_bad_names_fail():
    inputs = synthetic_inputs()
    for x in inputs:
        del x["proposals"]
    with EventStorage(), pytest.raises(ValueError, match="LOAD_PROPOSALS"):
        _model()(inputs)
    with pytest.raises(ValueError, match="frozen"):
        _model("MODEL.JOINT_RCNN.FROZEN", ["conv9"])


def test_seeded_loss_regression():
    """The losses of a fixed model on fixed inputs must not change (as detectron2's test_rpn)."""
    losses = _losses(_model(seed=121), seed=7)
    expected = {
        "loss_rpn_cls": 0.692997395992279,
        "loss_rpn_loc": 0.008403723128139973,
        "loss_cls": 0.6960377097129822,
        "loss_box_reg": 1.3257708549499512,
    }
    got = {k: float(v) for k, v in losses.items()}
    assert got == pytest.approx(expected, rel=1e-4, abs=1e-6), got


def test_inference_uses_rpn_proposals():
    model = _model("MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.0).eval()
    inputs = [{"image": x["image"], "height": 2 * x["height"], "width": 2 * x["width"]}
              for x in synthetic_inputs()]
    with torch.no_grad():
        outputs = model(inputs)
    assert len(outputs) == 2
    inst = outputs[0]["instances"]
    assert inst.image_size == (192, 256) and len(inst) > 0
    assert inst.pred_boxes.tensor.max() <= 256


def test_resnet18_backbone_swaps_in_through_config():
    model = _model(config="joint_R18.yaml")
    assert type(model.backbone).__name__ == "ResNet"
    assert model.backbone.output_shape()["res4"].stride == 16
    losses = _losses(model)
    assert set(losses) == {"loss_rpn_cls", "loss_rpn_loc", "loss_cls", "loss_box_reg"}
    sum(losses.values()).backward()
    assert model.backbone.stem.conv1.weight.grad.abs().sum() > 0
