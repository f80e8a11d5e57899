#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
The Fast R-CNN branch's final training loss (loss_cls + loss_box_reg, FaceCraft section 6.6)
of detectron2 training runs, read from their ``metrics.json``.

    python tools/frcnn_final_loss.py output/rcnn/two_step_joint output/rcnn/four_step_frcnn_shared

Prints, per run, the last logged value (the median over the last 20 iterations, as
detectron2 logs it) and the mean of the logged values over the last 200 iterations.
"""
import json
import os
import sys


def final_loss(run_dir, window=200):
    """Returns (last iteration, last loss_cls + loss_box_reg, mean over the last ``window`` its)."""
    with open(os.path.join(run_dir, "metrics.json")) as f:
        records = [r for r in map(json.loads, f) if "loss_cls" in r and "loss_box_reg" in r]
    if not records:
        raise SystemExit(f"{run_dir}: no Fast R-CNN losses in metrics.json")
    last = records[-1]
    tail = [r for r in records if r["iteration"] > last["iteration"] - window]
    value = lambda r: r["loss_cls"] + r["loss_box_reg"]  # noqa: E731
    return last["iteration"], value(last), sum(map(value, tail)) / len(tail)


if __name__ == "__main__":
    for run in sys.argv[1:]:
        it, last, mean = final_loss(run)
        print(f"{run}: iteration {it}: loss_cls + loss_box_reg = {last:.4f} "
              f"(mean of the last 200 iterations {mean:.4f})")
