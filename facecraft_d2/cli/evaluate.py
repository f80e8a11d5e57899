# Copyright (c) facecraft_d2 contributors.
"""
Evaluate a face detector on a benchmark with its official protocol, and write the plots and
official-format files.

Datasets are read from $DETECTRON2_DATASETS (see datasets/README.md). NAME is a registered
dataset (e.g. fddb_fold_01, widerface_val, afw_test) or a benchmark key: 'fddb' (FDDB folds
1-5 as one evaluation, as in MODEL_ZOO.md), 'wider' (widerface_val), 'heldout'.

Writes into --out/<dataset>/: for FDDB the ROC plot (fddb_roc.png), DiscROC.txt / ContROC.txt
and the official detection file fddb_dets.txt; for WIDER FACE the easy / medium / hard PR plot
(widerface_pr.png) and the per-image prediction files of the official format; for AFW-protocol
sets the PR plot; plus --out/results.json with every number and the timing.

Examples:
  facecraft eval --dataset fddb --model cascade_joint --out output/eval
  facecraft eval --dataset widerface_val --max-images 100
"""
import json
import os
import re

from ..predictor import POSITIVE_INT
from .common import add_model_options, add_verbose_option, checked, formatter

__all__ = ["add_parser", "run"]


def add_parser(subparsers):
    p = subparsers.add_parser("eval", help="score a model on FDDB / WIDER FACE / AFW, write plots",
                              description=__doc__, formatter_class=formatter)
    p.add_argument("--dataset", required=True, action="append", metavar="NAME",
                   help="registered dataset or benchmark key (fddb, wider, heldout); repeatable")
    add_model_options(p, detection=False)
    p.add_argument("--preset", choices=["accurate", "fast"], default=None,
                   help="as 'facecraft detect --preset': cascades' fast mode "
                        "(configs/cascade/joint_fast.yaml settings) or accurate crops; R-CNN: "
                        "3/4 test scale and 100 proposals (default: the model's config)")
    p.add_argument("--out", default="output/eval", metavar="DIR", help="output folder")
    p.add_argument("--max-images", type=checked(POSITIVE_INT), default=None,
                   help="evaluate only the first N images of each dataset (quick check)")
    p.add_argument("--opts", nargs="+", default=[], metavar="KEY VALUE", help="config overrides")
    add_verbose_option(p)
    p.set_defaults(func=run)
    return p


def _dataset_names(keys, max_images):
    from detectron2.data import DatasetCatalog

    from ..data.catalog import register_subset
    from ..evaluation.run import BENCHMARKS, benchmark_datasets

    names = []
    for key in keys:
        if key in BENCHMARKS:
            names.append(benchmark_datasets([key], max_images=max_images)[key])
        elif key in DatasetCatalog.list():
            names.append(register_subset(key, max_images) if max_images else key)
        else:
            raise ValueError(_unknown_dataset(key, BENCHMARKS))
    return names


def _unknown_dataset(key, benchmarks):
    """The error for an unknown ``--dataset``: the closest benchmark keys and face datasets."""
    import difflib

    from detectron2.data import DatasetCatalog, MetadataCatalog

    known = set(MetadataCatalog.list())
    faces = [n for n in DatasetCatalog.list()
             if n in known and MetadataCatalog.get(n).get("thing_classes", None) == ["face"]]

    def plain(name):  # "fddb_fold_01" -> "fddb_fold_1", so that "fddb_fold_1" matches it first
        return re.sub(r"\d+", lambda m: str(int(m.group())), name.lower())

    by_plain = {plain(n): n for n in list(benchmarks) + sorted(faces)}
    close = [by_plain[n] for n in difflib.get_close_matches(plain(key), by_plain, n=3, cutoff=0.6)]
    if close:
        return f"unknown dataset {key!r}; did you mean {' or '.join(close)}?"
    return (f"unknown dataset {key!r}: use a benchmark key ({', '.join(benchmarks)}) or a "
            "registered face dataset (datasets/README.md lists them)")


def plot_wider_pr(path, curves, title):
    """
    Save the WIDER FACE precision-recall curves (easy / medium / hard) as a PNG.

    Args:
        curves (dict): setting -> {"precision" (T,), "recall" (T,), "ap"}, as kept in
            ``WiderFaceEvaluator.curves``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 5))
    for setting, c in curves.items():
        ax.plot(c["recall"], c["precision"], label=f"{setting} (AP {100 * c['ap']:.1f})")
    ax.set(xlabel="Recall", ylabel="Precision", xlim=(0, 1), ylim=(0, 1.01), title=title)
    ax.grid(True)
    ax.legend(loc="lower left")
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)


def run(args):
    from ..evaluation import build_face_evaluator
    from ..evaluation import WiderFaceEvaluator
    from ..evaluation.run import evaluate_model
    from ..predictor import FaceDetector

    names = _dataset_names(args.dataset, args.max_images)
    detector = FaceDetector(args.model, config_file=args.config_file, weights=args.weights,
                            preset=args.preset, device=args.device, opts=args.opts,
                            score_threshold=0.0)
    cfg = detector.cfg.clone()
    cfg.defrost()
    cfg.DATALOADER.NUM_WORKERS = 0
    cfg.freeze()
    evaluators = {}

    def build_evaluator(cfg, name, folder):
        evaluators[name] = build_face_evaluator(cfg, name, folder)
        return evaluators[name]

    results = evaluate_model(detector.model, cfg, names, output_dir=args.out,
                             build_evaluator=build_evaluator)
    for name, evaluator in evaluators.items():
        curves = getattr(evaluator, "curves", None)  # WIDER FACE keeps its PR curves
        if isinstance(evaluator, WiderFaceEvaluator) and curves:
            os.makedirs(os.path.join(args.out, name), exist_ok=True)
            plot_wider_pr(os.path.join(args.out, name, "widerface_pr.png"), curves,
                          f"{name} ({detector.name})")
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"model": detector.name, "results": results}, f, indent=2, default=float)
    for name, res in results.items():
        metrics = {k: v for k, v in res.items() if k != "timing"}
        print(f"{name}: {json.dumps(metrics, default=float)}")
        folder = os.path.join(args.out, name)
        if os.path.isdir(folder):
            print(f"  files: {folder}/ ({', '.join(sorted(os.listdir(folder)))})")
    print(f"results: {os.path.join(args.out, 'results.json')}")
    return 0
