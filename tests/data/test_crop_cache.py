# Copyright (c) facecraft_d2 contributors.
"""Crop caches: write/read round trip, per-batch category counts, augmentation."""
import numpy as np
import pytest
import torch

from facecraft_d2.data.cascade_augment import CropAugmentation
from facecraft_d2.data.cascade_samples import NEGATIVE, PART, POSITIVE, categorize
from facecraft_d2.data.crop_cache import CropCache, CropCacheLoader, CropCacheWriter, finalize_cache


def _write_cache(folder, n_per_shard=(30, 20), size=8, seed=0):
    gen = torch.Generator().manual_seed(seed)
    written = []
    for k, n in enumerate(n_per_shard):
        w = CropCacheWriter(str(folder), f"shard_{k:02d}", size)
        crops = torch.randint(0, 256, (n, 3, size, size), generator=gen, dtype=torch.uint8)
        ious = torch.tensor([0.0, 0.1, 0.5, 0.35, 0.8] * n)[:n]  # neg, neg, part, ignored, pos
        deltas = torch.randn(n, 4, generator=gen)
        w.add(crops[: n // 2].float(), ious[: n // 2], deltas[: n // 2])  # float input too
        w.add(crops[n // 2:], ious[n // 2:], deltas[n // 2:])
        assert w.close() == n
        written.append((crops, ious, deltas))
    finalize_cache(str(folder), size)
    return written


def test_round_trip(tmp_path):
    written = _write_cache(tmp_path)
    cache = CropCache(str(tmp_path))
    crops = torch.cat([w[0] for w in written])
    assert len(cache) == 50 and cache.size == 8
    idx = np.array([49, 0, 31, 30, 7])
    assert torch.equal(cache.gather(idx), crops[idx])
    torch.testing.assert_close(cache.ious, torch.cat([w[1] for w in written]))
    torch.testing.assert_close(cache.deltas, torch.cat([w[2] for w in written]))
    with pytest.raises(FileNotFoundError, match="not a crop cache"):
        CropCache(str(tmp_path / "nothing"))


def test_batches_keep_the_ratios_and_never_draw_ignored(tmp_path):
    _write_cache(tmp_path)
    loader = CropCacheLoader([CropCache(str(tmp_path))], batch_size=25, ratios=(3, 1, 1), seed=3)
    assert loader.counts == {NEGATIVE: 15, PART: 5, POSITIVE: 5}
    it = iter(loader)
    for _ in range(6):  # more than one pass over the 10 positives: permutations cycle
        batch = next(it)
        assert batch["images"].shape == (25, 3, 8, 8) and batch["images"].dtype == torch.float32
        cat = categorize(batch["ious"])
        assert [(cat == c).sum().item() for c in (NEGATIVE, PART, POSITIVE)] == [15, 5, 5]
    mean, std = loader.delta_stats()
    assert mean.shape == (4,) and (std > 0).all()


def test_empty_category_gives_its_share_to_the_others(tmp_path):
    w = CropCacheWriter(str(tmp_path), "shard_00", 8)
    w.add(torch.zeros(4, 3, 8, 8), torch.tensor([0.0, 0.0, 0.9, 0.9]), torch.zeros(4, 4))
    w.close()
    finalize_cache(str(tmp_path), 8)
    loader = CropCacheLoader([CropCache(str(tmp_path))], batch_size=10, ratios=(3, 1, 1))
    assert loader.counts[PART] == 0 and sum(loader.counts.values()) == 10


def test_augmentation_flip_negates_dx_and_grayscale():
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(64, 3, 6, 6, generator=gen) * 255
    images[:, :, :, :3] = 0  # left half dark: a flip is visible
    deltas = torch.randn(64, 4, generator=gen)
    flip_only = CropAugmentation(flip=True, brightness=0, contrast=0, saturation=0, grayscale_prob=0)
    out, d = flip_only(images, deltas, torch.Generator().manual_seed(1))
    flipped = out[:, :, :, 3:].sum((1, 2, 3)) == 0
    assert 10 < flipped.sum() < 54
    torch.testing.assert_close(d[flipped, 0], -deltas[flipped, 0])
    torch.testing.assert_close(d[:, 1:], deltas[:, 1:])
    torch.testing.assert_close(out[flipped], images[flipped].flip(-1))
    grey = CropAugmentation(flip=False, brightness=0.3, contrast=0.3, saturation=0.3, grayscale_prob=1.0)
    out, _ = grey(images, deltas, gen)
    assert torch.allclose(out[:, 0], out[:, 1]) and torch.allclose(out[:, 1], out[:, 2])
    assert out.min() >= 0 and out.max() <= 255
    with pytest.raises(ValueError):
        CropAugmentation(brightness=1.5)


def test_classification_only_sets_train_no_box_regression(tmp_path):
    """Crops record their dataset; those of DATA.CLASSIFICATION_ONLY_SETS get box_valid False."""
    w = CropCacheWriter(str(tmp_path), "shard_00", 8)
    ious = torch.tensor([0.0, 0.9, 0.5, 0.9])
    w.add(torch.zeros(4, 3, 8, 8), ious, torch.full((4, 4), 1.0), source=0)  # "wider"
    w.add(torch.zeros(4, 3, 8, 8), ious, torch.full((4, 4), 5.0), source=1)  # "landmarks"
    w.close()
    finalize_cache(str(tmp_path), 8, datasets=["wider", "landmarks"])
    cache = CropCache(str(tmp_path))
    assert cache.datasets == ["wider", "landmarks"] and cache.sources.tolist() == [0] * 4 + [1] * 4
    assert cache.box_valid().all()
    assert cache.box_valid(["landmarks"]).tolist() == [True] * 4 + [False] * 4
    loader = CropCacheLoader([cache], batch_size=16, ratios=(1, 1, 2), seed=0,
                             classification_only_sets=["landmarks"])
    batch = next(iter(loader))
    from_landmarks = batch["deltas"][:, 1] == 5.0  # no flip by default: targets unchanged
    assert from_landmarks.any() and (~from_landmarks).any()
    assert torch.equal(batch["box_valid"], ~from_landmarks)
    # the regression statistics come from the boxes that train it
    mean, _ = loader.delta_stats()
    torch.testing.assert_close(mean, torch.ones(4))


def test_caches_without_sources_refuse_classification_only_sets(tmp_path):
    _write_cache(tmp_path)
    path = tmp_path / "shard_00.npz"  # as cut before caches recorded sources
    with np.load(path) as z:
        np.savez(path, ious=z["ious"], deltas=z["deltas"])
    cache = CropCache(str(tmp_path))
    assert (cache.sources == -1).all() and cache.box_valid().all()  # read as before
    with pytest.raises(ValueError, match="build it again"):
        CropCacheLoader([cache], batch_size=10, classification_only_sets=["mtfl_train"])
