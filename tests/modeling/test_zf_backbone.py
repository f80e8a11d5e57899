# Copyright (c) facecraft_d2 contributors.
import pytest
import torch

from detectron2.config import get_cfg
from detectron2.layers import ShapeSpec
from detectron2.modeling import build_backbone

from facecraft_d2 import add_facecraft_config
from facecraft_d2.modeling import ZF


def _cfg(**zf):
    cfg = get_cfg()
    add_facecraft_config(cfg)
    cfg.MODEL.BACKBONE.NAME = "build_zf_backbone"
    for k, v in zf.items():
        setattr(cfg.MODEL.ZF, k, v)
    return cfg


def test_zf_full_width_shapes_and_strides():
    backbone = build_backbone(_cfg(OUT_FEATURES=["conv1", "conv2", "conv5"]))
    shapes = backbone.output_shape()
    assert {k: (v.channels, v.stride) for k, v in shapes.items()} == {
        "conv1": (96, 4),
        "conv2": (256, 16),
        "conv5": (256, 16),
    }
    out = backbone(torch.rand(2, 3, 224, 160))
    assert out["conv1"].shape == (2, 96, 56, 40)
    assert out["conv2"].shape == (2, 256, 14, 10)
    assert out["conv5"].shape == (2, 256, 14, 10)
    for name, feat in out.items():
        assert feat.shape[1] == shapes[name].channels


def test_zf_width_multiplier_rounds_to_multiples_of_8():
    backbone = ZF(width_mult=0.25)
    assert backbone.output_shape()["conv5"] == ShapeSpec(channels=64, stride=16)
    assert backbone.conv3[0].out_channels == 96
    assert ZF(width_mult=0.01).conv1[0].out_channels == 8


def test_zf_only_builds_needed_layers_and_rejects_unknown_names():
    backbone = ZF(out_features=["conv2"])
    assert not hasattr(backbone, "conv3")
    with pytest.raises(ValueError, match="conv6"):
        ZF(out_features=["conv6"])


def test_zf_norm_and_gradients():
    backbone = build_backbone(_cfg(WIDTH_MULT=0.125, NORM="BN"))
    x = torch.rand(2, 3, 64, 64, requires_grad=True)
    backbone(x)["conv5"].sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert isinstance(backbone.conv1[0].norm, torch.nn.BatchNorm2d)
