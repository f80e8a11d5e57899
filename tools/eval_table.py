#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Score FaceCraft cascades and peer face detectors side by side, on the same images and with this
project's benchmark evaluators, and print one markdown table.

Benchmarks: FDDB folds 1-5 (one evaluation over the union of the images present; TPR at 1000
false positives and at the scaled FP = 1000 * n / 2845, n = images evaluated) and WIDER FACE val
(easy / medium / hard AP over the images present).

Detectors (positional, any number):

* ``NAME=CONFIG.yaml[:WEIGHTS.pth]``: a facecraft_d2 model; WEIGHTS defaults to
  ``<OUTPUT_DIR>/model_final.pth`` of the config, ``random`` keeps the random initialisation;
* ``PEER`` or ``NAME=PEER``: a peer from facecraft_d2.peers (``mtcnn``).

Example::

    DETECTRON2_DATASETS=/path/to/datasets .venv/bin/python tools/eval_table.py \\
        separate=configs/cascade/separate_x48.yaml:output/cascade/separate_x48/model_final.pth \\
        joint=configs/cascade/joint.yaml:output/cascade/joint/model_final.pth mtcnn \\
        --output output/eval_table --threads 1

Writes ``results.md`` (the table), ``results.json`` (every number, timings, settings),
``log.txt`` and each evaluator's files under ``<output>/<detector>/<dataset>/``.
"""
import argparse
import json
import logging
import math
import os
import platform
import sys
from collections import OrderedDict

import torch

from detectron2.utils.logger import setup_logger

from facecraft_d2.evaluation.run import (
    BENCHMARKS,
    benchmark_datasets,
    build_detector,
    evaluate_model,
    parse_detector,
)
from facecraft_d2.peers import PEER_DETECTOR_REGISTRY

logger = logging.getLogger("facecraft_d2.eval_table")

COLUMNS = [
    "detector",
    "FDDB TPR@scaledFP",
    "FDDB TPR@1000FP",
    "WIDER easy",
    "WIDER medium",
    "WIDER hard",
    "images (FDDB / WIDER)",
    "seconds (FDDB / WIDER)",
    "FDDB FP/image, TPR @ default threshold",
]


def get_parser():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("detectors", nargs="+", metavar="DETECTOR",
                        help="NAME=CONFIG.yaml[:WEIGHTS.pth|:random], PEER or NAME=PEER; peers: "
                        + ", ".join(sorted(k for k, _ in PEER_DETECTOR_REGISTRY)))
    parser.add_argument("--wider-step", type=int, default=1,
                        help="evaluate every k-th WIDER val image (all events, fewer images)")
    parser.add_argument("--datasets", default="fddb,wider",
                        help="comma-separated benchmarks among: " + ", ".join(BENCHMARKS))
    parser.add_argument("--max-images", type=int, default=None,
                        help="evaluate only the first N images of each benchmark (quick runs)")
    parser.add_argument("--output", default="output/eval_table", help="output folder")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads(N)")
    parser.add_argument("--device", default="cpu",
                        help="where every detector runs (cascades' MODEL.DEVICE, peers' device)")
    parser.add_argument("--num-workers", type=int, default=1,
                        help="image-loading processes (DATALOADER.NUM_WORKERS), all detectors")
    parser.add_argument("--opts", nargs=argparse.REMAINDER, default=[],
                        help="KEY VALUE pairs applied to every cascade config, "
                        "e.g. MODEL.FACECRAFT.TEST.MIN_FACE_SIZE 24 (must come last)")
    return parser


def _fmt(value, digits=1):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return "{:.{}f}".format(value, digits)


def _pair(values, digits):
    return " / ".join(_fmt(v, digits) for v in values)


def table_row(name, results, datasets):
    """
    One markdown row of :data:`COLUMNS`.

    Args:
        name (str): detector name.
        results (dict): dataset_name -> results, as returned by ``evaluate_model``.
        datasets (dict): benchmark key -> dataset name, as :func:`benchmark_datasets`.
    """
    fddb = results.get(datasets.get("fddb"), {})
    wider = results.get(datasets.get("wider"), {})
    f, w = fddb.get("fddb", {}), wider.get("widerface", {})
    cells = [
        name,
        _fmt(f.get("TPR@scaledFP")),
        _fmt(f.get("TPR@1000FP")),
        _fmt(w.get("easy")),
        _fmt(w.get("medium")),
        _fmt(w.get("hard")),
        _pair([r.get("timing", {}).get("num_images") for r in (fddb, wider)], 0),
        _pair([r.get("timing", {}).get("seconds") for r in (fddb, wider)], 1),
        "{}, {} (@{})".format(_fmt(f.get("FP_per_image@threshold"), 2), _fmt(f.get("TPR@threshold")),
                              _fmt(f.get("threshold"), 2)) if "threshold" in f else "-",
    ]
    if "heldout" in datasets:
        a = results.get(datasets["heldout"], {}).get("afw", {})
        cells.insert(6, _pair([a.get("AP30"), a.get("AP50")], 1))
    return "| " + " | ".join(cells) + " |"


def format_table(all_results, datasets):
    """
    Args:
        all_results (dict): detector name -> ``evaluate_model`` results.
        datasets (dict): benchmark key -> dataset name.
    Returns:
        str: the markdown table and a line on the FDDB scaled FP.
    """
    columns = list(COLUMNS)
    if "heldout" in datasets:
        columns.insert(6, "held-out AP30 / AP50")
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += [table_row(name, res, datasets) for name, res in all_results.items()]
    notes = []
    for res in all_results.values():
        f = res.get(datasets.get("fddb"), {}).get("fddb")
        if f:
            notes.append("FDDB: {:.0f} images of folds 1-5 present, {:.0f} faces; scaled FP = "
                         "1000 x {:.0f} / 2845 = {:.1f}.".format(f["num_images"], f["num_faces"],
                                                                f["num_images"], f["scaled_FP"]))
            break
    notes.append("TPR and AP in percent; seconds: wall time of each evaluation (loading, "
                 "inference, scoring).")
    return "\n".join(lines) + "\n\n" + "\n".join(notes) + "\n"


def _jsonable(obj):
    """NaN -> None (strict JSON), recursively."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    return obj


def setup_logging(output):
    """Log facecraft_d2's and detectron2's progress to the console and ``<output>/log.txt``."""
    os.makedirs(output, exist_ok=True)
    setup_logger(os.path.join(output, "log.txt"), name="facecraft_d2")
    setup_logger(os.path.join(output, "log.txt"), name="detectron2", abbrev_name="d2")


def main(args):
    """Run the table; returns (markdown table, results dict as written to results.json)."""
    os.makedirs(args.output, exist_ok=True)
    if args.threads:
        torch.set_num_threads(args.threads)
    keys = [k.strip() for k in args.datasets.split(",") if k.strip()]
    detectors = [parse_detector(s) for s in args.detectors]  # fail before any evaluation
    names = [d["name"] for d in detectors]
    if len(set(names)) != len(names):
        raise ValueError(f"detector names repeat: {names}")
    datasets = benchmark_datasets(keys, args.max_images, args.wider_step)

    all_results = OrderedDict()
    for det in detectors:
        logger.info("Evaluating %s on %s", det["name"], list(datasets.values()))
        model, cfg = build_detector(det, args.opts, args.num_workers, args.device)
        all_results[det["name"]] = evaluate_model(
            model, cfg, list(datasets.values()), os.path.join(args.output, det["name"])
        )
        del model

    table = format_table(all_results, datasets)
    record = {
        "table": table,
        "datasets": dict(datasets),
        "detectors": {d["name"]: {"spec": d, "results": all_results[d["name"]]} for d in detectors},
        "settings": {
            "max_images": args.max_images,
            "threads": torch.get_num_threads(),
            "num_workers": args.num_workers,
            "device": args.device,
            "opts": list(args.opts),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "cpu_count": os.cpu_count(),
        },
    }
    with open(os.path.join(args.output, "results.md"), "w") as f:
        f.write(table)
    with open(os.path.join(args.output, "results.json"), "w") as f:
        json.dump(_jsonable(record), f, indent=2, allow_nan=False)
    print(table)
    return table, record


if __name__ == "__main__":
    _args = get_parser().parse_args(sys.argv[1:])
    setup_logging(_args.output)
    main(_args)
