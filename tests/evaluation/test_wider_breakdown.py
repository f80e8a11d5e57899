# Copyright (c) facecraft_d2 contributors.
"""WIDER prediction files read back as written, and tools/wider_breakdown.py's kinds of detections."""
import os
import runpy

import numpy as np

from facecraft_d2.evaluation.widerface_evaluation import read_wider_predictions, write_wider_predictions

TOOL = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "..", "tools", "wider_breakdown.py"))


def test_predictions_round_trip(tmp_path):
    preds = {"0--Parade/0_Parade_1": np.array([[1.0, 2, 30, 40, 0.5], [5, 6, 7, 8, 0.9]]),
             "1--Handshaking/1_H_2": np.zeros((0, 5))}
    write_wider_predictions(str(tmp_path), preds)
    back = read_wider_predictions(str(tmp_path))
    assert sorted(back) == sorted(preds)
    np.testing.assert_allclose(back["0--Parade/0_Parade_1"], preds["0--Parade/0_Parade_1"][[1, 0]])
    assert back["1--Handshaking/1_H_2"].shape == (0, 5)


def test_detection_kinds_by_overlap_with_the_faces():
    # two faces (x y w h): the first counts in the setting, the second does not
    gt = {"e/img": (np.array([[0.0, 0, 100, 100], [300, 300, 50, 50]]), {"easy": np.array([True, False])})}
    pred = np.array([
        [0.0, 0, 100, 100, 0.9],    # the counted face: tp
        [2.0, 2, 100, 100, 0.8],    # the same face again: dup
        [300, 300, 50, 50, 0.7],    # the face outside the setting: ignored
        [0.0, 0, 100, 45, 0.6],     # IoU 0.45 with the face: loc
        [80.0, 80, 100, 100, 0.5],  # IoU 0.02, a corner of it: bg
        [0.0, 0, 100, 20, 0.4],     # IoU 0.2: part
        [600, 600, 40, 40, 0.3],    # nothing under it: bg
    ])
    scores, kinds = TOOL["detection_kinds"]({"e/img": pred}, gt, "easy")
    assert (np.diff(scores) <= 0).all()
    assert list(kinds) == ["tp", "dup", "ignored", "loc", "bg", "part", "bg"]
