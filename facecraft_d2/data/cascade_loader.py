# Copyright (c) facecraft_d2 contributors.
"""
Infinite training-batch loader of the FaceCraft cascade (Sec. 4.2 of the paper).

Images of ``cfg.DATASETS.TRAIN`` (minus a deterministic validation split) are shuffled every
epoch and turned into patches by :class:`~facecraft_d2.data.cascade_sampler.CascadeWindowSampler`,
optionally in ``torch.utils.data.DataLoader`` workers so that decoding overlaps training.
Patches of many images are mixed in a shuffle pool (negatives) and a smaller positive pool,
and drawn as batches of exactly ``batch_size`` patches with ``round(batch_size *
positive_fraction)`` positives (fewer only while positives run short; the paper keeps about
5% positives)::

    loader = build_cascade_train_loader(cfg)
    data = next(iter(loader))  # {"images": (B,3,S,S), "ious": (B,), "deltas": (B,4)}
"""
import itertools
import logging
from typing import Dict, Iterator, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from detectron2.data import DatasetCatalog
from detectron2.utils import comm

from .cascade_sampler import CascadeWindowSampler
from .splits import split_train_val

__all__ = [
    "split_train_val",
    "CascadeImageStream",
    "CascadeTrainLoader",
    "build_cascade_train_loader",
    "estimate_delta_stats",
]

logger = logging.getLogger(__name__)

_KEYS = ("images", "ious", "deltas")


def _seed(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) % 2**63 for p in parts]).generate_state(1)[0])


class CascadeImageStream(IterableDataset):
    """
    Infinite stream of per-image patch dicts (the sampler's output), images shuffled every
    epoch with ``seed``. Images are sharded over distributed ranks and DataLoader workers
    (``perm[rank::world_size][worker::num_workers]``); each (epoch, rank, worker) has its own
    seeded generator, so the stream is reproducible for a fixed number of workers.
    """

    def __init__(
        self, dataset_dicts: Sequence[dict], sampler, *, seed: int = 0, rank: int = 0,
        world_size: int = 1,
    ):
        if len(dataset_dicts) == 0:
            raise ValueError("CascadeImageStream needs at least one image")
        self.dataset_dicts = list(dataset_dicts)
        self.sampler = sampler
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        n = len(self.dataset_dicts)
        for epoch in itertools.count():
            epoch_gen = torch.Generator().manual_seed(_seed(self.seed, epoch))
            perm = torch.randperm(n, generator=epoch_gen)
            shard = perm[self.rank :: self.world_size][worker::num_workers].tolist()
            if not shard:  # fewer images than shards: take one anyway, never stall
                shard = [int(perm[(self.rank * num_workers + worker) % n])]
            gen = torch.Generator().manual_seed(_seed(self.seed, epoch, self.rank, worker, 1))
            for i in shard:
                yield self.sampler(self.dataset_dicts[i], generator=gen)


class _PatchPool:
    """Fixed-size buffer of patches with O(k) random removal (swap with the tail)."""

    def __init__(self, capacity: int, patch_shape):
        self.capacity, self.n = capacity, 0
        self.data = {
            "images": torch.empty((capacity,) + tuple(patch_shape)),
            "ious": torch.empty(capacity),
            "deltas": torch.empty((capacity, 4)),
        }

    def pop_random(self, k: int, generator) -> Dict[str, torch.Tensor]:
        k = min(k, self.n)
        idx = torch.randperm(self.n, generator=generator)[:k]
        out = {key: v[idx].clone() for key, v in self.data.items()}
        tail = torch.zeros(self.n, dtype=torch.bool)
        tail[self.n - k :] = True
        taken = torch.zeros(self.n, dtype=torch.bool)
        taken[idx] = True
        holes = torch.nonzero(taken & ~tail).flatten()
        movers = torch.nonzero(tail & ~taken).flatten()
        for v in self.data.values():
            v[holes] = v[movers]
        self.n -= k
        return out

    def add(self, patches: Dict[str, torch.Tensor], generator) -> None:
        m = min(len(patches["ious"]), self.capacity)
        if self.n + m > self.capacity:  # full: drop random old patches to make room
            self.pop_random(self.n + m - self.capacity, generator)
        for key, v in self.data.items():
            v[self.n : self.n + m] = patches[key][:m]
        self.n += m


class CascadeTrainLoader:
    """
    Infinite iterable of batches ``{"images": (B,3,S,S), "ious": (B,), "deltas": (B,4)}``.

    Before every batch the negative pool is refilled to ``pool_size`` patches; the batch takes
    ``round(batch_size * positive_fraction)`` random positives (``ious >= pos_iou_min``) from
    the positive pool (capacity ``max(batch_size, pool_size * positive_fraction)``; random old
    positives are dropped when it is full) and fills up with random negatives.
    """

    def __init__(
        self,
        dataset_dicts: Sequence[dict],
        sampler: CascadeWindowSampler,
        *,
        batch_size: int = 256,
        positive_fraction: float = 0.05,
        pool_size: int = 4096,
        num_workers: int = 0,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if batch_size <= 0 or not 0 <= positive_fraction <= 1:
            raise ValueError(f"bad batch_size={batch_size} / positive_fraction={positive_fraction}")
        self.sampler = sampler
        self.dataset_dicts = dataset_dicts
        self.stream = CascadeImageStream(
            dataset_dicts, sampler, seed=seed, rank=rank, world_size=world_size
        )
        self.batch_size = int(batch_size)
        self.num_positives = int(round(batch_size * positive_fraction))
        self.pool_size = max(int(pool_size), self.batch_size)
        self.pos_capacity = max(self.batch_size, int(self.pool_size * positive_fraction))
        self.num_workers = int(num_workers)
        self.seed, self.rank = int(seed), int(rank)

    def _images(self) -> Iterator[Dict[str, torch.Tensor]]:
        if self.num_workers == 0:
            return iter(self.stream)
        loader = DataLoader(
            self.stream, batch_size=None, num_workers=self.num_workers, prefetch_factor=4
        )
        return iter(loader)

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        gen = torch.Generator().manual_seed(_seed(self.seed, self.rank, 2))
        images = self._images()
        s = self.sampler.input_size
        # room for one more image above pool_size, so that no negative is ever dropped
        extra = int(getattr(self.sampler, "negatives_per_image", self.pool_size))
        neg_pool = _PatchPool(self.pool_size + extra, (3, s, s))
        pos_pool = _PatchPool(self.pos_capacity, (3, s, s))
        thresh = self.sampler.pos_iou_min
        while True:
            for n_images in itertools.count():
                if neg_pool.n >= self.pool_size:
                    break
                if n_images > 10000:
                    raise RuntimeError("10000 images in a row gave too few negative patches")
                patches = next(images)
                is_pos = patches["ious"] >= thresh
                pos_pool.add({k: patches[k][is_pos] for k in _KEYS}, gen)
                neg_pool.add({k: patches[k][~is_pos] for k in _KEYS}, gen)
            pos = pos_pool.pop_random(self.num_positives, gen)
            neg = neg_pool.pop_random(self.batch_size - len(pos["ious"]), gen)
            order = torch.randperm(self.batch_size, generator=gen)
            yield {k: torch.cat([pos[k], neg[k]])[order] for k in _KEYS}


def build_cascade_train_loader(
    cfg, dataset_names: Optional[Sequence[str]] = None, *, seed: Optional[int] = None
) -> CascadeTrainLoader:
    """
    Build the cascade training loader from ``cfg.DATASETS.TRAIN`` (or ``dataset_names``),
    excluding the ``MODEL.FACECRAFT.SAMPLER.VAL_FRACTION`` validation split.

    Args:
        cfg (CfgNode): with ``MODEL.FACECRAFT.SAMPLER.*`` and ``DATALOADER.NUM_WORKERS``.
        dataset_names (list[str]): registered datasets; default ``cfg.DATASETS.TRAIN``.
        seed (int): default ``cfg.SEED`` if >= 0, else a random seed shared by all ranks (the
            ranks shard one permutation of the images per epoch).
    Returns:
        CascadeTrainLoader: iterate it for batches; ``SAMPLER.BATCH_SIZE`` is the total over
        all processes (each rank gets ``BATCH_SIZE // world_size`` patches of its own images).
    """
    names = list(dataset_names if dataset_names is not None else cfg.DATASETS.TRAIN)
    if not names:
        raise ValueError("no training dataset: set cfg.DATASETS.TRAIN")
    dicts = [d for name in names for d in DatasetCatalog.get(name)]
    s = cfg.MODEL.FACECRAFT.SAMPLER
    train, val = split_train_val(dicts, s.VAL_FRACTION)
    logger.info(
        "Cascade loader: %d training images, %d held out for validation, from %s",
        len(train), len(val), names,
    )
    if seed is None:
        seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()  # same on all ranks
    world = comm.get_world_size()
    if s.BATCH_SIZE % world != 0:
        raise ValueError(
            f"SAMPLER.BATCH_SIZE={s.BATCH_SIZE} must be divisible by {world} processes"
        )
    return CascadeTrainLoader(
        train,
        CascadeWindowSampler(cfg),
        batch_size=s.BATCH_SIZE // world,
        positive_fraction=s.POSITIVE_FRACTION,
        pool_size=s.POOL_SIZE,
        num_workers=cfg.DATALOADER.NUM_WORKERS,
        seed=seed,
        rank=comm.get_rank(),
        world_size=world,
    )


def estimate_delta_stats(
    loader_or_sampler,
    dataset_dicts: Sequence[dict],
    num_images: int = 200,
    *,
    iou_threshold: Optional[float] = None,
    seed: int = 0,
) -> Tuple[torch.Tensor, torch.Tensor]:
    """
    Mean and std of the regression targets of positives, as the training batches present them
    (flipped patches included), measured on ``num_images`` random images of ``dataset_dicts``
    (pass training images only). The model normalises targets with them (paper, Sec. 4.1).

    Args:
        loader_or_sampler: a :class:`CascadeTrainLoader` (its sampler is used) or a sampler.
        iou_threshold: positives are patches with IoU >= this; default the sampler's
            ``pos_iou_min``.
    Returns:
        (mean (4,), std (4,)) float32; (zeros, ones) if no positive was found.
    """
    sampler = getattr(loader_or_sampler, "sampler", loader_or_sampler)
    thresh = sampler.pos_iou_min if iou_threshold is None else iou_threshold
    gen = torch.Generator().manual_seed(_seed(seed, 3))
    order = torch.randperm(len(dataset_dicts), generator=gen)[:num_images].tolist()
    deltas = []
    for i in order:
        d = dataset_dicts[i]
        if hasattr(sampler, "sample_windows") and "height" in d and "width" in d:
            out = sampler.sample_windows(d, gen)  # no image decoding needed
        else:
            out = sampler(d, generator=gen)
        deltas.append(out["deltas"][out["ious"] >= thresh])
    deltas = torch.cat(deltas) if deltas else torch.zeros((0, 4))
    if len(deltas) < 2:
        logger.warning(
            "estimate_delta_stats: %d positives in %d images; using mean 0, std 1",
            len(deltas), len(order),
        )
        return torch.zeros(4), torch.ones(4)
    return deltas.mean(0), deltas.std(0).clamp(min=1e-6)
