# Copyright (c) facecraft_d2 contributors.
"""The per-face best IoU (facecraft_d2.layers.best_iou) and tools/stage_recall.py's recall by face size."""
import os
import runpy

import torch

from facecraft_d2.layers import best_iou

TOOL = runpy.run_path(os.path.join(os.path.dirname(__file__), "..", "..", "tools", "stage_recall.py"))


def test_best_iou_per_face_and_empty_inputs():
    faces = torch.tensor([[0.0, 0, 10, 10], [20, 20, 60, 60]])
    boxes = torch.tensor([[0.0, 0, 10, 5], [20, 20, 60, 60], [100, 100, 110, 110]])
    assert torch.allclose(best_iou(faces, boxes), torch.tensor([0.5, 1.0]))
    assert torch.equal(best_iou(faces, torch.zeros(0, 4)), torch.zeros(2))
    assert best_iou(torch.zeros(0, 4), boxes).shape == (0,)


def test_recall_table_by_size_and_iou():
    best = torch.tensor([0.6, 0.4, 0.2, 0.9])
    sides = torch.tensor([25.0, 30.0, 50.0, 200.0])
    table = TOOL["recall_table"](best, sides)
    assert table["0.5"] == {"all": 0.5, "24-32": 0.5, "32-48": None, "48-96": 0.0, ">=96": 1.0}
    assert table["0.3"]["all"] == 0.75 and table["0.3"]["24-32"] == 1.0
