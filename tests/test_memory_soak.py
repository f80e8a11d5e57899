# Copyright (c) facecraft_d2 contributors.
"""Quick mode of tools/memory_soak.py: the shipped cascade over repeated real images keeps RSS flat."""
import json
import os

import torch

from facecraft_d2.utils.testing import load_tool

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _memory_soak():
    return load_tool("memory_soak")


def test_quick_soak_prints_figures_and_passes(datasets_root, tmp_path, capsys):
    threads = torch.get_num_threads()
    out = tmp_path / "soak.json"
    try:
        status = _memory_soak().main(["--images", "30", "--distinct", "10", "--every", "10",
                                      "--max-image-side", "320", "--json", str(out)])
    finally:
        torch.set_num_threads(threads)
    printed = capsys.readouterr().out
    res = json.loads(out.read_text())
    assert status == 0 and res["verdict"] == "PASS", printed
    assert res["images"] == 30 and res["warmup"] == 10 and res["distinct_files"] == 10
    assert [n for n, _ in res["samples"]] == [10, 20, 30]
    assert res["growth_mb"] <= res["max_growth_mb"] and res["images_per_s"] > 0 and res["faces"] > 0
    for line in ("rss after warm-up (10 images)", "rss at the end", "images/s", "verdict: PASS"):
        assert line in printed, printed


def test_rss_trend_and_spread():
    soak = _memory_soak()
    assert soak.slope_per_1000([(0, 100.0), (500, 105.0), (1000, 110.0)]) == 10.0
    assert soak.spread(list(range(10)), 5) == [0, 2, 4, 6, 8] and soak.spread([1, 2], 0) == [1, 2]
    assert soak.rss_mb() > 0
