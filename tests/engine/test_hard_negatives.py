# Copyright (c) facecraft_d2 contributors.
"""
Hard-negative mining: the boxes an earlier stage keeps on a full image, where they hit no face,
become the next stage's negatives; crops are cut by the test pipeline's own crop function.
"""
import cv2
import numpy as np
import torch

from torchvision.ops import roi_align

from detectron2.modeling import build_model
from detectron2.structures import BoxMode

from facecraft_d2.config import build_config
from facecraft_d2.data.cascade_samples import NEGATIVE, categorize
from facecraft_d2.engine.hard_negatives import StageSampleMaker
from facecraft_d2.layers import crop_resized
from facecraft_d2.modeling.cascade import square_boxes

from .test_train_cascade import CASCADE

FACE = [60.0, 40.0, 100.0, 88.0]


def _image(tmp_path):
    rng = np.random.default_rng(0)
    img = rng.integers(0, 255, (120, 160, 3), dtype=np.uint8)
    path = str(tmp_path / "img.png")  # lossless, so crops can be compared exactly
    cv2.imwrite(path, img)
    d = {"file_name": path, "height": 120, "width": 160, "image_id": "img",
         "annotations": [{"bbox": FACE, "bbox_mode": BoxMode.XYXY_ABS, "category_id": 0}]}
    return d, img


def _model(x12_fires, **opts):
    cfg = build_config(f"{CASCADE}/separate_x24.yaml", [
        "MODEL.FACECRAFT.DATA.RANDOM_PER_IMAGE", "0", "MODEL.FACECRAFT.DATA.PER_FACE", "0",
        "MODEL.FACECRAFT.DATA.NEAR_PER_FACE", "0", "MODEL.FACECRAFT.DATA.MINED_NEGATIVES_PER_IMAGE", "1000",
        "MODEL.FACECRAFT.TEST.MIN_FACE_SIZE", "24", *[str(v) for kv in opts.items() for v in kv]],
        device="cpu")
    model = build_model(cfg).eval()
    head = model.net.x12_head.cls
    with torch.no_grad():  # x12 says "face" everywhere (or nowhere), whatever the pixels
        head.weight.zero_()
        head.bias.copy_(torch.tensor([-20.0, 20.0] if x12_fires else [20.0, -20.0]))
    return cfg, model


def test_stage_false_positives_become_next_stage_negatives(tmp_path, monkeypatch):
    d, img = _image(tmp_path)
    cfg, model = _model(x12_fires=True)
    assert cfg.MODEL.FACECRAFT.DATA.MINE_UPTO == "x12"
    image = torch.from_numpy(img).permute(2, 0, 1).float()
    proposed, _ = model.propose([image], "x12")[0]
    assert len(proposed) > 20  # x12 fires all over the synthetic image
    crops, ious, deltas = StageSampleMaker(cfg, model)("widerface_train", d, torch.Generator().manual_seed(0))
    negatives = categorize(ious) == NEGATIVE
    assert negatives.sum() > 10 and (ious[negatives] < 0.3).all()
    # every sample is one of x12's (squared) boxes, cut by the test pipeline's crop function
    squares = square_boxes(proposed)
    expected = crop_resized(image, squares, 48).round().clamp(0, 255).to(torch.uint8)
    mined = {bytes(c.numpy().tobytes()) for c in expected}
    assert all(bytes(c.numpy().tobytes()) in mined for c in crops)
    # an x12 that keeps nothing mines nothing (and the candidates are switched off here)
    cfg, quiet = _model(x12_fires=False)
    crops, ious, _ = StageSampleMaker(cfg, quiet)("widerface_train", d, torch.Generator().manual_seed(0))
    assert len(crops) == len(ious) == 0
    # the mining thresholds, not the test ones, decide what is mined (and the test ones stay)
    cfg, model = _model(x12_fires=True, **{"MODEL.FACECRAFT.DATA.MINE_SCORE_THRESHOLDS": "[1.01, 0.5, 0.1]"})
    crops, _, _ = StageSampleMaker(cfg, model)("widerface_train", d, torch.Generator().manual_seed(0))
    assert len(crops) == 0 and model.inference_pipeline.score_thresholds == tuple(
        cfg.MODEL.FACECRAFT.TEST.SCORE_THRESHOLDS)
    # test-time flips are not used in mining (and stay set for testing)
    cfg, model = _model(x12_fires=True)
    flipped_cfg, flipped = _model(x12_fires=True, **{"MODEL.FACECRAFT.TEST.FLIP_STAGES": '["x24", "x48"]'})
    flipped.load_state_dict(model.state_dict())
    seen, pipeline = [], type(flipped.inference_pipeline).__call__
    monkeypatch.setattr(type(flipped.inference_pipeline), "__call__",
                        lambda self, *a, **k: seen.append(self.flip_stages) or pipeline(self, *a, **k))
    a = StageSampleMaker(cfg, model)("widerface_train", d, torch.Generator().manual_seed(0))
    b = StageSampleMaker(flipped_cfg, flipped)("widerface_train", d, torch.Generator().manual_seed(0))
    assert seen == [(), ()] and flipped.inference_pipeline.flip_stages == ("x24", "x48")
    assert len(a[0]) > 0 and all(torch.equal(x, y) for x, y in zip(a, b))


def test_training_crops_equal_the_test_pipelines_accurate_crops(tmp_path):
    """The maker cuts with crop_resized (test above); the accurate test preset does too."""
    _, img = _image(tmp_path)
    _, model = _model(x12_fires=False)
    assert model.crop_mode == "accurate"
    image = torch.from_numpy(img).permute(2, 0, 1).float()
    boxes = square_boxes(torch.tensor([FACE, [-10.0, -10.0, 30.0, 30.0], [20.0, 10.0, 116.0, 106.0]]))
    for size in (24, 48):
        test_crops = model._crops(image, [(0.5, image)], boxes, size)  # levels unused: accurate
        torch.testing.assert_close(test_crops, crop_resized(image, boxes, size), rtol=0, atol=0)
    # a 96 px box is resampled from the half-size octave, not from the full image
    half = torch.nn.functional.interpolate(image[None], scale_factor=0.5, mode="bilinear",
                                           antialias=True)[0]
    ref = roi_align(half[None], torch.tensor([[0.0, 10.0, 5.0, 58.0, 53.0]]), (48, 48), 1.0, 0, True)
    torch.testing.assert_close(crop_resized(image, boxes[2:], 48), ref, atol=1e-3, rtol=0)
