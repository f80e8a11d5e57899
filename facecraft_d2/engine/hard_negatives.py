# Copyright (c) facecraft_d2 contributors.
"""
Training samples of one greedy cascade stage, written to a crop cache: candidate squares and,
for the later stages, the boxes the already trained earlier stages keep on the full training
images (hard-negative mining: what "greedy" training of a cascade means, section 4.2).

For every training image (``DATASETS.TRAIN`` minus the validation split)::

    faces, ignore  = faces_and_ignore(d)                    # data/cascade_samples.py
    boxes          = candidate_boxes(faces)                 # random, jittered, near squares
    boxes         += square(model.propose(image, MINE_UPTO)) # the earlier stages' survivors
    samples        = label_boxes(boxes, faces, ignore)      # IoU bands, regression targets
    crops          = crop_resized(image, samples, 48)       # the test pipeline's crop

Mined boxes that hit no face (IoU < NEG_IOU) are the earlier stages' false positives: the
next stage's hard negatives (a random ``MINED_NEGATIVES_PER_IMAGE`` of them are kept; mined
positives and parts are all kept). Face-free images (``DATA.BACKGROUND_SETS``) give random
squares and mined boxes only; tight face crops (``DATA.LANDMARK_SETS``) give jittered squares
around their face only.
"""
import logging
import time

import numpy as np
import torch

from detectron2.data import DatasetCatalog
from detectron2.data import detection_utils as utils

from ..data.cascade_loader import split_train_val
from ..data.cascade_samples import (
    candidate_boxes,
    categorize,
    faces_and_ignore,
    inside_image,
    label_boxes,
)
from ..data.crop_cache import CropCacheWriter, finalize_cache
from ..layers import crop_resized
from ..modeling.cascade import square_boxes

__all__ = ["StageSampleMaker", "training_images", "build_stage_cache"]

logger = logging.getLogger(__name__)


def training_images(cfg):
    """
    [(dataset name, dict)] of ``cfg.DATASETS.TRAIN``, each set minus its validation split
    (``MODEL.FACECRAFT.SAMPLER.VAL_FRACTION``, the images the cascade never trains on).
    """
    out = []
    for name in cfg.DATASETS.TRAIN:
        train, val = split_train_val(DatasetCatalog.get(name), cfg.MODEL.FACECRAFT.SAMPLER.VAL_FRACTION)
        logger.info("%s: %d training images, %d held out", name, len(train), len(val))
        out += [(name, d) for d in train]
    return out


class StageSampleMaker:
    """
    ``maker(dataset_name, dataset_dict, generator) -> (crops uint8 (K, 3, S, S), ious (K,),
    deltas (K, 4))``: the samples of one image for the stage after ``MINE_UPTO``.

    Args:
        cfg (CfgNode): ``MODEL.FACECRAFT.DATA.*``, ``NEG_IOU``, ``SAMPLER.INPUT_SIZE``.
        model (FaceCraftCascade): gives the box encoding (``box2box``) and, when
            ``DATA.MINE_UPTO`` is set, the earlier stages that mine.
    """

    def __init__(self, cfg, model):
        fc = cfg.MODEL.FACECRAFT
        self.data, self.model = fc.DATA, model
        self.neg_iou, self.size = fc.NEG_IOU, fc.SAMPLER.INPUT_SIZE
        self.bands = (min(fc.POS_IOU), fc.PART_IOU, fc.NEG_IOU)
        self.mine_upto = fc.DATA.MINE_UPTO or None
        self.mine_thresholds = tuple(fc.DATA.MINE_SCORE_THRESHOLDS) or None
        self.background_sets = set(fc.DATA.BACKGROUND_SETS)
        self.landmark_sets = set(fc.DATA.LANDMARK_SETS)

    def _mined(self, image):
        """
        The squares of the boxes the earlier stages keep on the full image, (M, 4), at the
        stage thresholds ``DATA.MINE_SCORE_THRESHOLDS`` (default: the model's test ones) and
        without test-time flips (``TEST.FLIP_STAGES`` may change without changing a cache).
        """
        settings = {"flip_stages": ()}
        if self.mine_thresholds:
            settings["score_thresholds"] = self.mine_thresholds
        with self.model.test_settings(**settings):
            boxes, _ = self.model.propose([image], self.mine_upto)[0]
        return square_boxes(boxes)

    def _cap_mined_negatives(self, ious, mined, generator):
        """(N,) bool: all samples but a random surplus of mined negatives over the cap."""
        keep = torch.ones(len(ious), dtype=torch.bool)
        neg = torch.nonzero(mined & (ious < self.neg_iou))[:, 0]
        cap = self.data.MINED_NEGATIVES_PER_IMAGE
        if len(neg) > cap:
            keep[neg[torch.randperm(len(neg), generator=generator)[cap:]]] = False
        return keep

    def __call__(self, dataset_name, dataset_dict, generator=None):
        image_np = utils.read_image(dataset_dict["file_name"], format="BGR")
        h, w = image_np.shape[:2]
        image = torch.from_numpy(np.ascontiguousarray(image_np)).permute(2, 0, 1).float()
        faces, ignore = faces_and_ignore(dataset_dict, self.data.MIN_FACE)
        d = self.data
        if dataset_name in self.landmark_sets:
            kw = dict(num_random=0, per_face=d.PER_FACE, near_per_face=0)
        elif dataset_name in self.background_sets:
            kw = dict(num_random=d.BACKGROUND_PER_IMAGE, per_face=0, near_per_face=0)
        else:
            kw = dict(num_random=d.RANDOM_PER_IMAGE, per_face=d.PER_FACE, near_per_face=d.NEAR_PER_FACE)
        boxes = candidate_boxes(faces, h, w, min_side=12.0, shift=d.SHIFT, log_scale=d.LOG_SCALE,
                                generator=generator, **kw)
        mined = torch.zeros(len(boxes), dtype=torch.bool)
        if self.mine_upto and dataset_name not in self.landmark_sets:
            extra = self._mined(image)
            boxes = torch.cat([boxes, extra])
            mined = torch.cat([mined, torch.ones(len(extra), dtype=torch.bool)])
        inside = inside_image(boxes, h, w, d.MAX_OUTSIDE) & ((boxes[:, 2] - boxes[:, 0]) >= 12)
        boxes, mined = boxes[inside], mined[inside]
        lab = label_boxes(boxes, faces, ignore, self.model.box2box, neg_iou=self.neg_iou,
                          ignore_ioa=d.IGNORE_IOA)  # one labelling for candidates and mined boxes
        used = categorize(lab["ious"], *self.bands) >= 0  # drop the ignored band
        used &= self._cap_mined_negatives(lab["ious"], mined[lab["keep"]], generator)
        boxes, ious, deltas = lab["boxes"][used], lab["ious"][used], lab["deltas"][used]
        crops = crop_resized(image, boxes, self.size)
        return crops.round().clamp(0, 255).to(torch.uint8), ious, deltas


def _work(args):
    cfg, model, items, folder, shard, seed = args
    torch.set_num_threads(1)
    maker = StageSampleMaker(cfg, model)
    writer = CropCacheWriter(folder, shard, cfg.MODEL.FACECRAFT.SAMPLER.INPUT_SIZE)
    gen = torch.Generator().manual_seed(seed)
    datasets = list(cfg.DATASETS.TRAIN)  # the manifest's "datasets": each crop's source index
    for i, (name, d) in enumerate(items, 1):
        crops, ious, deltas = maker(name, d, gen)
        writer.add(crops, ious, deltas, source=datasets.index(name))
        if i % 250 == 0 or i == len(items):
            logger.info("%s: %d / %d images, %d samples", shard, i, len(items), writer.count)
    return writer.close()


def build_stage_cache(cfg, model, folder, num_workers=2, max_images=None, seed=0):
    """
    Write the samples of every training image to the crop cache ``folder`` (one shard per
    worker process) and its ``cache.json``.

    Returns:
        dict: the cache manifest (shards, counts, and the config it was made with).
    """
    items = training_images(cfg)
    rng = np.random.default_rng(seed)
    items = [items[i] for i in rng.permutation(len(items))][:max_images]
    model.eval()
    start = time.perf_counter()
    jobs = [(cfg, model, items[k::num_workers], folder, f"shard_{k:02d}", seed * 1000 + k)
            for k in range(num_workers)]
    if num_workers == 1:
        counts = [_work(jobs[0])]
    else:
        ctx = torch.multiprocessing.get_context("fork")
        with ctx.Pool(num_workers) as pool:
            counts = pool.map(_work, jobs)
    manifest = finalize_cache(
        folder, cfg.MODEL.FACECRAFT.SAMPLER.INPUT_SIZE, images=len(items),
        mine_upto=cfg.MODEL.FACECRAFT.DATA.MINE_UPTO, weights=cfg.MODEL.WEIGHTS,
        datasets=list(cfg.DATASETS.TRAIN), seconds=round(time.perf_counter() - start, 1),
    )
    logger.info("Crop cache %s: %d samples from %d images in %.0f s", folder, sum(counts),
                len(items), manifest["seconds"])
    return manifest
