#!/usr/bin/env python
# Copyright (c) facecraft_d2 contributors.
"""
Ship a trained model inside facecraft_d2: copy the weights of a training run (model state
only, no optimizer) to ``facecraft_d2/model_zoo/weights/<name>.pth`` and record its config,
SHA-256, training data, iterations and wall time in ``facecraft_d2/model_zoo/models.json``.

    python tools/publish_model.py --name cascade_joint --config cascade/joint.yaml \
        --run output/cascade/joint [--earlier-runs output/cascade/separate_x12 ...] \
        [--earlier-from cascade_separate]
"""
import argparse
import datetime
import json
import os
import re

import torch
import yaml

ZOO = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "facecraft_d2", "model_zoo")


def _session_seconds(text):
    """Training time of one session of a log: its "Total training time", or for a session
    that was killed, the time from its first to its last log line."""
    total = re.findall(r"Total training time: (\d+):(\d+):(\d+)", text)
    if total:
        h, m, s = map(int, total[-1])
        return h * 3600 + m * 60 + s
    stamps = [datetime.datetime.strptime(t, "%m/%d %H:%M:%S")
              for t in re.findall(r"\[(\d\d/\d\d \d\d:\d\d:\d\d)\]", text)]
    return int((stamps[-1] - stamps[0]).total_seconds()) if len(stamps) > 1 else 0


def run_info(run_dir):
    """
    Iterations, samples and wall time of a detectron2 training run, read from its log.txt and
    config.yaml. A run interrupted and resumed (--resume) has one "Total training time" per
    session: they are summed; iterations lost to an interruption (after the last checkpoint)
    are counted in the wall time but not in the iterations.
    """
    with open(os.path.join(run_dir, "log.txt"), encoding="utf-8") as f:
        log = f.read()
    if not re.findall(r"Overall training speed: (\d+) iterations", log):
        raise SystemExit(f"{run_dir}/log.txt has no finished training")
    sessions = log.split("Starting training from iteration")[1:]
    seconds = sum(_session_seconds(part) for part in sessions)
    with open(os.path.join(run_dir, "config.yaml"), encoding="utf-8") as f:
        cfg = yaml.safe_load(f)
    iterations = int(cfg["SOLVER"]["MAX_ITER"])
    info = {"run": run_dir, "iterations": iterations, "wall_time_s": seconds,
            "sessions": len(sessions)}
    batch = cfg.get("MODEL", {}).get("FACECRAFT", {}).get("SAMPLER", {}).get("BATCH_SIZE")
    if cfg["MODEL"]["META_ARCHITECTURE"] == "FaceCraftCascade" and batch:
        info["samples_seen"] = iterations * int(batch)
    elif cfg["MODEL"]["META_ARCHITECTURE"] != "FaceCraftCascade":
        info["images_seen"] = iterations * int(cfg["SOLVER"]["IMS_PER_BATCH"])
    return info


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", required=True)
    p.add_argument("--config", required=True, help="config path relative to configs/")
    p.add_argument("--run", required=True, help="training output dir with model_final.pth")
    p.add_argument("--earlier-runs", nargs="*", default=[], help="runs this one was initialised from")
    p.add_argument("--earlier-from", default=None, metavar="NAME",
                   help="a shipped model (models.json) this run was initialised from: its recorded "
                   "training runs come first (for runs whose logs are not on this machine)")
    p.add_argument("--data", default="widerface_train minus its 10% validation split (VAL_FRACTION)")
    args = p.parse_args()

    ckpt = torch.load(os.path.join(args.run, "model_final.pth"), map_location="cpu", weights_only=True)
    os.makedirs(os.path.join(ZOO, "weights"), exist_ok=True)
    weights = f"{args.name}.pth"
    dest = os.path.join(ZOO, "weights", weights)
    torch.save({"model": ckpt["model"]}, dest)
    from facecraft_d2.model_zoo.model_zoo import sha256_file

    registry_path = os.path.join(ZOO, "models.json")
    with open(registry_path) as f:
        registry = json.load(f)
    inherited = []
    if args.earlier_from:
        if args.earlier_from not in registry:
            raise SystemExit(f"--earlier-from {args.earlier_from!r} is not in {registry_path}")
        inherited = registry[args.earlier_from]["training_runs"]
    runs = inherited + [run_info(r) for r in args.earlier_runs] + [run_info(args.run)]
    entry = registry.get(args.name, {})
    entry.update({
        "config": args.config,
        "weights": weights,
        "sha256": sha256_file(dest),
        "size_bytes": os.path.getsize(dest),
        "training_data": args.data,
        "training_runs": runs,
        "total_iterations": sum(r["iterations"] for r in runs),
        "total_wall_time_s": sum(r["wall_time_s"] for r in runs),
    })
    registry[args.name] = entry
    with open(registry_path, "w") as f:
        json.dump(registry, f, indent=2, sort_keys=True)
        f.write("\n")
    print(json.dumps(entry, indent=2))


if __name__ == "__main__":
    main()
