# Copyright (c) facecraft_d2 contributors.
"""Held-out matching and figures (facecraft_d2.evaluation.heldout_metrics), and
tools/rescore_heldout.py's learnt score and box correction, on tiny synthetic boxes."""
import os
import runpy

import pytest
import torch

from facecraft_d2.evaluation.heldout_metrics import match_detections, summarize_matches

TOOL = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "..", "tools", "rescore_heldout.py"))

FACES = torch.tensor([[0.0, 0, 10, 10], [50, 50, 70, 70]])
IGNORE = torch.tensor([[100.0, 100, 120, 120]])


def test_match_hits_duplicates_ignore_and_false_positives():
    boxes = torch.tensor([
        [0.0, 0, 10, 10],      # 0.9: hits face 0
        [0.0, 0, 10, 9],       # 0.8: a duplicate of face 0 (IoU 0.9): neither hit nor FP
        [101.0, 101, 120, 120],  # 0.7: on the ignore region: nothing
        [200.0, 200, 210, 210],  # 0.6: false positive
        [50.0, 50, 69, 70],    # 0.5: hits face 1
    ])
    scores = torch.tensor([0.5, 0.8, 0.7, 0.6, 0.9])[[4, 1, 2, 3, 0]]
    s, hit, fp = match_detections(boxes, scores, FACES, IGNORE)
    assert torch.equal(s, torch.tensor([0.9, 0.8, 0.7, 0.6, 0.5]))
    assert hit.tolist() == [True, False, False, False, True]
    assert fp.tolist() == [False, False, False, True, False]


def test_summary_ap_recall_at_fp_rate_and_any_score():
    # image 1: hit (0.9), FP (0.6), hit (0.5); image 2: FP (0.7), no faces
    per_image = [
        (torch.tensor([0.9, 0.6, 0.5]), torch.tensor([True, False, True]), torch.tensor([False, True, False])),
        (torch.tensor([0.7]), torch.tensor([False]), torch.tensor([True])),
    ]
    out = summarize_matches(per_image, num_faces=4, fp_per_image=0.5)
    # ranked: hit .9, FP .7, FP .6, hit .5 -> 1 FP allowed (0.5 x 2 images): recall 1/4 at 0.7
    assert out["recall_at_fp_rate"] == pytest.approx(0.25)
    assert out["score_threshold"] == pytest.approx(0.7)
    assert out["recall_any_score"] == pytest.approx(0.5)
    assert out["false_positives_any_score_per_image"] == pytest.approx(1.0)
    # VOC AP: recall 0.25 at precision 1, recall 0.5 at precision 0.5
    assert out["ap"] == pytest.approx(0.25 * 1.0 + 0.25 * 0.5)


def test_learnt_score_ranks_faces_first_and_box_correction_recovers_a_shift():
    torch.manual_seed(0)
    faces = torch.tensor([[10.0, 10, 40, 46]])  # 30 x 36, like WIDER's taller-than-wide faces
    dets, gts = [], []
    for _ in range(20):
        on_face = faces + torch.tensor([1.0, 4, 1, -2])  # a square-ish box, a bit low and short
        background = torch.tensor([[100.0, 100, 130, 130], [200.0, 10, 230, 40]])
        boxes = torch.cat([on_face, background])
        # x48 separates faces from background; x12 does not
        probs = torch.tensor([[0.6, 0.7, 0.95], [0.9, 0.6, 0.3], [0.7, 0.8, 0.2]])
        dets.append((boxes, probs))
        gts.append((faces, torch.zeros(0, 4)))
    score, info = TOOL["fit_score"](dets, gts, size=False)
    s = score(*dets[0])
    assert s[0] > s[1] and s[0] > s[2] and info["positives"] == 20
    corr = TOOL["fit_box_correction"](dets, gts, lambda b, p: p[:, 2])
    fixed = TOOL["correct_boxes"](dets[0][0][:1], corr)
    assert torch.allclose(fixed, faces, atol=1e-4)
    out = TOOL["evaluate"](dets, gts, score, 0.3, 0.1)
    assert out["recall_at_fp_rate"] == pytest.approx(1.0) and out["ap"] == pytest.approx(1.0)
