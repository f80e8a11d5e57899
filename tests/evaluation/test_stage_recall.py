# Copyright (c) facecraft_d2 contributors.
"""tools/stage_recall.py's per-face matching and its recall by face size."""
import os
import runpy

import torch

TOOL = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "..", "tools", "stage_recall.py"))


def test_best_iou_per_face_and_empty_inputs():
    faces = torch.tensor([[0.0, 0, 10, 10], [20, 20, 60, 60]])
    boxes = torch.tensor([[0.0, 0, 10, 5], [20, 20, 60, 60], [100, 100, 110, 110]])
    assert torch.allclose(TOOL["best_iou"](boxes, faces), torch.tensor([0.5, 1.0]))
    assert torch.equal(TOOL["best_iou"](torch.zeros(0, 4), faces), torch.zeros(2))
    assert TOOL["best_iou"](boxes, torch.zeros(0, 4)).shape == (0,)


def test_recall_table_by_size_and_iou():
    best = torch.tensor([0.6, 0.4, 0.2, 0.9])
    sides = torch.tensor([25.0, 30.0, 50.0, 200.0])
    table = TOOL["recall_table"](best, sides)
    assert table["0.5"] == {"all": 0.5, "24-32": 0.5, "32-48": None, "48-96": 0.0, ">=96": 1.0}
    assert table["0.3"]["all"] == 0.75 and table["0.3"]["24-32"] == 1.0
