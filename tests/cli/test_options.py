# Copyright (c) facecraft_d2 contributors.
"""``facecraft`` options: refused at parse time in one line, helpful errors, honest ``--help``."""
import argparse
import re

import pytest

from facecraft_d2.cli import build_parser, main

from .conftest import run_facecraft

BAD_OPTIONS = [
    (["detect", "x.jpg", "--threshold", "2"], "--threshold", "a number in [0, 1], got 2"),
    (["detect", "x.jpg", "--threshold", "-1"], "--threshold", "a number in [0, 1], got -1"),
    (["detect", "x.jpg", "--threshold", "high"], "--threshold", "got high"),
    (["detect", "x.jpg", "--min-face", "0"], "--min-face", "a number > 0, got 0"),
    (["detect", "x.jpg", "--min-face", "-5"], "--min-face", "a number > 0, got -5"),
    (["detect", "x.jpg", "--batch-size", "0"], "--batch-size", "an integer >= 1, got 0"),
    (["detect", "x.jpg", "--batch-size", "2.5"], "--batch-size", "an integer >= 1, got 2.5"),
    (["detect", "x.jpg", "--max-pixels", "0"], "--max-pixels", "an integer >= 1, got 0"),
    (["detect", "x.jpg", "--max-frames", "0"], "--max-frames", "an integer >= 1, got 0"),
    (["eval", "--dataset", "fddb", "--max-images", "0"], "--max-images", "an integer >= 1, got 0"),
    (["export", "--opset", "0"], "--opset", "an integer >= 1, got 0"),
]


@pytest.mark.parametrize("argv,flag,reason", BAD_OPTIONS, ids=[" ".join(a[2:]) for a, _, _ in BAD_OPTIONS])
def test_bad_values_are_refused_at_parse_time(argv, flag, reason, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err  # one line, no usage block
    assert err.startswith(f"facecraft {argv[0]}: error: argument {flag}: must be ") and reason in err


def test_good_values_parse():
    args = build_parser().parse_args(["detect", "x.jpg", "--threshold", "0", "--min-face", "0.5",
                                      "--max-pixels", "4e6", "--batch-size", "1"])
    assert (args.threshold, args.min_face, args.max_pixels, args.batch_size) == (0.0, 0.5, 4000000, 1)


def test_bad_value_is_one_line_from_the_console_script(small_photo):
    res = run_facecraft("detect", small_photo, "--threshold", "2")
    assert res.returncode == 2 and res.stderr.count("\n") == 1, res.stderr
    assert "argument --threshold: must be a number in [0, 1], got 2" in res.stderr


def test_unknown_dataset_suggests_the_closest_face_datasets(capsys):
    assert main(["eval", "--dataset", "fddb_fold_1"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "unknown dataset 'fddb_fold_1'; did you mean fddb_fold_01 " in err  # closest first
    assert "coco" not in err and "..." not in err  # not the whole catalog
    assert main(["eval", "--dataset", "widerface_vall"]) == 1
    assert "did you mean widerface_val" in capsys.readouterr().err
    assert main(["eval", "--dataset", "zzzz"]) == 1
    assert "benchmark key (fddb, wider, heldout)" in capsys.readouterr().err


def test_onnxruntime_model_folder_that_does_not_exist(small_photo, tmp_path, capsys):
    missing = str(tmp_path / "exported" / "nothing")
    assert main(["detect", str(small_photo), "--backend", "onnxruntime", "--model", missing]) == 1
    err = capsys.readouterr().err
    assert f"ONNX export folder '{missing}' does not exist" in err and "shipped" not in err
    assert main(["detect", str(small_photo), "--backend", "onnxruntime", "--model", str(tmp_path)]) == 1
    assert "is not an ONNX export folder: it has no facecraft_onnx.json" in capsys.readouterr().err


def _subparsers():
    return build_parser()._subparsers._group_actions[0].choices


def test_eval_help_offers_no_backend(capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--help"])
    text = capsys.readouterr().out
    assert "onnxruntime" not in text and "--backend" not in text
    assert "--backend" not in {f for a in _subparsers()["eval"]._actions for f in a.option_strings}


@pytest.mark.parametrize("command", ["detect", "eval", "export"])
def test_help_states_each_default_once(command):
    sub = _subparsers()[command]
    formatter = sub._get_formatter()
    for action in sub._actions:
        if action.help in (None, argparse.SUPPRESS):
            continue
        text = formatter._expand_help(action)
        assert text.count("default") <= 1, text
        assert "(default: None)" not in text and "(default: False)" not in text, text
    rendered = " ".join(sub.format_help().split())
    assert not re.search(r"\(default: [^)]*\) \(default", rendered)
