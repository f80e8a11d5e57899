# Copyright (c) facecraft_d2 contributors.
"""Cascade window sampler and training loader: synthetic images, plus one real-data smoke test."""

import time

import cv2
import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from detectron2.config import get_cfg
from detectron2.data import DatasetCatalog
from detectron2.modeling.box_regression import Box2BoxTransform
from detectron2.structures import BoxMode

from facecraft_d2 import add_facecraft_config
from facecraft_d2.data.cascade_loader import (
    CascadeTrainLoader,
    build_cascade_train_loader,
    estimate_delta_stats,
    split_train_val,
)
from facecraft_d2.data.cascade_sampler import CascadeWindowSampler, crop_and_resize

DARK, BRIGHT = 20, 240


def _cfg(**sampler):
    cfg = get_cfg()
    add_facecraft_config(cfg)
    for k, v in sampler.items():
        setattr(cfg.MODEL.FACECRAFT.SAMPLER, k, v)
    return cfg


def _write(tmp_path, name, height, width, faces=(), crowd=(), bg=DARK):
    """Dark image with a bright filled square per face box (XYWH); returns its dataset dict."""
    img = np.full((height, width, 3), bg, dtype=np.uint8)
    for x, y, w, h in faces:
        img[int(y) : int(y + h), int(x) : int(x + w)] = BRIGHT
    path = str(tmp_path / name)
    cv2.imwrite(path, img)
    annos = [
        {"bbox": list(b), "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 0}
        for b in faces
    ]
    annos += [
        {"bbox": list(b), "bbox_mode": BoxMode.XYWH_ABS, "category_id": 0, "iscrowd": 1}
        for b in crowd
    ]
    return {
        "file_name": path,
        "image_id": name.rsplit(".", 1)[0],
        "height": height,
        "width": width,
        "annotations": annos,
    }


def _xyxy(faces):
    return torch.tensor(
        [[x, y, x + w, y + h] for x, y, w, h in faces], dtype=torch.float32
    ).reshape(-1, 4)


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _all_positives(**kw):
    kw = dict(max_positives_per_image=10**6, negatives_per_image=300, **kw)
    return CascadeWindowSampler(**kw)


def test_window_grid_levels_sizes_strides():
    s = CascadeWindowSampler()
    height, width = 64, 100
    grid = s.window_grid(height, width)
    assert len(grid.sizes) == 13  # 12 * 2**(12/5) = 63.3 <= 64 < 12 * 2**(13/5)
    total = 0
    for k in range(13):
        size = 12 * 2 ** (k / 5)
        assert grid.sizes[k].item() == pytest.approx(size)
        assert grid.strides[k].item() == pytest.approx(size / 6)
        nx = ny = 0
        while nx * size / 6 + size <= width + 1e-6:
            nx += 1
        while ny * size / 6 + size <= height + 1e-6:
            ny += 1
        assert (grid.nx[k].item(), grid.ny[k].item()) == (nx, ny)
        boxes = grid.boxes(torch.arange(total, total + nx * ny))
        assert torch.allclose(boxes[:, 2] - boxes[:, 0], torch.tensor(size, dtype=torch.float32))
        step = torch.tensor([size / 6, size / 6])
        if nx > 1:
            assert torch.allclose(boxes[1, :2] - boxes[0, :2], step * torch.tensor([1, 0]))
        if ny > 1:
            assert torch.allclose(boxes[nx, :2] - boxes[0, :2], step * torch.tensor([0, 1]))
        assert (
            boxes[:, :2].min() >= 0
            and boxes[:, 2].max() <= width + 1e-3
            and boxes[:, 3].max() <= height + 1e-3
        )
        total += nx * ny
    assert grid.num_windows == total == len(grid.boxes())
    assert s.window_grid(10, 200).num_windows == 0  # shorter side below min_window


def test_labels_thresholds_and_exhaustive_grid_positives(tmp_path):
    faces = [(20, 30, 30, 36), (100, 40, 50, 50), (150, 10, 14, 13)]
    d = _write(tmp_path, "a.png", 120, 200, faces)
    s = _all_positives(jitter_positives_per_face=0, flip=False)
    out = s(d, _gen())
    gt = _xyxy(faces)
    pos = out["ious"] > 0
    iou = box_iou(out["boxes"], gt).max(dim=1).values
    assert pos.sum() > 10 and (~pos).sum() == 300
    assert (out["ious"][pos] >= 0.65).all()
    assert torch.allclose(out["ious"][pos], iou[pos], atol=1e-5)
    assert (iou[~pos] < 0.5).all() and (out["deltas"][~pos] == 0).all()
    # grid positives are exhaustive: exactly the grid windows with IoU >= 0.65
    all_windows = s.window_grid(120, 200).boxes()
    expected = (box_iou(all_windows, gt).max(dim=1).values >= 0.65).sum()
    assert pos.sum() == expected
    assert len(torch.unique(out["boxes"][pos], dim=0)) == pos.sum()


def test_negatives_avoid_ignore_regions(tmp_path):
    d = _write(tmp_path, "ign.png", 96, 192, faces=[(130, 30, 30, 30)], crowd=[(0, 0, 96, 96)])
    s = CascadeWindowSampler(negatives_per_image=200)
    out = s(d, _gen())
    neg = out["boxes"][out["ious"] == 0]
    assert len(neg) == 200
    overlap = (neg[:, 2].clamp(max=96) - neg[:, 0]).clamp(min=0) * (neg[:, 3] - neg[:, 1])
    area = (neg[:, 2] - neg[:, 0]) * (neg[:, 3] - neg[:, 1])
    assert (overlap / area <= 0.3 + 1e-6).all()
    assert (neg[:, 0] > 60).float().mean() > 0.9  # they lie in the right half
    # the ignore region is never a positive, and neither are crowd or too-small faces
    gt = torch.tensor([[130.0, 30, 160, 60]])
    assert (box_iou(out["boxes"][out["ious"] > 0], gt) >= 0.65).all()


def test_near_negatives_surround_faces_and_obey_the_rules(tmp_path):
    faces = [(60, 40, 40, 40), (200, 60, 8, 8)]  # one usable face, one too small (ignored)
    d = _write(tmp_path, "near.png", 160, 320, faces=faces, crowd=[(250, 0, 70, 70)])
    s = CascadeWindowSampler(near_negatives_per_face=30, negatives_per_image=0)
    out = s.sample_windows(d, _gen(), 160, 320)
    near = out["ious"] < 0.5  # there are no grid negatives, and positives have IoU >= 0.65
    boxes, ious = out["boxes"][near], out["ious"][near]
    assert len(boxes) == 30  # only the usable face gets near negatives, n of them
    gt = _xyxy(faces)
    true_iou = box_iou(boxes, gt).max(dim=1).values
    torch.testing.assert_close(ious, true_iou)  # they keep their real IoU ...
    assert (ious < 0.5).all() and (ious > 0).float().mean() > 0.7  # ... below NEG_IOU
    assert (out["deltas"][near] == 0).all()
    side = boxes[:, 2] - boxes[:, 0]
    assert (side >= 12).all() and (side <= 40 * 2**1.5 + 1e-3).all()
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    assert ((centre - torch.tensor([80.0, 60.0])).abs() <= 40 + 1e-3).all()
    # their overlap with ignore regions (the crowd box and the too-small face) stays bounded
    ignore = torch.tensor([[250.0, 0, 320, 70], [200, 60, 208, 68]])
    lt = torch.maximum(boxes[:, None, :2], ignore[None, :, :2])
    rb = torch.minimum(boxes[:, None, 2:], ignore[None, :, 2:])
    ioa = (rb - lt).clamp(min=0).prod(dim=2) / (side * side)[:, None]
    assert (ioa <= 0.3 + 1e-6).all()
    # off by default: the paper's sampler has grid negatives only
    assert CascadeWindowSampler().near_negatives_per_face == 0
    assert CascadeWindowSampler(_cfg(NEAR_NEGATIVES_PER_FACE=3)).near_negatives_per_face == 3


def test_crowd_and_small_faces_are_not_positives(tmp_path):
    d = _write(tmp_path, "small.png", 80, 120, faces=[(10, 10, 9, 9)], crowd=[(60, 20, 40, 40)])
    out = _all_positives()(d, _gen())
    assert (out["ious"] == 0).all() and len(out["ious"]) > 0
    neg = out["boxes"]
    small = torch.tensor([[10.0, 10, 19, 19]])
    assert (box_iou(neg, small) < 0.5).all()
    inter = (
        torch.minimum(neg[:, 2:], small[:, 2:]) - torch.maximum(neg[:, :2], small[:, :2])
    ).clamp(min=0)
    assert (inter.prod(1) / (neg[:, 2] - neg[:, 0]) ** 2 <= 0.3 + 1e-6).all()


def test_background_image_gives_only_negatives(tmp_path):
    d = _write(tmp_path, "bg.png", 64, 80)
    out = CascadeWindowSampler(negatives_per_image=50)(d, _gen())
    assert out["images"].shape == (50, 3, 48, 48) and out["images"].dtype == torch.float32
    assert (out["ious"] == 0).all() and (out["deltas"] == 0).all()
    assert out["boxes"].shape == (50, 4)


def test_deltas_recover_the_face_and_jitter(tmp_path):
    faces = [(20, 30, 30, 36), (100, 40, 50, 50)]
    d = _write(tmp_path, "b.png", 120, 200, faces)
    gt = _xyxy(faces)
    grid_only = _all_positives(jitter_positives_per_face=0, flip=False)(d, _gen())
    out = _all_positives(jitter_positives_per_face=4, flip=False)(d, _gen())
    pos = out["ious"] > 0
    assert pos.sum() == (grid_only["ious"] > 0).sum() + 8  # 4 jittered squares per face
    best = box_iou(out["boxes"][pos], gt).argmax(dim=1)
    back = Box2BoxTransform(weights=(1, 1, 1, 1)).apply_deltas(
        out["deltas"][pos], out["boxes"][pos]
    )
    assert torch.allclose(back, gt[best], atol=1e-3)
    assert (out["ious"][pos] >= 0.65).all()


def test_flip_negates_dx_and_mirrors_patches(tmp_path):
    d = _write(tmp_path, "c.png", 120, 200, [(20, 30, 30, 36)])
    out = _all_positives(flip=True)(d, _gen(3))
    flipped, pos = out["flipped"], out["ious"] > 0
    assert 0.3 < flipped.float().mean() < 0.7
    dx = Box2BoxTransform(weights=(1, 1, 1, 1)).get_deltas(
        out["boxes"][pos], _xyxy([(20, 30, 30, 36)]).expand(int(pos.sum()), 4)
    )
    sign = torch.where(flipped[pos], -1.0, 1.0)
    assert torch.allclose(out["deltas"][pos, 0], sign * dx[:, 0], atol=1e-5)
    assert torch.allclose(out["deltas"][pos, 1:], dx[:, 1:], atol=1e-5)
    plain = crop_and_resize(cv2.imread(d["file_name"]), out["boxes"], 48)
    expected = torch.where(flipped[:, None, None, None], plain.flip(-1), plain)
    assert torch.allclose(out["images"], expected)


def test_patch_content_bright_face_on_dark_image(tmp_path):
    d = _write(tmp_path, "d.png", 160, 240, [(60, 40, 64, 64), (170, 100, 20, 20)])
    out = _all_positives(jitter_positives_per_face=2)(d, _gen())
    pos = out["ious"] > 0
    centre = out["images"][pos][:, :, 20:28, 20:28].mean(dim=(1, 2, 3))
    assert (centre > 200).all()
    # negatives away from the faces (beyond a blur margin of ~2 pyramid pixels) are plain dark
    neg = out["boxes"][~pos]
    margin = ((neg[:, 2] - neg[:, 0]) / 12 + 2)[:, None]
    grown = torch.cat([neg[:, :2] - margin, neg[:, 2:] + margin], dim=1)
    far = (box_iou(grown, _xyxy([(60, 40, 64, 64), (170, 100, 20, 20)])) == 0).all(dim=1)
    assert far.sum() > 50
    assert (out["images"][~pos][far] - DARK).abs().max() < 1
    assert out["images"].max() <= 255 and out["images"].min() >= 0


def test_determinism_and_config(tmp_path):
    d = _write(tmp_path, "e.png", 100, 150, [(40, 20, 40, 40)])
    s = CascadeWindowSampler(_cfg(NEGATIVES_PER_IMAGE=40, MAX_POSITIVES_PER_IMAGE=8))
    assert s.negatives_per_image == 40 and s.max_positives_per_image == 8 and s.input_size == 48
    a, b, c = s(d, _gen(7)), s(d, _gen(7)), s(d, _gen(8))
    for k in ("images", "ious", "deltas", "boxes"):
        assert torch.equal(a[k], b[k])
    assert not torch.equal(a["boxes"], c["boxes"])
    assert (a["ious"] > 0).sum() == 8 and len(a["ious"]) == 48
    # XYXY_ABS annotations give the same patches as XYWH_ABS ones
    d["annotations"][0].update(bbox=[40, 20, 80, 60], bbox_mode=BoxMode.XYXY_ABS)
    xyxy = s(d, _gen(7))
    assert all(torch.equal(a[k], xyxy[k]) for k in ("images", "ious", "deltas", "boxes"))


class _Recorder(CascadeWindowSampler):
    seen = []

    def __call__(self, dataset_dict, generator=None):
        self.seen.append(dataset_dict["image_id"])
        return super().__call__(dataset_dict, generator)


def _dataset(tmp_path, n=16):
    dicts = []
    for i in range(n):
        faces = [(10 + 7 * (i % 5), 12 + 3 * (i % 4), 30 + i, 30 + i)] if i % 4 != 3 else []
        dicts.append(_write(tmp_path, f"img_{i}.png", 80, 112, faces))
    return dicts


def test_loader_batches_fraction_and_val_split(tmp_path):
    dicts = _dataset(tmp_path)
    train, val = split_train_val(dicts, 0.25)
    assert val and train and len(train) + len(val) == len(dicts)
    assert split_train_val(dicts[::-1], 0.25)[1] == val[::-1]  # order-independent
    _Recorder.seen = []
    sampler = _Recorder(negatives_per_image=20, max_positives_per_image=8)
    loader = CascadeTrainLoader(
        train, sampler, batch_size=64, positive_fraction=0.125, pool_size=256, seed=1
    )
    it = iter(loader)
    batches = [next(it) for _ in range(20)]
    for b in batches:
        assert (
            b["images"].shape == (64, 3, 48, 48)
            and b["ious"].shape == (64,)
            and b["deltas"].shape == (64, 4)
        )
    frac = torch.stack([(b["ious"] >= 0.65).float().mean() for b in batches])
    assert abs(frac.mean().item() - 0.125) < 0.02
    assert not set(_Recorder.seen) & {d["image_id"] for d in val}
    assert set(_Recorder.seen) == {d["image_id"] for d in train}  # several epochs went by
    again = next(
        iter(
            CascadeTrainLoader(
                train, sampler, batch_size=64, positive_fraction=0.125, pool_size=256, seed=1
            )
        )
    )
    assert all(torch.equal(batches[0][k], again[k]) for k in batches[0])
    mean, std = estimate_delta_stats(loader, train, 8)
    assert mean.shape == std.shape == (4,) and (std > 0).all() and mean.abs().max() < 0.5


def test_build_loader_from_cfg_with_workers(tmp_path):
    dicts = _dataset(tmp_path, 8)
    name = "cascade_sampler_test_tmp"
    DatasetCatalog.register(name, lambda: dicts)
    try:
        cfg = _cfg(BATCH_SIZE=32, POOL_SIZE=64, NEGATIVES_PER_IMAGE=16, VAL_FRACTION=0.0)
        cfg.DATASETS.TRAIN = (name,)
        cfg.DATALOADER.NUM_WORKERS = 2
        cfg.SEED = 5
        loader = build_cascade_train_loader(cfg)
        it = iter(loader)
        for _ in range(3):
            batch = next(it)
            assert batch["images"].shape == (32, 3, 48, 48)
            assert (batch["ious"] >= 0.65).sum() <= 2  # round(32 * 0.05)
    finally:
        DatasetCatalog.remove(name)


def test_real_widerface_smoke_and_throughput(datasets_root):
    import facecraft_d2.data  # noqa: F401  registers the builtin datasets

    dicts = DatasetCatalog.get("widerface_train")
    train, val = split_train_val(dicts, 0.1)
    assert len(val) > 0 and len(train) > 0.8 * len(dicts)
    train = train[:64]
    sampler = CascadeWindowSampler()
    loader = CascadeTrainLoader(
        train, sampler, batch_size=256, pool_size=1024, num_workers=0, seed=0
    )
    it = iter(loader)
    batch = next(it)  # fills the pool
    start, cpu, num = time.perf_counter(), time.process_time(), 8
    for _ in range(num):
        batch = next(it)
    rate = num * 256 / (time.perf_counter() - start)
    cpu_rate = num * 256 / (time.process_time() - cpu)
    print(f"\ncascade loader on widerface_train, num_workers=0: {rate:.0f} patches/s "
          f"(wall clock), {cpu_rate:.0f} patches per CPU-second")
    assert batch["images"].shape == (256, 3, 48, 48)
    assert torch.isfinite(batch["deltas"]).all() and 5 <= (batch["ious"] >= 0.65).sum() <= 13
    mean, std = estimate_delta_stats(sampler, train, 64)
    assert (std > 0.02).all() and (std < 0.5).all()
    print(f"delta mean {mean.tolist()} std {std.tolist()}")
