# Copyright (c) facecraft_d2 contributors.
"""
The FaceCraft joint network (paper section 4.1, Fig. 1): three branches over one 48x48 input.

Conv widths are not given in the paper; they follow Li et al.'s 12/24/48-nets (CVPR 2015),
which FaceCraft's branches are built after:

    x12  (input avg-pooled to 12x12): conv 3x3 (16) - maxpool 3x3/2 - conv 4x4 (16) = 16x1x1,
         then 1x1 convs to 2 scores and 4 box offsets. Fully convolutional: on a larger image
         it slides a 12x12 window at stride 2.
    x24  (input avg-pooled to 24x24): conv 5x5 (64) - maxpool 3x3/2 - fc 128 ("24fc"),
         concatenated with x12's 16 features into "12-24fc" (144), then 2 scores and 4 offsets.
    x48  (the 48x48 input): conv 5x5 (64) - maxpool 3x3/2 - conv 5x5 (64) - maxpool 3x3/2 -
         fc 256 ("48fc"), concatenated with 12-24fc (400), then 2 scores and 4 offsets.

ReLU after every conv/fc, dropout before every classification or regression layer.
"""
import torch
import torch.nn.functional as F
from torch import nn

from detectron2.config import configurable

__all__ = ["BRANCHES", "STAGE_INPUT_SIZES", "FaceCraftNet", "run_body"]

BRANCHES = ("x12", "x24", "x48")
"""The cascade's branches (stages), in order."""
STAGE_INPUT_SIZES = {"x12": 12, "x24": 24, "x48": 48}
"""Side of the square input each branch sees at test time (the test pipeline's crop sizes)."""


def _conv_pool(in_ch, out_ch, k):
    return [nn.Conv2d(in_ch, out_ch, k), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2)]


def _conv_stack(in_ch, size, convs):
    """
    Conv layers, each followed by a ReLU and optionally a 3x3/2 max pooling, then flattened.

    Args:
        in_ch (int): input channels.
        size (int): side of the square input.
        convs (list[tuple[int, int, bool]]): (channels, kernel, pool after) per conv layer.
    Returns:
        (layers (list[nn.Module]), flattened output features (int)).
    """
    layers = []
    for out_ch, k, pool in convs:
        layers += _conv_pool(in_ch, out_ch, k) if pool else [nn.Conv2d(in_ch, out_ch, k),
                                                              nn.ReLU(inplace=True)]
        size = size - k + 1
        size = (size - 3) // 2 + 1 if pool else size
        if size < 1:
            raise ValueError(f"conv layers {convs!r} leave nothing of the input")
        in_ch = out_ch
    return layers + [nn.Flatten()], in_ch * size * size


def run_body(body, x):
    """
    A branch body (``nn.Sequential``) on ``x``, with each ReLU that precedes a max pooling
    applied after it instead: the same values exactly (ReLU and max commute), on a 4x smaller
    tensor (x12's dense pass over the pyramid: about a fifth faster).
    """
    layers = list(body)
    i = 0
    while i < len(layers):
        layer = layers[i]
        if (isinstance(layer, nn.ReLU) and i + 1 < len(layers)
                and isinstance(layers[i + 1], nn.MaxPool2d)):
            x = F.relu(layers[i + 1](x))
            i += 2
            continue
        x = layer(x)
        i += 1
    return x


class _Head(nn.Module):
    """Dropout, then sibling 2-way score and 4 box-offset layers (1x1 convs on (N, C, H, W))."""

    def __init__(self, in_ch, dropout):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.cls = nn.Conv2d(in_ch, 2, 1)
        self.reg = nn.Conv2d(in_ch, 4, 1)
        nn.init.normal_(self.cls.weight, std=0.01)
        nn.init.normal_(self.reg.weight, std=0.001)
        for layer in (self.cls, self.reg):
            nn.init.zeros_(layer.bias)

    def forward(self, x):
        x = self.dropout(x)
        return self.cls(x), self.reg(x)


class FaceCraftNet(nn.Module):
    """
    The three-branch network. ``forward(x48)`` takes (N, 3, 48, 48) normalized patches; the
    per-stage methods take the patch size each test stage uses (12, 24 or 48).
    """

    @configurable
    def __init__(self, *, x12_channels=16, x24_channels=64, x24_fc=128, x48_channels=(64, 64),
                 x48_fc=256, dropout=0.25, x24_convs=(), x48_convs=()):
        """
        Args:
            x12_channels (int): width of x12's conv layers (its feature is x12_channels x 1 x 1).
            x24_channels (int): width of x24's conv layer.
            x24_convs (list[tuple[int, int, bool]]): x24's conv layers as (channels, kernel,
                max pooling after), instead of one 5x5 conv of ``x24_channels`` and a
                pooling (empty: that one).
            x24_fc (int): width of "24fc".
            x48_channels (tuple[int, int]): widths of x48's two conv layers.
            x48_convs (list[tuple[int, int, bool]]): x48's conv layers as (channels, kernel,
                max pooling after), instead of two 5x5 convs of ``x48_channels``, each with
                a pooling (empty: those).
            x48_fc (int): width of "48fc".
            dropout (float): dropout probability before each output layer.
        """
        super().__init__()
        self.x12_body = nn.Sequential(
            *_conv_pool(3, x12_channels, 3), nn.Conv2d(x12_channels, x12_channels, 4),
            nn.ReLU(inplace=True),
        )
        self.x12_head = _Head(x12_channels, dropout)
        convs, flat = _conv_stack(3, 24, [tuple(c) for c in x24_convs] or [(x24_channels, 5, True)])
        self.x24_body = nn.Sequential(*convs, nn.Linear(flat, x24_fc), nn.ReLU(inplace=True))
        self.x24_head = _Head(x24_fc + x12_channels, dropout)
        c1, c2 = x48_channels
        convs, flat = _conv_stack(3, 48, [tuple(c) for c in x48_convs] or [(c1, 5, True), (c2, 5, True)])
        self.x48_body = nn.Sequential(*convs, nn.Linear(flat, x48_fc), nn.ReLU(inplace=True))
        self.x48_head = _Head(x48_fc + x24_fc + x12_channels, dropout)
        for body in (self.x12_body, self.x24_body, self.x48_body):
            for m in body.modules():
                if isinstance(m, (nn.Conv2d, nn.Linear)):
                    nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                    nn.init.zeros_(m.bias)

    @classmethod
    def from_config(cls, cfg):
        net = cfg.MODEL.FACECRAFT.NET
        return {
            "x12_channels": net.X12_CHANNELS,
            "x24_channels": net.X24_CHANNELS,
            "x24_fc": net.X24_FC,
            "x48_channels": tuple(net.X48_CHANNELS),
            "x48_fc": net.X48_FC,
            "dropout": net.DROPOUT,
            "x24_convs": net.X24_CONVS,
            "x48_convs": net.X48_CONVS,
        }

    def branch_modules(self, branch):
        """The modules that belong to one branch ("x12", "x24" or "x48")."""
        return [getattr(self, f"{branch}_body"), getattr(self, f"{branch}_head")]

    def x12_dense(self, images):
        """
        x12 run fully convolutionally (stage 1 at test time).

        Args:
            images (Tensor): (N, 3, H, W) normalized images, H, W >= 12.
        Returns:
            logits (N, 2, H', W') and deltas (N, 4, H', W') with H' = (H - 12) // 2 + 1 (one
            12x12 window every 2 pixels).
        """
        return self.x12_head(run_body(self.x12_body, images))

    def stage_features(self, patches, upto):
        """
        Branch features of square patches, with the input pooled to each branch's size.

        Args:
            patches (Tensor): (N, 3, S, S) normalized patches, S = 12, 24 or 48, at least the
                size of branch ``upto``.
            upto (str): the last branch to run.
        Returns:
            dict[str, Tensor]: "x12": (N, 16), "x24" (12-24fc): (N, 144), "x48": (N, 400).
        """
        size = patches.shape[-1]
        feats = {"x12": run_body(self.x12_body, F.avg_pool2d(patches, size // 12)).flatten(1)}
        if upto == "x12":
            return feats
        f24 = run_body(self.x24_body, F.avg_pool2d(patches, size // 24) if size > 24 else patches)
        feats["x24"] = torch.cat([f24, feats["x12"]], dim=1)
        if upto == "x24":
            return feats
        feats["x48"] = torch.cat([run_body(self.x48_body, patches), feats["x24"]], dim=1)
        return feats

    def forward(self, patches, upto="x48"):
        """
        Args:
            patches (Tensor): (N, 3, S, S) normalized patches (S = 48 in training).
            upto (str): the last branch to evaluate.
        Returns:
            dict[str, tuple[Tensor, Tensor]]: per branch, logits (N, 2) and deltas (N, 4).
        """
        feats = self.stage_features(patches, upto)
        out = {}
        for name, f in feats.items():
            cls, reg = getattr(self, f"{name}_head")(f[:, :, None, None])
            out[name] = (cls.flatten(1), reg.flatten(1))
        return out
