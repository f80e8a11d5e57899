# Copyright (c) facecraft_d2 contributors.
"""
Training augmentation and loader of the RPN + Fast R-CNN models (``JointRCNN``): detectron2's
multi-scale resize and horizontal flip, then photometric jitter (brightness, contrast,
saturation) and random grayscale, configured by ``INPUT.PHOTOMETRIC``.

detectron2 v0.6's ``RandomSaturation`` assumes RGB; these models read BGR
(``INPUT.FORMAT``), so saturation and grayscale blend with a luma image computed in the
image's own channel order here.

With ``MODEL.IGNORE_REGIONS.ENABLED`` the loader's :class:`IgnoreRegionMapper` keeps crowd
boxes and faces smaller than ``MIN_FACE`` (after the resize) as ignore regions.
"""
import numpy as np
import torch

from detectron2.config import configurable
from detectron2.data import DatasetMapper, build_detection_train_loader
from detectron2.data import detection_utils as utils
from detectron2.data import transforms as T
from fvcore.transforms.transform import BlendTransform, NoOpTransform

from .cascade_augment import _LUMA_BGR

__all__ = [
    "IgnoreRegionMapper",
    "RandomGrayscale",
    "RandomLumaSaturation",
    "build_rcnn_train_augmentation",
    "build_rcnn_train_loader",
]

# ITU-R BT.601 luma weights by channel order (the cascade's crop augmentation uses the same).
_LUMA = {"BGR": _LUMA_BGR, "RGB": _LUMA_BGR[::-1]}


def _check_format(image_format):
    if image_format not in _LUMA:
        raise ValueError(f"image_format must be one of {sorted(_LUMA)}, got {image_format}")


def _blend_with_luma(image, image_format, weight):
    """``weight * image + (1 - weight) * luma(image)`` as a transform; luma is (H, W, 1) float."""
    luma = image.astype(np.float32).dot(np.asarray(_LUMA[image_format], np.float32))[:, :, None]
    return BlendTransform(src_image=luma, src_weight=1.0 - weight, dst_weight=weight)


class RandomLumaSaturation(T.Augmentation):
    """
    Blend an (H, W, 3) image with its own grey image: ``w * image + (1 - w) * grey``, with
    ``w ~ U(intensity_min, intensity_max)`` (1 keeps the image, 0 makes it grey).
    """

    def __init__(self, intensity_min, intensity_max, image_format="BGR"):
        super().__init__()
        _check_format(image_format)
        self._init(locals())

    def get_transform(self, image):
        w = np.random.uniform(self.intensity_min, self.intensity_max)
        return _blend_with_luma(image, self.image_format, w)


class RandomGrayscale(T.Augmentation):
    """With probability ``prob``, replace all three channels of an (H, W, 3) image by its luma."""

    def __init__(self, prob, image_format="BGR"):
        super().__init__()
        if not 0 <= prob <= 1:
            raise ValueError(f"prob must be in [0, 1], got {prob}")
        _check_format(image_format)
        self._init(locals())

    def get_transform(self, image):
        if np.random.uniform() >= self.prob:
            return NoOpTransform()
        return _blend_with_luma(image, self.image_format, 0.0)


def build_rcnn_train_augmentation(cfg):
    """
    Returns:
        list[Augmentation]: ``ResizeShortestEdge`` (``INPUT.MIN_SIZE_TRAIN``, scale jitter) and
        ``RandomFlip`` as detectron2 builds them, then the ``INPUT.PHOTOMETRIC`` jitter; a
        jitter of 0 is left out.
    """
    augs = utils.build_augmentation(cfg, is_train=True)
    p = cfg.INPUT.PHOTOMETRIC
    if p.BRIGHTNESS > 0:
        augs.append(T.RandomBrightness(1 - p.BRIGHTNESS, 1 + p.BRIGHTNESS))
    if p.CONTRAST > 0:
        augs.append(T.RandomContrast(1 - p.CONTRAST, 1 + p.CONTRAST))
    if p.SATURATION > 0:
        augs.append(RandomLumaSaturation(1 - p.SATURATION, 1 + p.SATURATION, cfg.INPUT.FORMAT))
    if p.GRAYSCALE_PROB > 0:
        augs.append(RandomGrayscale(p.GRAYSCALE_PROB, cfg.INPUT.FORMAT))
    return augs


class IgnoreRegionMapper(DatasetMapper):
    """
    :class:`DatasetMapper` that keeps crowd boxes (``iscrowd``) and faces whose
    ``sqrt(w * h)`` is below ``min_face`` pixels after the transforms, as ground truth flagged
    ``instances.gt_ignore`` (G,) bool (see :mod:`facecraft_d2.modeling.ignore_regions`).
    Boxes only: no masks or keypoints.
    """

    @configurable
    def __init__(self, is_train: bool, *, min_face: float = 0.0, **kwargs):
        super().__init__(is_train, **kwargs)
        if self.use_instance_mask or self.use_keypoint:
            raise ValueError("IgnoreRegionMapper maps boxes only")
        self.min_face = float(min_face)

    @classmethod
    def from_config(cls, cfg, is_train: bool = True):
        ret = super().from_config(cfg, is_train)
        ret["min_face"] = cfg.MODEL.IGNORE_REGIONS.MIN_FACE
        return ret

    def _transform_annotations(self, dataset_dict, transforms, image_shape):
        annos = dataset_dict.pop("annotations")
        crowd = torch.tensor([bool(a.get("iscrowd", 0)) for a in annos], dtype=torch.bool)
        annos = [utils.transform_instance_annotations(a, transforms, image_shape) for a in annos]
        instances = utils.annotations_to_instances(annos, image_shape)
        boxes = instances.gt_boxes
        instances.gt_ignore = crowd | (boxes.area().clamp(min=0).sqrt() < self.min_face)
        dataset_dict["instances"] = utils.filter_empty_instances(instances)


def build_rcnn_train_loader(cfg):
    """
    detectron2's train loader, with :func:`build_rcnn_train_augmentation`, and a
    :class:`DatasetMapper` (:class:`IgnoreRegionMapper` with ``MODEL.IGNORE_REGIONS.ENABLED``).
    """
    mapper_cls = IgnoreRegionMapper if cfg.MODEL.IGNORE_REGIONS.ENABLED else DatasetMapper
    mapper = mapper_cls(cfg, is_train=True, augmentations=build_rcnn_train_augmentation(cfg))
    return build_detection_train_loader(cfg, mapper=mapper)
