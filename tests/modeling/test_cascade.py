# Copyright (c) facecraft_d2 contributors.
import pytest
import torch
from torchvision.ops import nms

from detectron2.config import get_cfg
from detectron2.modeling import build_model
from detectron2.modeling.box_regression import Box2BoxTransform

from facecraft_d2 import add_facecraft_config
from facecraft_d2.modeling.cascade import (
    FaceCraftNet,
    branch_labels,
    branch_loss,
    crop_from_pyramid,
    crop_resized,
    dense_windows,
    pyramid_scales,
    response_map_pool,
    threshold_masks,
)
from facecraft_d2.modeling.cascade.network import run_body


def cascade_cfg(**overrides):
    cfg = get_cfg()
    add_facecraft_config(cfg)
    cfg.MODEL.META_ARCHITECTURE = "FaceCraftCascade"
    cfg.MODEL.DEVICE = "cpu"
    cfg.MODEL.PIXEL_STD = [57.375, 57.120, 58.395]
    cfg.merge_from_list([x for kv in overrides.items() for x in kv])
    return cfg


def test_branch_shapes():
    net = FaceCraftNet(cascade_cfg())
    out = net(torch.rand(5, 3, 48, 48))
    assert {k: (v[0].shape, v[1].shape) for k, v in out.items()} == {
        b: (torch.Size([5, 2]), torch.Size([5, 4])) for b in ("x12", "x24", "x48")
    }
    feats = net.stage_features(torch.rand(5, 3, 48, 48), "x48")
    assert feats["x12"].shape == (5, 16)  # the 16x1x1 map of x12
    assert feats["x24"].shape == (5, 128 + 16)  # 12-24fc = 24fc ++ x12
    assert feats["x48"].shape == (5, 256 + 144)  # 48fc ++ 12-24fc
    # x12 is fully convolutional: one window every 2 pixels
    logits, deltas = net.x12_dense(torch.rand(2, 3, 40, 30))
    assert logits.shape == (2, 2, 15, 10) and deltas.shape == (2, 4, 15, 10)
    # on a 12x12 crop the dense x12 equals the patch x12 on the same crop pooled from 48
    net.eval()
    patch = torch.rand(3, 3, 48, 48)
    dense = net.x12_dense(torch.nn.functional.avg_pool2d(patch, 4))[0].flatten(1)
    assert torch.allclose(dense, net(patch, upto="x12")["x12"][0], atol=1e-5)
    # the 24x24 crop into stage x24 equals the 48x48 input pooled to 24
    small = torch.nn.functional.avg_pool2d(patch, 2)
    assert torch.allclose(net(small, upto="x24")["x24"][0], net(patch, upto="x24")["x24"][0], atol=1e-5)


def test_x24_conv_stack_from_config():
    cfg = cascade_cfg()
    cfg.MODEL.FACECRAFT.NET.X24_CONVS = [[28, 3, 1], [48, 3, 1], [64, 2, 0]]  # MTCNN's R-Net body
    net = FaceCraftNet(cfg)
    convs = [m for m in net.x24_body if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0]) for c in convs] == [(28, 3), (48, 3), (64, 2)]
    pools = [type(m).__name__ for m in net.x24_body if isinstance(m, (torch.nn.Conv2d, torch.nn.MaxPool2d))]
    assert pools == ["Conv2d", "MaxPool2d", "Conv2d", "MaxPool2d", "Conv2d"]
    # 24 -> 22 -> 10 -> 8 -> 3 -> 2: 64 x 2 x 2 features into 24fc
    assert [m for m in net.x24_body if isinstance(m, torch.nn.Linear)][0].in_features == 64 * 2 * 2
    net.eval()
    patch = torch.rand(3, 3, 48, 48)
    out = net(patch, upto="x24")
    assert out["x24"][0].shape == (3, 2) and net.stage_features(patch, "x24")["x24"].shape == (3, 144)
    # the default (empty) stack is Li et al.'s one 5x5 conv and its pooling, as before
    default = FaceCraftNet(cascade_cfg())
    assert [m.kernel_size for m in default.x24_body if isinstance(m, torch.nn.Conv2d)] == [(5, 5)]
    assert [m for m in default.x24_body if isinstance(m, torch.nn.Linear)][0].in_features == 64 * 9 * 9
    with pytest.raises(ValueError, match="nothing of the input"):
        FaceCraftNet(x24_convs=[(8, 11, True), (8, 5, True)])



def test_x48_conv_stack_from_config():
    cfg = cascade_cfg()
    cfg.MODEL.FACECRAFT.NET.X48_CONVS = [[32, 3, 1], [64, 3, 1], [64, 3, 1], [128, 2, 0]]  # O-Net's
    net = FaceCraftNet(cfg)
    convs = [m for m in net.x48_body if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0]) for c in convs] == [(32, 3), (64, 3), (64, 3), (128, 2)]
    # 48 -> 46 -> 22 -> 20 -> 9 -> 7 -> 3 -> 2: 128 x 2 x 2 features into 48fc
    assert [m for m in net.x48_body if isinstance(m, torch.nn.Linear)][0].in_features == 128 * 2 * 2
    net.eval()
    patch = torch.rand(3, 3, 48, 48)
    assert net(patch)["x48"][0].shape == (3, 2) and net.stage_features(patch, "x48")["x48"].shape == (3, 400)
    # the default (empty) stack is Li et al.'s two 5x5 convs: the same parameter names and
    # shapes as before the key existed, so shipped weights load unchanged
    default = FaceCraftNet(cascade_cfg())
    shapes = {k: tuple(v.shape) for k, v in default.state_dict().items() if k.startswith("x48_body")}
    c1, c2 = cascade_cfg().MODEL.FACECRAFT.NET.X48_CHANNELS
    assert shapes == {"x48_body.0.weight": (c1, 3, 5, 5), "x48_body.0.bias": (c1,),
                      "x48_body.3.weight": (c2, c1, 5, 5), "x48_body.3.bias": (c2,),
                      "x48_body.7.weight": (256, c2 * 8 * 8), "x48_body.7.bias": (256,)}

def test_branch_labels_and_threshold_masks():
    ious = torch.tensor([0.0, 0.49, 0.5, 0.66, 0.75, 0.85])
    assert branch_labels(ious, 0.8, 0.5).tolist() == [0, 0, -1, -1, -1, 1]
    assert branch_labels(ious, 0.65, 0.5).tolist() == [0, 0, -1, 1, 1, 1]
    # probabilities of x12 / x24: 0.05 0.2 0.9 and 0.001 0.5 0.002
    p12 = torch.tensor([0.05, 0.2, 0.9])
    p24 = torch.tensor([0.5, 0.001, 0.002])
    to_logits = lambda p: torch.stack([torch.zeros(3), torch.log(p / (1 - p))], dim=1)
    masks = threshold_masks({"x12": to_logits(p12), "x24": to_logits(p24)}, ["x12", "x24", "x48"], [0.1, 0.003])
    assert masks["x12"].tolist() == [True, True, True]
    assert masks["x24"].tolist() == [False, True, True]  # x12 score >= 0.1
    assert masks["x48"].tolist() == [False, False, False]  # ... and x24 score >= 0.003


def test_masked_loss_ignores_rejected_samples():
    logits = torch.randn(4, 2, requires_grad=True)
    deltas = torch.randn(4, 4, requires_grad=True)
    labels = torch.tensor([1, 0, 1, -1])
    targets = torch.randn(4, 4)
    mask = torch.tensor([True, True, False, True])
    cls, reg = branch_loss(logits, deltas, labels, targets, mask)
    (cls + reg).backward()
    assert logits.grad[2].abs().sum() == 0 and logits.grad[3].abs().sum() == 0  # rejected / unused
    assert deltas.grad[1].abs().sum() == 0  # negatives get no regression loss
    expected = torch.nn.functional.cross_entropy(logits[:2], labels[:2])
    assert torch.allclose(cls, expected)
    # nothing valid: zero losses that still backpropagate
    cls, reg = branch_loss(logits, deltas, labels, targets, torch.zeros(4, dtype=torch.bool))
    assert float(cls) == 0 and float(reg) == 0


def test_box_valid_keeps_patches_out_of_the_regression_only():
    logits = torch.randn(4, 2)
    deltas = torch.randn(4, 4, requires_grad=True)
    labels = torch.tensor([1, 1, 0, -1])
    targets = torch.randn(4, 4)
    mask = torch.ones(4, dtype=torch.bool)
    part = torch.tensor([False, False, False, True])  # a part face: regression only
    box_valid = torch.tensor([True, False, True, True])
    cls_all, reg_all = branch_loss(logits, deltas, labels, targets, mask, reg_mask=part)
    cls, reg = branch_loss(logits, deltas, labels, targets, mask, reg_mask=part, box_valid=box_valid)
    assert torch.equal(cls, cls_all)  # classification unchanged
    reg.backward()
    assert deltas.grad[1].abs().sum() == 0 and deltas.grad[0].abs().sum() > 0
    keep = torch.tensor([0, 3])
    expected = torch.nn.functional.smooth_l1_loss(deltas[keep], targets[keep], reduction="sum") / 2
    torch.testing.assert_close(reg, expected)
    assert not torch.equal(reg, reg_all)


def test_regression_targets_are_normalized_with_stored_stats():
    model = build_model(cascade_cfg())
    mean, std = torch.tensor([0.01, -0.02, 0.1, 0.05]), torch.tensor([0.1, 0.1, 0.2, 0.2])
    model.set_delta_stats(mean, std)
    assert bool(model.delta_stats_ready)
    state = model.state_dict()
    assert torch.equal(state["delta_mean"], mean) and torch.equal(state["delta_std"], std)
    # the model predicts normalized offsets; decoding multiplies back by std and adds mean
    boxes = torch.tensor([[10.0, 10.0, 34.0, 34.0]])
    raw = torch.tensor([[0.05, 0.0, 0.1, -0.1]])
    decoded = model._regress(boxes, (raw - mean) / std)
    assert torch.allclose(decoded, Box2BoxTransform((1, 1, 1, 1)).apply_deltas(raw, boxes), atol=1e-5)


def test_response_map_pool_keeps_local_maxima_like_nms():
    torch.manual_seed(0)
    scores = torch.rand(1, 20, 20)
    pooled = response_map_pool(scores, 2)
    kept = pooled > 0
    assert kept.sum() < scores.numel() / 2
    assert torch.equal(pooled[kept], scores[kept])
    assert scores.max() in pooled  # the global maximum always survives
    # compare with NMS at IoU 0.5 over the same stride-2 12x12 windows
    ys, xs = torch.nonzero(torch.ones(20, 20), as_tuple=True)
    boxes = dense_windows(ys, xs, 1.0)
    nms_keep = nms(boxes, scores[0].flatten(), 0.5)
    pool_keep = torch.nonzero(kept[0].flatten())[:, 0]
    ratio = len(pool_keep) / len(nms_keep)
    assert 0.5 < ratio < 2.0, ratio
    assert torch.equal(response_map_pool(scores, 1), scores)


def test_pyramid_and_crops():
    scales = pyramid_scales(480, 640, min_face=24, factor=0.709)
    assert abs(scales[0] - 0.5) < 1e-9 and all(480 * s >= 12 for s in scales)
    assert abs(scales[1] / scales[0] - 0.709) < 1e-9
    image = torch.zeros(3, 100, 100)
    image[:, 40:60, 40:60] = 255.0
    boxes = torch.tensor([[40.0, 40.0, 60.0, 60.0], [0.0, 0.0, 20.0, 20.0]])
    accurate = crop_resized(image, boxes, 24)
    assert accurate.shape == (2, 3, 24, 24)
    assert accurate[0].mean() > 250 and accurate[1].max() == 0
    levels = [(1.2, torch.nn.functional.interpolate(image[None], scale_factor=1.2)[0]), (1.0, image)]
    for resample in (True, False):  # "fast" and the paper's literal "copy"
        fast = crop_from_pyramid(levels, boxes, 24, resample=resample)
        assert fast.shape == (2, 3, 24, 24)
        assert fast[0, :, 6:18, 6:18].min() == 255 and fast[1].max() == 0
    # "fast" matches the box exactly: the same crop as "accurate" on a smooth image
    ramp = torch.linspace(0, 255, 100).expand(3, 100, 100).clone()
    box = torch.tensor([[10.0, 20.0, 58.0, 68.0]])  # 48 px: level 0.5 makes it 24 px
    half = torch.nn.functional.interpolate(ramp[None], scale_factor=0.5, mode="bilinear",
                                           antialias=True)[0]
    fast = crop_from_pyramid([(1.0, ramp), (0.5, half)], box, 24)
    torch.testing.assert_close(fast, crop_resized(ramp, box, 24), atol=3.0, rtol=0)
    # "copy": a box half outside the level gets zeros there, the level's pixels inside
    noise = torch.rand(3, 100, 100) + 1.0
    edge = crop_from_pyramid([(1.0, noise)], torch.tensor([[-12.0, 88.0, 12.0, 112.0]]), 24,
                             resample=False)
    assert edge[0, :, :, :12].max() == 0 and edge[0, :, 12:, :].max() == 0
    torch.testing.assert_close(edge[0, :, :12, 12:], noise[:, 88:, :12])


def test_crop_level_index():
    """Each box's level: the smallest on which it spans the output size, else the top one;
    unusable levels (the one-graph export's missing pyramid levels) are never chosen."""
    from facecraft_d2.layers import crop_level_index

    scales = torch.tensor([1.0, 0.5, 0.25, 0.125])
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [0.0, 0.0, 48.0, 48.0],
                          [0.0, 0.0, 50.0, 50.0], [0.0, 0.0, 400.0, 400.0]])
    assert crop_level_index(scales, boxes, 24).tolist() == [0, 1, 1, 3]
    usable = torch.tensor([True, True, True, False])
    assert crop_level_index(scales, boxes, 24, usable=usable).tolist() == [0, 1, 1, 2]


def test_vote_boxes():
    """Each kept box becomes the score-weighted mean of the boxes at IoU >= thresh with it."""
    from facecraft_d2.modeling.cascade import vote_boxes

    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [50.0, 50.0, 60.0, 60.0]])
    scores = torch.tensor([0.9, 0.3, 0.8])
    kept = boxes[[0, 2]]
    voted = vote_boxes(kept, boxes, scores, 0.5)
    torch.testing.assert_close(voted[0], torch.tensor([0.25, 0.25, 10.25, 10.25]))
    torch.testing.assert_close(voted[1], boxes[2])  # nothing overlaps it: unchanged
    torch.testing.assert_close(vote_boxes(kept, boxes, scores, 0.99), kept)  # only itself
    assert vote_boxes(kept[:0], boxes, scores, 0.5).shape == (0, 4)


def test_seeded_joint_loss_regression():
    """The joint loss on fixed inputs must not change without notice."""
    torch.manual_seed(121)
    model = build_model(cascade_cfg())
    model.train()
    g = torch.Generator().manual_seed(3)
    batch = {
        "images": torch.rand(32, 3, 48, 48, generator=g) * 255,
        "ious": torch.rand(32, generator=g),
        "deltas": torch.randn(32, 4, generator=g) * 0.1,
    }
    torch.manual_seed(7)
    losses = {k: round(float(v), 4) for k, v in model(batch).items()}
    expected = EXPECTED_SEEDED_LOSSES
    assert losses.keys() == expected.keys()
    for k in expected:
        assert abs(losses[k] - expected[k]) < 1e-3, (k, losses[k], expected[k])


EXPECTED_SEEDED_LOSSES = {
    "loss_x12_cls": 0.6938, "loss_x12_reg": 0.0278, "loss_x24_cls": 0.6752,
    "loss_x24_reg": 0.0251, "loss_x48_cls": 0.8359, "loss_x48_reg": 0.0361,
}


def test_greedy_stage_freezes_earlier_branches():
    model = build_model(cascade_cfg(**{
        "MODEL.FACECRAFT.TRAIN_BRANCHES": ["x24"], "MODEL.FACECRAFT.FROZEN_BRANCHES": ["x12"]}))
    model.train()
    assert not model.net.x12_body.training and model.net.x24_body.training
    batch = {"images": torch.rand(16, 3, 48, 48) * 255, "ious": torch.rand(16), "deltas": torch.zeros(16, 4)}
    losses = model(batch)
    assert set(losses) == {"loss_x24_cls", "loss_x24_reg"}
    sum(losses.values()).backward()
    assert all(p.grad is None for p in model.net.x12_body.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.net.x24_body.parameters())


def test_joint_loss_backpropagates_into_all_branches():
    model = build_model(cascade_cfg(**{"MODEL.FACECRAFT.TRAIN_THRESHOLDS": [0.0, 0.0]}))
    model.train()
    batch = {"images": torch.rand(16, 3, 48, 48) * 255,
             "ious": torch.tensor([0.9] * 4 + [0.1] * 12), "deltas": torch.zeros(16, 4)}
    sum(model(batch).values()).backward()
    for b in ("x12", "x24", "x48"):
        assert getattr(model.net, f"{b}_body")[0].weight.grad.abs().sum() > 0, b


def test_inference_returns_instances_in_output_size():
    model = build_model(cascade_cfg(**{"MODEL.FACECRAFT.TEST.SCORE_THRESHOLDS": [0.0, 0.0, 0.0],
                                       "MODEL.FACECRAFT.TEST.MAX_PROPOSALS": 50,
                                       "MODEL.FACECRAFT.TEST.MIN_FACE_SIZE": 40}))
    model.eval()
    for mode in ("accurate", "fast", "copy"):
        model.crop_mode = mode
        out = model([{"image": torch.randint(0, 255, (3, 120, 160), dtype=torch.uint8), "height": 240, "width": 320},
                     {"image": torch.randint(0, 255, (3, 90, 90), dtype=torch.uint8)}])
        inst = out[0]["instances"]
        assert inst.image_size == (240, 320) and out[1]["instances"].image_size == (90, 90)
        assert 0 < len(inst) <= 50
        b = inst.pred_boxes.tensor
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= 320).all() and (b[:, 3] <= 240).all()
        assert (inst.scores[:-1] >= inst.scores[1:]).all()


def test_suppress_contained_drops_nested_lower_scoring_boxes():
    from facecraft_d2.modeling.cascade import suppress_contained

    boxes = torch.tensor([
        [0.0, 0.0, 100.0, 100.0],  # a face
        [20.0, 20.0, 50.0, 50.0],  # an eye-sized box inside it: IoU 0.09, containment 1.0
        [90.0, 90.0, 150.0, 150.0],  # overlaps the face by 100 of its 3600 px: kept
        [200.0, 0.0, 240.0, 40.0],  # elsewhere
    ])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.6])
    assert suppress_contained(boxes, scores, 0.7).tolist() == [True, False, True, True]
    assert suppress_contained(boxes, scores, 1.0).all()
    # a bigger box with a LOWER score than the nested one does not remove it
    assert suppress_contained(boxes[[1, 0]], scores[:2], 0.7).tolist() == [True, True]


def test_channels_last_inference_gives_the_same_boxes_and_plain_tensors():
    opts = {"MODEL.FACECRAFT.TEST.SCORE_THRESHOLDS": [0.0, 0.0, 0.0],
            "MODEL.FACECRAFT.TEST.MAX_PROPOSALS": 40, "MODEL.FACECRAFT.TEST.MIN_FACE_SIZE": 40}
    torch.manual_seed(0)
    fast = build_model(cascade_cfg(**opts))
    slow = build_model(cascade_cfg(**opts, **{"MODEL.FACECRAFT.TEST.CHANNELS_LAST": False}))
    slow.load_state_dict(fast.state_dict())
    fast.eval(), slow.eval()
    assert fast.net.x24_body[0].weight.is_contiguous(memory_format=torch.channels_last)
    image = torch.randint(0, 255, (3, 96, 128)).float()
    (b1, s1), = fast.detect([image])
    (b0, s0), = slow.detect([image])
    assert len(b1) > 0
    torch.testing.assert_close(b1, b0, atol=1e-3, rtol=0)
    torch.testing.assert_close(s1, s0, atol=1e-5, rtol=0)
    assert not b1.is_inference() and not s1.is_inference()  # callers may edit them in place
    b1 *= 2
    fast.train()  # training goes back to the default layout
    assert fast.net.x24_body[0].weight.is_contiguous()


def test_bfloat16_inference_keeps_float32_outputs_close_to_float32():
    """bfloat16 autocast changes the networks' arithmetic only: float32 boxes and scores, the
    face of the sample photo found with nearly the same box and score."""
    import cv2
    import matplotlib.cbook

    from facecraft_d2 import FaceDetector

    model = FaceDetector("cascade_joint", preset="fast").model
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    image = torch.from_numpy(cv2.imread(path)).permute(2, 0, 1).contiguous()
    (b32, s32), = model.detect([image])
    with model.test_settings(bfloat16=True):
        (b16, s16), = model.detect([image])
    assert b16.dtype == s16.dtype == torch.float32
    assert s32[0] > 0.99 and s16[0] > 0.99
    torch.testing.assert_close(b16[0], b32[0], atol=3.0, rtol=0)  # pixels, on a 200 px face


def test_score_stages_rank_by_the_geometric_mean_of_stage_probabilities():
    """SCORE_STAGES ["x24", "x48"]: final score sqrt(p24 * p48); ["x48"]: x48's alone."""
    from facecraft_d2.modeling.cascade.inference import CascadeInference

    probs = torch.tensor([[0.9, 0.25, 0.9], [0.2, 0.9, 0.8], [0.5, 1.0, 0.0]])  # x12, x24, x48
    last = CascadeInference(score_stages=("x48",)).final_scores(probs)
    both = CascadeInference(score_stages=("x24", "x48")).final_scores(probs)
    torch.testing.assert_close(last, probs[:, 2])
    torch.testing.assert_close(both, torch.tensor([0.225 ** 0.5, 0.72 ** 0.5, 0.0]), atol=1e-5, rtol=0)
    assert both.argmax() == 1 and last.argmax() == 0  # the ranking changes
    with pytest.raises(ValueError, match="x96"):  # an unknown stage
        CascadeInference(score_stages=("x96",))

    opts = {"MODEL.FACECRAFT.TEST.SCORE_THRESHOLDS": [0.0, 0.0, 0.0],
            "MODEL.FACECRAFT.TEST.MAX_PROPOSALS": 40, "MODEL.FACECRAFT.TEST.MIN_FACE_SIZE": 40}
    torch.manual_seed(0)
    model = build_model(cascade_cfg(**opts, **{"MODEL.FACECRAFT.TEST.SCORE_STAGES": ["x24", "x48"]}))
    model.eval()
    image = torch.randint(0, 255, (3, 96, 128)).float()
    (boxes, scores), = model.detect([image])
    assert len(boxes) > 0 and ((scores > 0) & (scores <= 1)).all()
    assert (scores[:-1] >= scores[1:]).all()
    # with_probs: the same detections, each with its three stage probabilities
    with torch.inference_mode():
        (b2, s2, probs), = model.inference_pipeline(model, [image], with_probs=True)
    assert torch.equal(b2, boxes) and torch.equal(s2, scores) and probs.shape == (len(boxes), 3)
    torch.testing.assert_close(s2, (probs[:, 1] * probs[:, 2]).sqrt(), atol=1e-6, rtol=0)



def test_trace_records_what_each_stage_saw_in_one_run():
    """detect(trace=...) gives, from one run, what propose("x12") and propose("x24") give."""
    opts = {"MODEL.FACECRAFT.TEST.SCORE_THRESHOLDS": [0.3, 0.3, 0.0],
            "MODEL.FACECRAFT.TEST.MAX_PROPOSALS": 40, "MODEL.FACECRAFT.TEST.MIN_FACE_SIZE": 40}
    torch.manual_seed(0)
    model = build_model(cascade_cfg(**opts))
    model.eval()
    images = [torch.randint(0, 255, (3, 96, 128)).float(), torch.randint(0, 255, (3, 80, 64)).float()]
    trace = {}
    detections = model.detect(images, trace=trace)
    assert sorted(trace) == ["x12", "x24"] and all(len(v) == len(images) for v in trace.values())
    for upto in ("x12", "x24"):
        for (b, s), (bp, sp) in zip(trace[upto], model.propose(images, upto)):
            assert len(b) > 0 and torch.equal(b, bp) and torch.equal(s, sp)
            assert not b.is_inference()
    for (b, s), (b0, s0) in zip(detections, model.detect(images)):  # tracing changes nothing
        assert torch.equal(b, b0) and torch.equal(s, s0)
    # x24 passes on no more boxes than it was given
    assert sum(len(b) for b, _ in trace["x24"]) <= sum(len(b) for b, _ in trace["x12"])

def test_flip_stages_average_the_crop_and_its_mirror_image():
    """FLIP_STAGES ["x48"]: x48's probability is the mean over the crop and its mirror image."""
    from facecraft_d2.modeling.cascade.inference import CascadeInference

    opts = {"MODEL.FACECRAFT.TEST.SCORE_THRESHOLDS": [0.0, 0.0, 0.0],
            "MODEL.FACECRAFT.TEST.MAX_PROPOSALS": 40, "MODEL.FACECRAFT.TEST.MIN_FACE_SIZE": 40}
    torch.manual_seed(0)
    plain = build_model(cascade_cfg(**opts))
    flip = build_model(cascade_cfg(**opts, **{"MODEL.FACECRAFT.TEST.FLIP_STAGES": ["x48"]}))
    flip.load_state_dict(plain.state_dict())
    plain.eval(), flip.eval()
    seen = []
    forward = flip.net.forward
    flip.net.forward = lambda x, upto="x48": seen.append((upto, x.clone())) or forward(x, upto)
    image = torch.randint(0, 255, (3, 96, 128)).float()
    (b0, s0), = plain.detect([image])
    (b1, s1), = flip.detect([image])
    stages = [u for u, _ in seen]
    assert stages == ["x24", "x48", "x48"]  # x48 twice: the crops, then their mirror images
    torch.testing.assert_close(seen[2][1], seen[1][1].flip(-1))
    with torch.inference_mode():
        x48, mirrored = (torch.softmax(forward(x, "x48")["x48"][0], dim=1)[:, 1] for _, x in seen[1:])
    assert len(b1) > 0 and set(s1.tolist()) <= set(((x48 + mirrored) / 2).tolist())
    assert not torch.equal(s0, s1)
    with pytest.raises(ValueError, match="x12"):  # x12 runs densely, not on crops
        CascadeInference(flip_stages=("x12",))


def test_run_body_equals_the_sequential():
    """ReLU moved after each max pooling: the same features and gradients (ReLU and max
    commute), for all three bodies."""
    torch.manual_seed(0)
    net = FaceCraftNet(cascade_cfg())
    for body, size in ((net.x12_body, 31), (net.x24_body, 24), (net.x48_body, 48)):
        x = torch.randn(3, 3, size, size, requires_grad=True)
        plain = body(x)
        assert torch.equal(run_body(body, x), plain)
        g_plain, = torch.autograd.grad(plain.sum(), x)
        g_moved, = torch.autograd.grad(run_body(body, x).sum(), x)
        assert torch.equal(g_moved, g_plain)
        assert (plain > 0).any() and (plain == 0).any()  # ReLU really clips something


def test_pipeline_settings_are_restored_and_checked():
    from facecraft_d2.modeling.cascade.inference import CascadeInference

    pipeline = CascadeInference(score_thresholds=(0.5, 0.5, 0.1), flip_stages=("x48",))
    with pipeline.settings(flip_stages=[], score_thresholds=(0.1, 0.2, 0.3)):
        assert pipeline.flip_stages == () and pipeline.score_thresholds == (0.1, 0.2, 0.3)
    assert pipeline.flip_stages == ("x48",) and pipeline.score_thresholds == (0.5, 0.5, 0.1)
    with pytest.raises(RuntimeError):
        with pipeline.settings(flip_stages=()):
            raise RuntimeError("stage failed")
    assert pipeline.flip_stages == ("x48",)  # restored after an error too
    with pytest.raises(AttributeError, match="no_such_setting"):
        with pipeline.settings(no_such_setting=1):
            pass
