# Copyright (c) facecraft_d2 contributors.
"""
Photometric and geometric augmentation of cascade training batches, applied on whole
(B, 3, S, S) tensors of BGR 0-255 crops (no per-sample Python loops).

Geometric scale / shift jitter happens earlier, when the samples are chosen: positives and
parts are squares jittered around each face (:func:`facecraft_d2.data.cascade_samples.
candidate_boxes`), so each face is seen at many offsets and scales.
"""
import torch

from detectron2.config import configurable

__all__ = ["CropAugmentation"]

# ITU-R BT.601 luma weights in BGR order.
_LUMA_BGR = (0.114, 0.587, 0.299)


class CropAugmentation:
    """
    ``aug(images, deltas, generator) -> (images, deltas)``, each image independently:

    * horizontal flip with probability 0.5 (the regression target's dx is negated);
    * brightness: pixels times U(1 - b, 1 + b);
    * contrast: blended with the crop's mean grey by U(1 - c, 1 + c);
    * saturation: blended with its own grey image by U(1 - s, 1 + s);
    * grayscale with probability ``grayscale_prob`` (all three channels set to luma), so
      that grey photos look like something the network has seen.

    Values are clamped to 0-255.
    """

    @configurable
    def __init__(self, *, flip=True, brightness=0.25, contrast=0.25, saturation=0.25,
                 grayscale_prob=0.1):
        for name, v in (("brightness", brightness), ("contrast", contrast),
                        ("saturation", saturation)):
            if not 0 <= v < 1:
                raise ValueError(f"{name} jitter must be in [0, 1), got {v}")
        if not 0 <= grayscale_prob <= 1:
            raise ValueError(f"grayscale_prob must be in [0, 1], got {grayscale_prob}")
        self.flip = bool(flip)
        self.brightness, self.contrast, self.saturation = brightness, contrast, saturation
        self.grayscale_prob = float(grayscale_prob)

    @classmethod
    def from_config(cls, cfg):
        a = cfg.MODEL.FACECRAFT.DATA.AUGMENT
        return {
            "flip": a.FLIP,
            "brightness": a.BRIGHTNESS,
            "contrast": a.CONTRAST,
            "saturation": a.SATURATION,
            "grayscale_prob": a.GRAYSCALE_PROB,
        }

    @staticmethod
    def _uniform(n, width, generator):
        return 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * width

    def __call__(self, images, deltas, generator=None):
        """
        Args:
            images (Tensor): (B, 3, S, S) float BGR crops, 0-255.
            deltas (Tensor): (B, 4) regression targets (dx, dy, dw, dh).
        Returns:
            (images, deltas): new tensors, same shapes.
        """
        n = len(images)
        images, deltas = images.clone(), deltas.clone()
        if n == 0:
            return images, deltas
        if self.flip:
            flip = torch.rand(n, generator=generator) < 0.5
            images[flip] = images[flip].flip(-1)
            deltas[flip, 0] = -deltas[flip, 0]
        luma = images.new_tensor(_LUMA_BGR).view(1, 3, 1, 1)
        if self.brightness > 0:
            images = images * self._uniform(n, self.brightness, generator)
        if self.contrast > 0:
            mean = (images * luma).sum(1, keepdim=True).mean((2, 3), keepdim=True)
            images = mean + (images - mean) * self._uniform(n, self.contrast, generator)
        grey = (images * luma).sum(1, keepdim=True)
        if self.saturation > 0:
            images = grey + (images - grey) * self._uniform(n, self.saturation, generator)
        if self.grayscale_prob > 0:
            to_grey = torch.rand(n, generator=generator) < self.grayscale_prob
            images[to_grey] = ((images[to_grey] * luma).sum(1, keepdim=True)).expand(-1, 3, -1, -1)
        return images.clamp(0, 255), deltas
