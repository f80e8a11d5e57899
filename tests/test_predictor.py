# Copyright (c) facecraft_d2 contributors.
"""The FaceDetector API on the shipped joint cascade (small images, CPU)."""
import matplotlib.cbook
import numpy as np
import pytest
from PIL import Image

from detectron2.structures import Instances

from facecraft_d2 import FaceDetections, FaceDetector
from facecraft_d2.utils.image_io import ImageLoadError
from facecraft_d2.utils.testing import BAD_IMAGE_CASES, write_bad_image
from facecraft_d2.predictor import resolve_model_name


@pytest.fixture(scope="module")
def detector():
    return FaceDetector("cascade-joint", score_threshold=0.5)


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """matplotlib's sample photo (not a dataset image), shrunk to 200x234 for speed."""
    src = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    path = str(tmp_path_factory.mktemp("photo") / "hopper.png")
    with Image.open(src) as im:
        im.convert("RGB").resize((200, 234), Image.BILINEAR).save(path)
    return path


def _bgr(path):
    with Image.open(path) as im:
        return np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1])


def test_model_names():
    assert resolve_model_name("cascade-joint") == "cascade_joint"
    assert resolve_model_name("Cascade_Separate") == "cascade_separate"
    with pytest.raises(KeyError, match="available: .*cascade_joint"):
        resolve_model_name("no-such-model")


def test_detect_inputs_agree(detector, photo):
    """Path, BGR array, RGB array and PIL image give the same faces."""
    by_path = detector.detect(photo)
    assert isinstance(by_path, FaceDetections) and len(by_path) > 0
    assert by_path.source == photo and by_path.image_size == (234, 200)
    bgr = _bgr(photo)
    for faces in (detector.detect(bgr), detector.detect(bgr[:, :, ::-1].copy(), format="RGB"),
                  detector.detect(Image.open(photo))):
        np.testing.assert_allclose(faces.boxes, by_path.boxes, atol=1e-4)
        np.testing.assert_allclose(faces.scores, by_path.scores, atol=1e-6)
    assert by_path.boxes.shape == (len(by_path), 4) and by_path.boxes.dtype == np.float32
    assert (np.diff(by_path.scores) <= 0).all(), "sorted by decreasing score"
    assert (by_path.scores >= 0.5).all()
    assert by_path.stages == ["x48"] * len(by_path)
    d = by_path.to_dict()
    assert set(d) == {"file", "height", "width", "faces", "notes"}
    assert set(d["faces"][0]) == {"box", "score", "stage"}


def test_batch_matches_single(detector, photo):
    bgr = _bgr(photo)
    flipped = np.ascontiguousarray(bgr[:, ::-1])
    singles = [detector.detect(x) for x in (bgr, flipped, photo)]
    batch = detector.detect_batch([bgr, flipped, photo])
    assert len(batch) == 3
    for a, b in zip(singles, batch):
        np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)


def test_batch_skips_bad_files(detector, photo, tmp_path):
    bad = write_bad_image("truncated_jpeg", str(tmp_path))
    with pytest.raises(ImageLoadError, match="truncated"):
        detector.detect_batch([photo, bad])
    out = detector.detect_batch([bad, photo], on_error="skip")
    assert isinstance(out[0], ImageLoadError) and out[0].path == bad
    assert isinstance(out[1], FaceDetections) and out[1].source == photo and len(out[1]) > 0


def test_default_predictor_convention(detector, photo):
    out = detector(_bgr(photo))
    assert set(out) == {"instances"}
    inst = out["instances"]
    assert isinstance(inst, Instances) and inst.image_size == (234, 200)
    assert inst.has("pred_boxes") and inst.has("scores") and inst.has("pred_classes")
    # no score threshold here, as DefaultPredictor
    assert len(inst) >= len(detector.detect(photo))


def test_settings_reach_the_model():
    from detectron2.config import get_cfg

    from facecraft_d2 import add_facecraft_config
    from facecraft_d2.model_zoo import get_config_file

    det = FaceDetector("cascade_joint", min_face=40, preset="fast", score_threshold=0.7)
    assert det.model.min_face == 40 and det.model.crop_mode == "fast"
    assert det.cfg.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE == 40 and det.min_face == 40
    fast = get_cfg()  # the preset is the shipped fast config's test settings
    add_facecraft_config(fast)
    fast.merge_from_file(get_config_file("cascade/joint_fast.yaml"))
    fast.MODEL.FACECRAFT.TEST.MIN_FACE_SIZE = 40
    assert det.cfg.MODEL.FACECRAFT.TEST == fast.MODEL.FACECRAFT.TEST
    assert FaceDetector("cascade_joint", preset="accurate").model.crop_mode == "accurate"
    with pytest.raises(ValueError, match="preset"):
        FaceDetector("cascade_joint", preset="turbo")


def test_exif_rotated_boxes_are_in_displayed_orientation(detector, tmp_path):
    path = write_bad_image("exif_rotated_jpeg", str(tmp_path))
    faces = detector.detect(path)
    with Image.open(path) as im:
        stored = np.asarray(im.convert("RGB"))[:, :, ::-1]
    displayed = np.ascontiguousarray(np.rot90(stored, k=-1))  # orientation 6
    ref = detector.detect(displayed)
    assert faces.image_size == (128, 96)
    np.testing.assert_allclose(faces.boxes, ref.boxes, atol=1e-3)


def test_downscaled_image_boxes_are_mapped_back(photo):
    """An image above max_pixels is shrunk for the model; boxes come back at full size."""
    big = _bgr(photo).repeat(2, axis=0).repeat(2, axis=1)  # 400x468
    small = FaceDetector("cascade_joint", score_threshold=0.5, max_pixels=200 * 234)
    faces = small.detect(big)
    assert faces.image_size == (468, 400) and any("downscaled" in n for n in faces.notes)
    ref = small.detect(_bgr(photo))
    assert len(faces) == len(ref) > 0
    np.testing.assert_allclose(faces.boxes, ref.boxes * 2, atol=2.0)


@pytest.mark.parametrize("case", sorted(c for c in BAD_IMAGE_CASES if c != "huge_png"))
def test_bad_images_give_detections_or_one_error(detector, case, tmp_path):
    path = write_bad_image(case, str(tmp_path))
    if case in ("truncated_jpeg", "not_an_image", "empty"):
        with pytest.raises(ImageLoadError, match="^" + path.replace(".", r"\.")):
            detector.detect(path)
        return
    det = FaceDetector("cascade_joint", max_pixels=1_000_000) if case == "huge_jpeg" else detector
    faces = det.detect(path)
    h, w = faces.image_size
    assert (h, w) == ((20000, 30000) if case == "huge_jpeg" else
                      (1, 1) if case == "one_pixel" else
                      (128, 96) if case == "exif_rotated_jpeg" else (96, 128))
    if len(faces):
        assert (faces.boxes[:, 2] <= w + 1e-3).all() and (faces.boxes[:, 3] <= h + 1e-3).all()
    if case == "one_pixel":
        assert len(faces) == 0


def test_rcnn_models_by_config(tmp_path, photo):
    """Non-cascade models: no stages, min_face filters boxes, presets map to RPN settings."""
    import os

    import torch

    from detectron2.modeling import build_model

    from facecraft_d2.model_zoo import get_config_file

    config = get_config_file("tests/zf_rcnn_tiny.yaml")
    det = FaceDetector(config_file=config, weights=_random_weights(config, tmp_path, build_model,
                                                                   torch),
                       score_threshold=0.0, min_face=20, preset="fast")
    assert not det.is_cascade and det.cfg.MODEL.RPN.POST_NMS_TOPK_TEST == 100
    faces = det.detect(photo)
    assert faces.stages is None and "stage" not in str(faces.to_dict()["faces"][:1])
    if len(faces):
        wh = faces.boxes[:, 2:] - faces.boxes[:, :2]
        assert (np.sqrt(wh[:, 0] * wh[:, 1]) >= 20 - 1e-3).all()
    assert os.path.basename(config).startswith(det.name)


def _random_weights(config, tmp_path, build_model, torch):
    from detectron2.config import get_cfg

    from facecraft_d2 import add_facecraft_config

    cfg = get_cfg()
    add_facecraft_config(cfg)
    cfg.merge_from_file(config)
    cfg.MODEL.DEVICE = "cpu"
    torch.manual_seed(0)
    path = str(tmp_path / "random.pth")
    torch.save({"model": build_model(cfg).state_dict()}, path)
    return path


def test_rcnn_fast_preset_runs_less_work(photo):
    """R-CNN fast preset: 3/4 of the model's test scale and 100 proposals reach JointRCNN."""
    from detectron2.config import get_cfg

    from facecraft_d2.predictor import rcnn_fast_preset

    seen = {}
    dets = {p: FaceDetector("rcnn_two_step", preset=p, device="cpu", score_threshold=0.0)
            for p in ("accurate", "fast")}
    for preset, det in dets.items():
        det.model.backbone.register_forward_hook(
            lambda m, inputs, out, p=preset: seen.setdefault(p, {}).update(pixels=inputs[0][0, 0].numel()))
        det.model.roi_heads.register_forward_pre_hook(
            lambda m, inputs, p=preset: seen[p].update(rois=len(inputs[2][0])))
        faces = det.detect(photo)
        assert faces.image_size == (234, 200) and len(faces) > 0
        assert (faces.boxes[:, 2] <= 200 + 1e-3).all() and (faces.boxes[:, 3] <= 234 + 1e-3).all()
    acc, fast = dets["accurate"].cfg, dets["fast"].cfg
    assert (acc.INPUT.MIN_SIZE_TEST, acc.INPUT.MAX_SIZE_TEST, acc.MODEL.RPN.POST_NMS_TOPK_TEST) == (480, 800, 300)
    assert (fast.INPUT.MIN_SIZE_TEST, fast.INPUT.MAX_SIZE_TEST, fast.MODEL.RPN.POST_NMS_TOPK_TEST) == (360, 600, 100)
    # 200 x 234 photo -> 480 x 562 (accurate) and 360 x 421 (fast) pixels into the backbone
    assert seen["accurate"]["pixels"] == 480 * 562 and seen["fast"]["pixels"] == 360 * 421
    assert seen["accurate"]["rois"] == 300 and seen["fast"]["rois"] <= 100
    # the scale is relative to the model's own; no resizing (MIN_SIZE_TEST 0) stays none
    cfg = get_cfg()
    cfg.INPUT.MIN_SIZE_TEST, cfg.INPUT.MAX_SIZE_TEST = 256, 400
    assert rcnn_fast_preset(cfg)[4:] == ["INPUT.MIN_SIZE_TEST", 192, "INPUT.MAX_SIZE_TEST", 300]
    cfg.INPUT.MIN_SIZE_TEST = 0
    assert "INPUT.MIN_SIZE_TEST" not in rcnn_fast_preset(cfg)


@pytest.mark.parametrize("kwargs,message", [
    ({"score_threshold": 2}, "score_threshold must be a number in [0, 1], got 2"),
    ({"score_threshold": -0.1}, "score_threshold must be a number in [0, 1], got -0.1"),
    ({"min_face": 0}, "min_face must be a number > 0, got 0"),
    ({"min_face": -5}, "min_face must be a number > 0, got -5"),
    ({"batch_size": 0}, "batch_size must be an integer >= 1, got 0"),
    ({"max_pixels": 0}, "max_pixels must be an integer >= 1, got 0"),
    ({"preset": "turbo"}, "preset must be one of ['accurate', 'fast'], got 'turbo'"),
    ({"backend": "tensorrt"}, "backend must be one of 'torch', 'onnxruntime', got 'tensorrt'"),
    ({"input_format": "bgr"}, "input_format must be one of 'BGR', 'RGB', got 'bgr'"),
    ({"device": "gpu"}, "device must be 'cpu' or 'cuda' (or 'cuda:N'), got 'gpu'"),
])
def test_constructor_refuses_bad_settings_in_one_line(kwargs, message):
    with pytest.raises(ValueError) as e:
        FaceDetector("cascade_joint", **kwargs)
    assert str(e.value) == message


def test_onnxruntime_export_folder_must_exist(tmp_path):
    with pytest.raises(FileNotFoundError, match="ONNX export folder .*nothing' does not exist"):
        FaceDetector(str(tmp_path / "nothing"), backend="onnxruntime")


def _rgb(path):
    return np.ascontiguousarray(_bgr(path)[:, :, ::-1])


def test_arrays_are_bgr_unless_said_and_an_unstated_order_warns_once(photo, recwarn):
    """Detectron2's BGR default; ``format=`` per call or ``input_format=`` once for RGB."""
    import warnings

    ref = FaceDetector("cascade_joint", score_threshold=0.5, input_format="BGR")
    by_path = ref.detect(photo)
    ref.detect(_bgr(photo))
    assert not recwarn.list  # the order was stated once, in the constructor
    implicit = FaceDetector("cascade_joint", score_threshold=0.5)
    assert implicit.input_format == "BGR"
    with pytest.warns(UserWarning, match="read as BGR.*format='RGB'"):
        np.testing.assert_allclose(implicit.detect(_bgr(photo)).boxes, by_path.boxes, atol=1e-4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # once per detector: no second warning
        implicit.detect(_bgr(photo))
        np.testing.assert_allclose(implicit.detect(_rgb(photo), format="RGB").boxes,
                                   by_path.boxes, atol=1e-4)
        rgb = FaceDetector("cascade_joint", score_threshold=0.5, input_format="RGB")
        np.testing.assert_allclose(rgb.detect(_rgb(photo)).boxes, by_path.boxes, atol=1e-4)
        np.testing.assert_allclose(rgb.detect(_bgr(photo), format="BGR").boxes, by_path.boxes,
                                   atol=1e-4)
        np.testing.assert_allclose(rgb.detect(Image.open(photo)).boxes, by_path.boxes, atol=1e-4)
        np.testing.assert_allclose(rgb.detect(photo).boxes, by_path.boxes, atol=1e-4)
        # DefaultPredictor style: the detector's input_format too (BGR by default)
        np.testing.assert_allclose(rgb(_rgb(photo))["instances"].pred_boxes.tensor.numpy(),
                                   ref(_bgr(photo))["instances"].pred_boxes.tensor.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="format must be one of 'BGR', 'RGB', got 'rgb'"):
        ref.detect(_bgr(photo), format="rgb")


def test_grayscale_inputs_agree_and_need_no_format(photo, tmp_path):
    """(H, W), (H, W, 1), gray 3-channel arrays, mode L images and files: the same faces."""
    import warnings

    gray_path = str(tmp_path / "gray.png")
    with Image.open(photo) as im:
        im.convert("L").save(gray_path)
    det = FaceDetector("cascade_joint", score_threshold=0.5)
    ref = det.detect(gray_path)
    gray = np.asarray(Image.open(gray_path))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no channel order to state for gray images
        for image in (gray, gray[:, :, None], np.repeat(gray[:, :, None], 3, axis=2),
                      Image.open(gray_path)):
            faces = det.detect(image)
            assert faces.image_size == ref.image_size
            np.testing.assert_allclose(faces.boxes, ref.boxes, atol=1e-4)
