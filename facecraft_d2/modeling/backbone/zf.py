# Copyright (c) facecraft_d2 contributors.
"""
ZF-net (Zeiler & Fergus, ECCV 2014) conv1–conv5, as used by Faster R-CNN, without the LRN
layers (FaceCraft section 6.6), with a width multiplier for slim variants that train on a CPU.

Layer           kernel/stride/pad   channels (x WIDTH_MULT)   stride of the output
conv1 + pool1   7/2/3, pool 3/2/1   96                        4
conv2 + pool2   5/2/2, pool 3/2/1   256                       16
conv3           3/1/1               384                       16
conv4           3/1/1               384                       16
conv5           3/1/1               256                       16
"""
from torch import nn

from detectron2.layers import Conv2d, ShapeSpec, get_norm
from detectron2.modeling import BACKBONE_REGISTRY, Backbone

__all__ = ["ZF", "build_zf_backbone"]

# (name, out_channels, kernel, stride, padding, followed by a 3x3/2 max pool)
_ZF_LAYERS = (
    ("conv1", 96, 7, 2, 3, True),
    ("conv2", 256, 5, 2, 2, True),
    ("conv3", 384, 3, 1, 1, False),
    ("conv4", 384, 3, 1, 1, False),
    ("conv5", 256, 3, 1, 1, False),
)


def _scaled(channels, width_mult):
    return max(8, int(round(channels * width_mult / 8.0)) * 8)


class ZF(Backbone):
    """
    ZF-net feature extractor. ``forward`` takes images (N, C, H, W) and returns
    ``{name: (N, C_name, ceil(H / stride), ceil(W / stride))}`` for each name in
    ``out_features`` (spatial sizes follow the conv/pool arithmetic above).
    """

    def __init__(self, in_channels=3, width_mult=1.0, out_features=("conv5",), norm=""):
        """
        Args:
            in_channels (int): input image channels.
            width_mult (float): multiplier of every conv width (rounded to multiples of 8).
            out_features (list[str]): names of the layers to return, among conv1 … conv5.
            norm (str): detectron2 norm after each conv ("" for none, "BN", "GN", …).
        """
        super().__init__()
        names = [l[0] for l in _ZF_LAYERS]
        unknown = set(out_features) - set(names)
        if unknown or not out_features:
            raise ValueError(f"ZF out_features must be among {names}, got {list(out_features)}")
        self._out_features = list(out_features)
        self._out_feature_channels, self._out_feature_strides = {}, {}
        last = max(names.index(n) for n in out_features)
        self.stages, stride = [], 1
        for name, channels, k, s, p, pool in _ZF_LAYERS[: last + 1]:
            channels = _scaled(channels, width_mult)
            layers = [
                Conv2d(in_channels, channels, k, stride=s, padding=p, bias=not norm,
                       norm=get_norm(norm, channels)),
                nn.ReLU(inplace=True),
            ]
            stride *= s
            if pool:
                layers.append(nn.MaxPool2d(kernel_size=3, stride=2, padding=1))
                stride *= 2
            stage = nn.Sequential(*layers)
            self.add_module(name, stage)
            self.stages.append((name, stage))
            self._out_feature_channels[name] = channels
            self._out_feature_strides[name] = stride
            in_channels = channels
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x):
        """
        Args:
            x (Tensor): (N, C, H, W) images.
        Returns:
            dict[str, Tensor]: the requested feature maps.
        """
        outputs = {}
        for name, stage in self.stages:
            x = stage(x)
            if name in self._out_features:
                outputs[name] = x
        return outputs

    def output_shape(self):
        return {
            name: ShapeSpec(
                channels=self._out_feature_channels[name], stride=self._out_feature_strides[name]
            )
            for name in self._out_features
        }


@BACKBONE_REGISTRY.register()
def build_zf_backbone(cfg, input_shape: ShapeSpec):
    """Build :class:`ZF` from ``cfg.MODEL.ZF`` (see ``add_facecraft_config``)."""
    return ZF(
        in_channels=input_shape.channels,
        width_mult=cfg.MODEL.ZF.WIDTH_MULT,
        out_features=cfg.MODEL.ZF.OUT_FEATURES,
        norm=cfg.MODEL.ZF.NORM,
    )
