# Copyright (c) facecraft_d2 contributors.
"""
The test pipeline's speed-ups give exactly the boxes of the plain code they replace: x12 over
the whole pyramid in one mosaic pass (vs one call per level) and response-map pooling by
shifted maxima (vs F.max_pool2d).
"""
import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib import cbook

from detectron2.modeling import build_model

from facecraft_d2.layers import resize_image
from facecraft_d2.modeling.cascade.pyramid import (
    dense_windows,
    image_pyramid,
    pack_pyramid,
    pyramid_scales,
    response_map_pool,
    x12_map_size,
)
from facecraft_d2.utils.speed import to_vga
from facecraft_d2.utils.testing import synthetic_face_image

from test_cascade import cascade_cfg


def reference_pool(scores, kernel):
    """Response-map pooling as F.max_pool2d (the former implementation)."""
    if kernel <= 1:
        return scores
    pooled = F.max_pool2d(scores[:, None], kernel, stride=1, padding=kernel // 2)[:, 0]
    pooled = pooled[:, : scores.shape[1], : scores.shape[2]]
    return torch.where(scores >= pooled, scores, torch.zeros_like(scores))


def reference_stage1(pipe, model, image):
    """Stage 1 with one x12 call per pyramid level (the former implementation)."""
    h, w = image.shape[-2:]
    scales = pyramid_scales(h, w, pipe.min_face, pipe.pyramid_factor)
    levels = image_pyramid(image, scales, uint8=pipe.pyramid_uint8)
    boxes, deltas, scores = [], [], []
    for s, img in levels:
        if min(img.shape[-2:]) < 12:
            continue
        logits, reg = model.net.x12_dense(model.net_input(img[None]))
        prob = reference_pool(F.softmax(logits, dim=1)[:, 1], pipe.pool_kernel)[0]
        ys, xs = torch.nonzero(prob >= pipe.score_thresholds[0], as_tuple=True)
        boxes.append(dense_windows(ys, xs, s))
        deltas.append(reg[0, :, ys, xs].t())
        scores.append(prob[ys, xs])
    if not boxes:
        return levels, image.new_zeros((0, 4)), image.new_zeros((0,))
    boxes, deltas, scores = torch.cat(boxes), torch.cat(deltas), torch.cat(scores)
    if len(scores) > pipe.max_proposals:
        keep = scores.topk(pipe.max_proposals).indices
        boxes, deltas, scores = boxes[keep], deltas[keep], scores[keep]
    return levels, model.regress(boxes, deltas), scores


def as_tensor(image):
    return torch.as_tensor(np.ascontiguousarray(image.transpose(2, 0, 1))).float()


def assert_same_stage1(pipe, model, image, exact=True):
    with torch.inference_mode():
        levels0, b0, s0 = reference_stage1(pipe, model, image)
        levels1, b1, s1 = pipe.stage1(model, image)
    assert [s for s, _ in levels0] == [s for s, _ in levels1]
    if exact:
        assert torch.equal(b0, b1) and torch.equal(s0, s1), (tuple(image.shape), len(b0), len(b1))
    elif pipe.score_thresholds[0] == 0.0:  # all windows: no threshold for rounding to cross
        torch.testing.assert_close(b1, b0, atol=1e-3, rtol=0)
        torch.testing.assert_close(s1, s0, atol=1e-5, rtol=0)
    return len(b1)


def test_response_map_pool_equals_max_pool2d():
    g = torch.Generator().manual_seed(0)
    for kernel in (1, 2, 3, 4, 5):
        for shape in [(1, 1, 1), (1, 1, 7), (2, 6, 1), (1, 20, 20), (3, 17, 33)]:
            scores = torch.round(torch.rand(*shape, generator=g) * 6) / 6  # with ties and zeros
            assert torch.equal(response_map_pool(scores, kernel), reference_pool(scores, kernel))


def test_uint8_pyramid_is_the_float_pyramid_rounded():
    """
    Levels resized as 8-bit images: the sizes and filter of the float pyramid, each pixel
    within one grey level of it (rounding of the input and of the output); the same levels
    from a uint8 image and from its float copy.
    """
    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), cv2.IMREAD_COLOR)
    image = as_tensor(to_vga(photo))
    scales = pyramid_scales(480, 640, 24, 0.709)
    plain = image_pyramid(image, scales)
    fast = image_pyramid(image, scales, uint8=True)
    assert len(plain) == len(fast) == len(scales) == 9
    for (s, a), (s2, b) in zip(plain, fast):
        assert s == s2 and torch.equal(a, resize_image(image, s))
        assert a.shape == b.shape and b.dtype == torch.float32 and torch.equal(b, b.round())
        assert (a - b).abs().max() <= 1.0 + 1e-4, (s, (a - b).abs().max())
        assert (a - b).abs().mean() < 0.3
    from_u8 = image_pyramid(image.to(torch.uint8), scales, uint8=True)
    assert all(torch.equal(b, c) for (_, b), (_, c) in zip(fast, from_u8))


def test_x12_map_size_and_mosaic_layout():
    net = build_model(cascade_cfg()).net.eval()
    for side in range(11, 40):
        assert net.x12_dense(torch.zeros(1, 3, side, 12))[0].shape[-2] == x12_map_size(side)
    for h, w, kernel in [(480, 640, 2), (640, 480, 3), (96, 128, 1), (30, 1000, 2), (1000, 30, 2)]:
        sizes = [(int(round(h * s)), int(round(w * s))) for s in pyramid_scales(h, w, 24, 0.709)]
        sizes = [sz for sz in sizes if min(sz) >= 12]
        offsets, (mh, mw) = pack_pyramid(sizes, kernel)
        pad = kernel // 2
        cells = []
        for (y, x), (lh, lw) in zip(offsets, sizes):
            assert y % 2 == 0 and x % 2 == 0 and y + lh <= mh and x + lw <= mw
            cells.append((y // 2, x // 2, y // 2 + x12_map_size(lh), x // 2 + x12_map_size(lw)))
        area = sum(a * b for a, b in sizes)
        assert area / (mh * mw) > 0.6, (h, w, area / (mh * mw))
        for i, a in enumerate(cells):  # level maps are >= pad cells apart (pixels do not overlap)
            for b in cells[i + 1:]:
                assert (a[2] + pad <= b[0] or b[2] + pad <= a[0] or a[3] + pad <= b[1]
                        or b[3] + pad <= a[1]), (a, b)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The bit-for-bit comparisons of this module run on one thread: on a loaded 2-core machine
    two threads split some convolutions differently between calls (last-bit differences)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("kernel,channels_last,mosaic", [
    (2, True, True), (1, True, True), (3, True, True), (2, False, True), (2, False, False)])
def test_mosaic_stage1_equals_one_call_per_level(kernel, channels_last, mosaic):
    """
    Bit for bit in channels-last (the default) on one thread; NCHW convolutions round by image
    size (one thread: see ``one_thread``).
    """
    torch.manual_seed(0)
    model = build_model(cascade_cfg(**{"MODEL.FACECRAFT.TEST.POOL_KERNEL": kernel,
                                       "MODEL.FACECRAFT.TEST.CHANNELS_LAST": channels_last,
                                       "MODEL.FACECRAFT.TEST.X12_MOSAIC": mosaic,
                                       "MODEL.FACECRAFT.TEST.MAX_PROPOSALS": 100000,
                                       "MODEL.FACECRAFT.TEST.MIN_FACE_SIZE": 20}))
    model.eval()
    pipe = model.inference_pipeline
    assert pipe.x12_mosaic == mosaic
    found = 0
    for i, (h, w) in enumerate([(96, 128), (151, 90), (37, 41), (12, 13), (11, 30), (240, 333)]):
        image = as_tensor(synthetic_face_image(h, w, seed=i))
        for thresh in (0.0, 0.5):
            pipe.score_thresholds = (thresh, 0.5, 0.5)
            found += assert_same_stage1(pipe, model, image, exact=channels_last or not mosaic)
    assert found > 1000


@pytest.fixture(scope="module")
def shipped_fast():
    from facecraft_d2 import FaceDetector

    return FaceDetector("cascade_joint", preset="fast").model


@pytest.mark.parametrize("crop_mode", ["fast", "accurate", "copy"])
def test_shipped_model_gives_the_boxes_of_the_former_code(shipped_fast, crop_mode, monkeypatch):
    """cascade_joint on grace_hopper.jpg at VGA: stage 1 and the whole pipeline, bit for bit."""
    model, pipe = shipped_fast, shipped_fast.inference_pipeline
    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), cv2.IMREAD_COLOR)
    image = as_tensor(to_vga(photo))
    monkeypatch.setattr(pipe, "crop_mode", crop_mode)
    monkeypatch.setattr(pipe, "max_proposals", 100000)
    # x12 at 0.3 rather than the preset's threshold: more windows to compare
    monkeypatch.setattr(pipe, "score_thresholds", (0.3,) + tuple(pipe.score_thresholds[1:]))
    assert assert_same_stage1(pipe, model, image) > 100
    monkeypatch.undo()
    monkeypatch.setattr(pipe, "crop_mode", crop_mode)
    new = model.detect([image])[0]
    monkeypatch.setattr(pipe, "stage1", lambda m, im: reference_stage1(pipe, m, im))
    old = model.detect([image])[0]
    assert len(new[0]) > 0
    assert torch.equal(new[0], old[0]) and torch.equal(new[1], old[1])


def test_uint8_and_float_images_give_the_same_detections(shipped_fast):
    """A decoded photo as uint8 (the data loaders' and FaceDetector's tensors) or as float gives
    the same boxes: the uint8 pyramid rounds a float image to the same whole grey levels."""
    photo = cv2.imread(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), cv2.IMREAD_COLOR)
    u8 = torch.as_tensor(np.ascontiguousarray(to_vga(photo).transpose(2, 0, 1)))
    assert shipped_fast.inference_pipeline.pyramid_uint8
    (b0, s0), = shipped_fast.detect([u8])
    (b1, s1), = shipped_fast.detect([u8.float()])
    assert len(b0) > 0 and torch.equal(b0, b1) and torch.equal(s0, s1)
    out = shipped_fast([{"image": u8}])[0]["instances"]
    assert torch.equal(out.pred_boxes.tensor, b0) and torch.equal(out.scores, s0)
