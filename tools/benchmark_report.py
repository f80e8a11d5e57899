# Copyright (c) facecraft_d2 contributors.
"""
The table and the speed-vs-accuracy plot of ``tools/benchmark.py``, from its JSON record
(``benchmark.json``): see :func:`format_table` and :func:`plot`.
"""
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from tabulate import tabulate  # noqa: E402

__all__ = ["format_table", "plot"]

PAPER_FAST_MS = 100.0  # the paper's fast mode: 10 FPS on one CPU core (section 6.5)
TARGET_MS = 33.0  # issue 5's target for the fast preset: >= 30 FPS


def _num(value, digits=1):
    return "-" if value is None else "{:.{}f}".format(value, digits)


def format_table(record, peers):
    """
    Args:
        record (dict): ``benchmark.json``'s content (without "table").
        peers (sequence[str]): detector names to give speed ratios against.
    Returns:
        str: markdown: the speed and accuracy table, the throughput table and notes.
    """
    dets = record["detectors"]
    peers = [p for p in peers if dets.get(p, {}).get("timing")]
    headers = (["detector", "min face", "ms median", "ms p90", "FPS"]
               + ["x vs " + dets[p]["label"] for p in peers]
               + ["FDDB TPR@1000FP", "FDDB TPR@scaledFP", "WIDER easy", "WIDER medium", "WIDER hard"])
    rows = []
    for name, det in dets.items():
        if not det.get("available"):
            rows.append([det["label"], "not available"] + ["-"] * (len(headers) - 2))
            continue
        t, acc = det.get("timing", {}), det.get("accuracy", {})
        min_face = det.get("min_face_size")
        row = [det["label"], "none" if min_face is None else "{:g}".format(min_face),
               _num(t.get("ms_median")), _num(t.get("ms_p90")), _num(t.get("fps"))]
        # speed ratio: the peer's median over this detector's (> 1: this one is faster)
        row += ["{:.2f}".format(dets[p]["timing"]["ms_median"] / t["ms_median"]) if t else "-"
                for p in peers]
        row += [_num(acc.get(k)) for k in ("fddb_tpr_1000fp", "fddb_tpr_scaled_fp", "wider_easy",
                                           "wider_medium", "wider_hard")]
        rows.append(row)
    out = [tabulate(rows, headers, tablefmt="github", disable_numparse=True)]

    runs = record.get("throughput", {}).get("runs", [])
    if runs:
        label = dets[record["throughput"]["detector"]]["label"]
        trows = [[r["mode"], r["threads"], r["batch_size"], r["images"], "{:.1f}".format(r["images_per_s"])]
                 for r in runs]
        out.append("Throughput of {} on all cores:\n\n".format(label) + tabulate(
            trows, ["mode", "threads", "batch", "images", "images/s"], tablefmt="github"))

    s, m = record["settings"], record["machine"]
    load = "load average {}{:.1f} at the end".format(
        "{:.1f} at the start, ".format(s["load_avg_at_start"][0]) if s.get("load_avg_at_start") else "",
        m["load_avg_1_5_15"][0])
    notes = ["Latency: {} VGA (640x480) photos x {} rounds after {} warm-up calls, one thread, "
             "pinned to core {} of a {}-core {} ({}).".format(
                 s["num_images"], s["repeats"], s["warmup"], s["core"], m["cpu_count"], m["cpu"], load),
             "'x vs P': P's median time over this detector's (> 1: faster than P). "
             "min face 'none': the detector has no minimum face size setting (single scale)."]
    notes += ["{} not available: {}".format(d["label"], d.get("reason", ""))
              for d in dets.values() if not d.get("available")]
    if s.get("datasets"):
        notes.append("Accuracy (percent): datasets {}, WIDER every {} image(s){}.".format(
            ", ".join(s["datasets"].values()), s["wider_step"],
            ", first {} images of each".format(s["max_eval_images"]) if s.get("max_eval_images") else ""))
    return "\n\n".join(out) + "\n\n" + "\n".join(notes) + "\n"


def plot(record, path):
    """
    Speed vs accuracy: median ms per VGA image (log x) against FDDB TPR@1000FP and WIDER
    medium AP, one point per detector scored in the run, with the paper's 10 FPS and the 30 FPS
    target marked. A run that scored no detector (``--datasets ""``) has no plot: an existing
    one at ``path`` is removed.

    Args:
        record (dict): ``benchmark.json``'s content.
        path (str): the PNG to write.
    """
    metrics = [("fddb_tpr_1000fp", "FDDB TPR @ 1000 FP (%)"), ("wider_medium", "WIDER val medium AP (%)")]
    timed = [(n, d) for n, d in record["detectors"].items() if d.get("timing")]
    if not any(d.get("accuracy", {}).get(k) is not None for _, d in timed for k, _ in metrics):
        if os.path.exists(path):  # a timing-only run: no plot, and no stale one from another run
            os.remove(path)
        return
    fig, axes = plt.subplots(1, len(metrics), figsize=(11, 4.5))
    for ax, (key, ylabel) in zip(axes, metrics):
        for i, (name, det) in enumerate(timed):
            x, y = det["timing"]["ms_median"], det.get("accuracy", {}).get(key)
            if y is None:  # not scored in this run
                continue
            facecraft = name.startswith("facecraft")
            ax.scatter([x], [y], s=90 if facecraft else 50, marker="*" if facecraft else "o",
                       color="C3" if facecraft else "C0", zorder=3)
            # labels alternately above and below the points, so that neighbours stay readable
            ax.annotate(det["label"], (x, y), textcoords="offset points", fontsize=8,
                        xytext=(4, 6 if i % 2 == 0 else -12))
        ax.axvline(PAPER_FAST_MS, color="gray", ls="--", lw=1, label="paper fast mode (10 FPS)")
        ax.axvline(TARGET_MS, color="C2", ls=":", lw=1, label="target (30 FPS)")
        ax.set_xscale("log")
        ticks = [t for t in (10, 20, 33, 50, 100, 200, 500, 1000, 2000)
                 if min(TARGET_MS, *(d["timing"]["ms_median"] for _, d in timed)) / 1.5 <= t
                 <= 1.5 * max(PAPER_FAST_MS, *(d["timing"]["ms_median"] for _, d in timed))]
        ax.set_xticks(ticks)
        ax.set_xticklabels([str(t) for t in ticks])
        ax.minorticks_off()
        ax.set_xlabel("median ms per 640x480 image, one CPU core")
        ax.set_ylabel(ylabel)
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
    axes[0].legend(loc="lower right", fontsize=8)
    fig.suptitle("Speed vs accuracy, {} ({} cores)".format(record["machine"]["cpu"],
                                                         record["machine"]["cpu_count"]))
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    # re-render the table and the plot of a benchmark.json: benchmark_report.py results/benchmark/benchmark.json
    import json
    import os
    import sys

    path = sys.argv[1]
    with open(path) as f:
        rec = json.load(f)
    folder = os.path.dirname(os.path.abspath(path))
    with open(os.path.join(folder, "benchmark.md"), "w") as f:
        f.write(rec["table"])
    plot(rec, os.path.join(folder, "benchmark.png"))
