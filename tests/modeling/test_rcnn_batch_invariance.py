# Copyright (c) facecraft_d2 contributors.
"""JointRCNN inference gives every image the same detections at batch size 1 and in a batch."""
import matplotlib.cbook
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from detectron2.modeling import GeneralizedRCNN, build_model

from facecraft_d2.modeling.meta_arch.joint_rcnn import group_by_padded_size

from rcnn_common import rcnn_cfg

SIZES = ((96, 128), (80, 112), (128, 96), (64, 160))  # (H, W), all different


def _model(seed=0):
    """A random small JointRCNN whose biases are not zero, as in a trained model."""
    torch.manual_seed(seed)
    model = build_model(rcnn_cfg("Base-ZF-RCNN.yaml", "MODEL.ROI_HEADS.SCORE_THRESH_TEST", 0.0))
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
                m.bias.uniform_(0.0, 0.1)  # zero padding is not zero after conv1 + ReLU
    return model.eval()


def _inputs(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [{"image": torch.rand(3, h, w, generator=g) * 255, "height": h, "width": w}
            for h, w in sizes]


def _same(a, b, atol=1e-4):
    """Whether two outputs ({"instances": ...}) have the same boxes and scores."""
    a, b = a["instances"], b["instances"]
    return (len(a) == len(b)
            and torch.allclose(a.pred_boxes.tensor, b.pred_boxes.tensor, rtol=0, atol=atol)
            and torch.allclose(a.scores, b.scores, rtol=0, atol=atol))


def test_group_by_padded_size():
    inputs = _inputs(((96, 128), (64, 112), (96, 128), (90, 120)))
    assert group_by_padded_size(inputs) == [[0, 2], [1], [3]]
    assert group_by_padded_size(inputs, 1) == [[0, 2], [1], [3]]
    assert group_by_padded_size(inputs, 32) == [[0, 2, 3], [1]]  # 90x120 pads to 96x128 alone


@pytest.mark.parametrize("sizes", [SIZES, ((96, 128), (80, 112), (96, 128), (80, 112))])
def test_batch_of_four_equals_batch_of_one(sizes):
    model = _model()
    inputs = _inputs(sizes)
    with torch.no_grad():
        singles = [model([x])[0] for x in inputs]
        batch = model(inputs)
        padded = GeneralizedRCNN.inference(model, inputs)  # Detectron2's padded batch
    assert all(len(out["instances"]) > 0 for out in singles)
    for i, (one, out) in enumerate(zip(singles, batch)):
        assert out["instances"].image_size == sizes[i]
        assert _same(one, out), i
    if len(set(sizes)) == len(sizes):
        # what the test guards against: padding to the largest image changes detections
        assert not all(_same(one, out) for one, out in zip(singles, padded))


def test_padding_changes_border_features_only():
    """The cause: a padded image's features differ at its right / bottom border only."""
    model = _model()
    inputs = _inputs(((64, 160), (64, 256)))
    with torch.no_grad():
        alone = model.backbone(model.preprocess_image(inputs[:1]).tensor)["conv5"]
        padded = model.backbone(model.preprocess_image(inputs).tensor)["conv5"][:1]
    assert alone.shape[-2:] == (4, 10) and padded.shape[-2:] == (4, 16)
    diff = (padded[..., :10] - alone).abs().amax(dim=(0, 1, 2))  # per conv5 column
    assert (diff[:6] < 1e-4).all() and (diff[6:] > 1e-2).all()  # the last 4 cells (64 px)


def test_shipped_model_same_faces_in_batch():
    """A shipped R-CNN on four differently sized crops of a real photo, one by one and batched."""
    from facecraft_d2 import FaceDetector

    src = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    with Image.open(src) as im:
        bgr = np.ascontiguousarray(np.asarray(im.convert("RGB"))[:, :, ::-1])  # 600 x 512
    images = [bgr[:256, :256], bgr[150:450], bgr[:, 64:448],
              np.ascontiguousarray(bgr[::2, ::2])]
    det = FaceDetector("rcnn_four_step", score_threshold=0.0, batch_size=4, device="cpu")
    singles = [det.detect(im, format="BGR") for im in images]
    batch = det.detect_batch(images, format="BGR")
    assert sum(len(f) for f in singles) > 0
    for one, out in zip(singles, batch):
        assert len(one) == len(out)
        np.testing.assert_allclose(out.boxes, one.boxes, rtol=0, atol=1e-3)
        np.testing.assert_allclose(out.scores, one.scores, rtol=0, atol=1e-5)
