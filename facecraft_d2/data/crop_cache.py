# Copyright (c) facecraft_d2 contributors.
"""
An on-disk cache of cascade training crops, and the training loader that reads it.

Cutting crops from decoded JPEGs costs far more than the small x12 / x24 nets take to learn
from them, so the samples of each greedy stage are cut once (``tools/build_crop_cache.py``)
into a folder outside the repository::

    <cache>/cache.json        {"size": 48, "shards": [{"name": "shard_00", "count": N}, ...], ...}
    <cache>/shard_00.crops    uint8 (N, 3, S, S) BGR crops, raw (read as a numpy memmap)
    <cache>/shard_00.npz      "ious" float32 (N,), "deltas" float32 (N, 4) raw targets,
                              "sources" int16 (N,): index of the crop's dataset in the
                              manifest's "datasets" (-1: unknown; caches before stop 20)

:class:`CropCacheLoader` draws batches from one or more caches with fixed numbers of
negatives, part faces and positives (the ``RATIOS`` of the config) and augments them
(:class:`~facecraft_d2.data.cascade_augment.CropAugmentation`). Crops of the datasets named
in ``DATA.CLASSIFICATION_ONLY_SETS`` carry ``box_valid = False``: they train the face
classification but not the box regression. Its batches have the same keys
as the online sampler's (:mod:`facecraft_d2.data.cascade_loader`), so the model trains on
either.
"""
import json
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, Iterator, List, Sequence

import numpy as np
import torch

from detectron2.utils import comm

from ..utils.io import atomic_write_json
from .cascade_augment import CropAugmentation
from .cascade_samples import NEGATIVE, PART, POSITIVE, categorize

__all__ = ["CropCacheWriter", "CropCache", "CropCacheLoader", "build_crop_cache_loader"]

logger = logging.getLogger(__name__)
_MANIFEST = "cache.json"


class CropCacheWriter:
    """
    Appends crops to one shard of a cache folder; :meth:`close` writes the shard's targets.
    Several writers (one per process) may fill the same folder with different shard names;
    :func:`finalize_cache` then lists them in ``cache.json``.
    """

    def __init__(self, folder, shard="shard_00", size=48):
        os.makedirs(folder, exist_ok=True)
        self.folder, self.shard, self.size = folder, shard, int(size)
        self._crops = open(os.path.join(folder, shard + ".crops.part"), "wb")
        self._ious, self._deltas, self._sources, self.count = [], [], [], 0

    def add(self, crops, ious, deltas, source=-1):
        """
        crops: float or uint8 (K, 3, S, S) BGR 0-255; ious (K,); deltas (K, 4); source (int):
        the index of the crops' dataset in the manifest's ``datasets`` (-1: unknown).
        """
        if crops.shape[1:] != (3, self.size, self.size):
            raise ValueError(f"expected (K, 3, {self.size}, {self.size}) crops, got {tuple(crops.shape)}")
        arr = crops.round().clamp(0, 255).to(torch.uint8) if crops.is_floating_point() else crops
        self._crops.write(np.ascontiguousarray(arr.numpy()).tobytes())
        self._ious.append(ious.float().numpy())
        self._deltas.append(deltas.float().numpy().reshape(-1, 4))
        self._sources.append(np.full(len(arr), source, np.int16))
        self.count += len(arr)

    def close(self):
        """Flush the shard (renamed into place only when complete). Returns its sample count."""
        self._crops.close()
        ious = np.concatenate(self._ious) if self._ious else np.zeros(0, np.float32)
        deltas = np.concatenate(self._deltas) if self._deltas else np.zeros((0, 4), np.float32)
        sources = np.concatenate(self._sources) if self._sources else np.zeros(0, np.int16)
        np.savez(os.path.join(self.folder, self.shard + ".npz"), ious=ious, deltas=deltas,
                 sources=sources)
        os.replace(os.path.join(self.folder, self.shard + ".crops.part"),
                   os.path.join(self.folder, self.shard + ".crops"))
        return self.count


def finalize_cache(folder, size=48, **info):
    """Write ``cache.json`` listing every complete shard in ``folder``; returns the manifest."""
    shards = sorted(f[: -len(".crops")] for f in os.listdir(folder) if f.endswith(".crops"))
    entries = []
    for name in shards:
        with np.load(os.path.join(folder, name + ".npz")) as z:
            entries.append({"name": name, "count": int(len(z["ious"]))})
    manifest = {"size": int(size), "shards": entries, **info}
    atomic_write_json(os.path.join(folder, _MANIFEST), manifest)
    return manifest


class CropCache:
    """
    Read-only view of a cache folder. ``crops[i]`` is a uint8 (3, S, S) memmap row;
    ``ious`` (N,), ``deltas`` (N, 4) and ``sources`` (N,) int64 (the index of each crop's
    dataset in ``datasets``, -1 where the cache does not record it) are in memory.
    """

    def __init__(self, folder):
        path = os.path.join(folder, _MANIFEST)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"{folder} is not a crop cache (no {_MANIFEST}): build it with "
                                    "tools/build_crop_cache.py")
        with open(path) as f:
            self.manifest = json.load(f)
        self.folder, self.size = folder, int(self.manifest["size"])
        self.datasets = list(self.manifest.get("datasets", []))
        self._maps, ious, deltas, sources = [], [], [], []
        for e in self.manifest["shards"]:
            if e["count"] == 0:
                continue
            self._maps.append(np.memmap(os.path.join(folder, e["name"] + ".crops"), np.uint8, "r",
                                        shape=(e["count"], 3, self.size, self.size)))
            with np.load(os.path.join(folder, e["name"] + ".npz")) as z:
                ious.append(z["ious"])
                deltas.append(z["deltas"])
                sources.append(z["sources"] if "sources" in z.files else np.full(e["count"], -1))
        self.ious = torch.from_numpy(np.concatenate(ious)) if ious else torch.zeros(0)
        self.deltas = torch.from_numpy(np.concatenate(deltas)) if deltas else torch.zeros((0, 4))
        self.sources = (torch.from_numpy(np.concatenate(sources).astype(np.int64)) if sources
                        else torch.zeros(0, dtype=torch.long))
        self._starts = np.cumsum([0] + [len(m) for m in self._maps])

    def __len__(self):
        return int(self._starts[-1])

    def gather(self, index):
        """(K,) int64 indices -> uint8 (K, 3, S, S) tensor, in the order given."""
        index = np.asarray(index, dtype=np.int64)
        out = np.empty((len(index), 3, self.size, self.size), np.uint8)
        shard = np.searchsorted(self._starts, index, side="right") - 1
        for s in np.unique(shard):
            sel = np.nonzero(shard == s)[0]
            local = index[sel] - self._starts[s]
            order = np.argsort(local)  # sequential reads
            out[sel[order]] = self._maps[s][local[order]]
        return torch.from_numpy(out)

    def box_valid(self, classification_only_sets=()):
        """
        (N,) bool: the crops whose regression targets train the box regression, i.e. all but
        those of ``classification_only_sets`` (dataset names).
        Raises ValueError when such sets are asked for but the cache does not record sources.
        """
        valid = torch.ones(len(self), dtype=torch.bool)
        drop = [i for i, d in enumerate(self.datasets) if d in set(classification_only_sets)]
        if classification_only_sets and len(self) and bool((self.sources < 0).any()):
            raise ValueError(f"{self.folder} does not record each crop's dataset (cut before "
                             "DATA.CLASSIFICATION_ONLY_SETS existed): build it again with "
                             "tools/build_crop_cache.py")
        for i in drop:
            valid &= self.sources != i
        return valid


class CropCacheLoader:
    """
    Infinite iterable of batches ``{"images": (B, 3, S, S) float BGR, "ious": (B,),
    "deltas": (B, 4), "box_valid": (B,) bool}`` with, per batch, ``ratios`` (negatives :
    parts : positives) of the samples drawn from the union of the caches, each category
    cycling through random permutations of its samples. Samples in the IGNORED band are never
    drawn. ``box_valid`` is False for the crops of ``classification_only_sets``.
    """

    def __init__(self, caches: Sequence[CropCache], *, batch_size=384, ratios=(3, 1, 1),
                 pos_iou=0.65, part_iou=0.4, neg_iou=0.3, augment=None, seed=0,
                 classification_only_sets=()):
        if not caches:
            raise ValueError("CropCacheLoader needs at least one crop cache")
        if len({c.size for c in caches}) != 1:
            raise ValueError("all crop caches must have the same crop size")
        if batch_size <= 0 or len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
            raise ValueError(f"bad batch_size={batch_size} / ratios={ratios}")
        self.caches, self.batch_size, self.seed = list(caches), int(batch_size), int(seed)
        self.augment = augment or CropAugmentation(flip=False, brightness=0, contrast=0,
                                                   saturation=0, grayscale_prob=0)
        self.bands = (pos_iou, part_iou, neg_iou)
        self.box_valid = [c.box_valid(classification_only_sets) for c in self.caches]
        # (cache index, row) of every sample, grouped by category (each cache categorized once)
        cats = [categorize(c.ious, pos_iou, part_iou, neg_iou).numpy() for c in self.caches]
        self.pools: Dict[int, np.ndarray] = {
            cat: np.concatenate([np.stack([np.full(int((k == cat).sum()), ci), np.nonzero(k == cat)[0]], 1)
                                 for ci, k in enumerate(cats)]).astype(np.int64)
            for cat in (NEGATIVE, PART, POSITIVE)
        }
        self.counts = self._per_batch(ratios)
        logger.info("Crop caches %s: %s samples (negatives / parts / positives), %s per batch",
                    [c.folder for c in self.caches],
                    [len(self.pools[c]) for c in (NEGATIVE, PART, POSITIVE)], self.counts)

    def _per_batch(self, ratios):
        """Samples per category and batch, summing to batch_size; empty categories give theirs to the others."""
        ratios = [r if len(self.pools[c]) else 0 for r, c in zip(ratios, (NEGATIVE, PART, POSITIVE))]
        if sum(ratios) == 0:
            raise ValueError("the crop caches hold no sample of the requested categories")
        counts = [int(self.batch_size * r / sum(ratios)) for r in ratios]
        counts[int(np.argmax(ratios))] += self.batch_size - sum(counts)
        return dict(zip((NEGATIVE, PART, POSITIVE), counts))

    def delta_stats(self):
        """Mean and std (4,) of the raw regression targets of the positives and parts."""
        pos_iou, part_iou, _ = self.bands
        d = torch.cat([c.deltas[(c.ious >= min(part_iou, pos_iou)) & v]
                       for c, v in zip(self.caches, self.box_valid)])
        if len(d) < 2:
            return torch.zeros(4), torch.ones(4)
        return d.mean(0), d.std(0).clamp(min=1e-6)

    def _draws(self, rng) -> Iterator[Dict[int, np.ndarray]]:
        cursors = {c: (rng.permutation(len(p)), 0) for c, p in self.pools.items() if len(p)}
        while True:
            batch = {}
            for cat, n in self.counts.items():
                if n == 0:
                    continue
                picks = []
                while n > 0:
                    perm, pos = cursors[cat]
                    if pos >= len(perm):
                        perm, pos = rng.permutation(len(perm)), 0
                    take = perm[pos : pos + n]
                    cursors[cat] = (perm, pos + len(take))
                    picks.append(self.pools[cat][take])
                    n -= len(take)
                batch[cat] = np.concatenate(picks)
            yield batch

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        """Batches prepared one ahead in a background thread (memmap reads release the GIL)."""
        batches = self._batches()
        with ThreadPoolExecutor(1) as pool:
            pending = pool.submit(next, batches)
            while True:
                batch = pending.result()
                pending = pool.submit(next, batches)
                yield batch

    def _batches(self) -> Iterator[Dict[str, torch.Tensor]]:
        rng = np.random.default_rng(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        for batch in self._draws(rng):
            rows = np.concatenate(list(batch.values()))
            rows = rows[rng.permutation(len(rows))]
            images = torch.empty((len(rows), 3, self.caches[0].size, self.caches[0].size))
            ious, deltas = torch.empty(len(rows)), torch.empty((len(rows), 4))
            box_valid = torch.empty(len(rows), dtype=torch.bool)
            for ci, cache in enumerate(self.caches):
                sel = np.nonzero(rows[:, 0] == ci)[0]
                if len(sel) == 0:
                    continue
                idx = rows[sel, 1]
                images[sel] = cache.gather(idx).float()
                ious[sel], deltas[sel] = cache.ious[idx], cache.deltas[idx]
                box_valid[sel] = self.box_valid[ci][idx]
            images, deltas = self.augment(images, deltas, gen)
            yield {"images": images, "ious": ious, "deltas": deltas, "box_valid": box_valid}


def build_crop_cache_loader(cfg, *, seed=None) -> CropCacheLoader:
    """
    The training loader over ``cfg.MODEL.FACECRAFT.DATA.CACHE_DIRS``, with the category bands
    of ``MODEL.FACECRAFT`` (POS_IOU of the first trained branch, PART_IOU, NEG_IOU) and the
    augmentation of ``MODEL.FACECRAFT.DATA.AUGMENT``; ``DATA.CLASSIFICATION_ONLY_SETS`` train no
    box regression. ``SAMPLER.BATCH_SIZE`` is the total over
    all processes; each rank draws with its own seed.
    """
    fc = cfg.MODEL.FACECRAFT
    caches: List[CropCache] = [CropCache(os.path.expanduser(d)) for d in fc.DATA.CACHE_DIRS]
    world = comm.get_world_size()
    if fc.SAMPLER.BATCH_SIZE % world != 0:
        raise ValueError(f"SAMPLER.BATCH_SIZE={fc.SAMPLER.BATCH_SIZE} must be divisible by {world} processes")
    if seed is None:
        seed = cfg.SEED if cfg.SEED >= 0 else comm.shared_random_seed()
    return CropCacheLoader(
        caches,
        batch_size=fc.SAMPLER.BATCH_SIZE // world,
        ratios=tuple(fc.DATA.RATIOS),
        pos_iou=min(fc.POS_IOU),
        part_iou=fc.PART_IOU,
        neg_iou=fc.NEG_IOU,
        augment=CropAugmentation(cfg),
        seed=seed + comm.get_rank(),
        classification_only_sets=tuple(fc.DATA.CLASSIFICATION_ONLY_SETS),
    )
