# Copyright (c) facecraft_d2 contributors.
"""``facecraft detect`` as a subprocess: images, a folder with bad files, videos, outputs."""
import csv
import json
import shutil

import pytest

from facecraft_d2.cli import build_parser, main
from facecraft_d2.utils.testing import write_bad_image, write_video

from .conftest import run_facecraft

BAD = ["truncated_jpeg", "not_an_image", "empty", "huge_png"]
ODD = ["one_pixel", "grayscale_png", "rgba_png", "palette_png", "gray16_png", "cmyk_jpeg",
       "exif_rotated_jpeg"]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory, small_photo):
    """One run over a folder: a photo, odd and bad images, a text file, two short videos."""
    root = tmp_path_factory.mktemp("folder")
    src, out = root / "in", root / "out"
    (src / "sub").mkdir(parents=True)
    shutil.copy(small_photo, src / "sub" / "hopper.jpg")
    for case in ODD + BAD:
        write_bad_image(case, str(src))
    (src / "readme.txt").write_text("not an image, skipped by suffix\n")
    write_video(str(src / "sub" / "clip.avi"), num_frames=4)
    write_video(str(src / "sub" / "broken.avi"), num_frames=8, damage="truncate")
    write_video(str(src / "sub" / "zeroed.avi"), num_frames=8, damage="zero_middle")
    res = run_facecraft("detect", src, "--out", out, "--json", "--csv", "--fddb")
    return src, out, res


def test_folder_run_continues_past_bad_files(folder_run):
    src, out, res = folder_run
    assert res.returncode == 3, res.stderr  # some inputs failed, the rest was processed
    assert "Traceback" not in res.stderr
    data = json.loads((out / "detections.json").read_text())
    failed = {f["file"]: f["error"] for f in data["failures"]}
    bad_names = {"truncated.jpg": "truncated", "notes.jpg": "not an image",
                 "empty.png": "empty file", "huge_30000x20000.png": "too large"}
    assert {p.rsplit("/", 1)[-1] for p in failed} == set(bad_names)
    for path, error in failed.items():
        assert bad_names[path.rsplit("/", 1)[-1]] in error
        assert path in res.stderr  # the summary lists failures by name
    assert data["skipped"] == [str(src / "readme.txt")]
    assert len(data["images"]) == len(ODD) + 1
    summary = data["summary"]
    assert summary["files"] == len(ODD) + len(BAD) + 4 and summary["failures"] == 4
    assert summary["images"] == len(ODD) + 1 and summary["video_frames"] >= 5
    assert summary["faces"] == (sum(len(i["faces"]) for i in data["images"])
                                + sum(len(f["faces"]) for v in data["videos"] for f in v["frames"]))
    assert "images/s" in res.stderr and "4 failed" in res.stderr


def test_json_schema(folder_run):
    src, out, _ = folder_run
    data = json.loads((out / "detections.json").read_text())
    assert set(data) == {"model", "backend", "score_threshold", "min_face", "images", "videos",
                         "failures", "skipped", "summary"}
    assert data["model"] == "cascade_joint" and data["backend"] == "torch"
    for image in data["images"]:
        assert set(image) == {"file", "height", "width", "faces", "notes"}
        for face in image["faces"]:
            assert set(face) == {"box", "score", "stage"}
            x1, y1, x2, y2 = face["box"]
            assert 0 <= x1 < x2 <= image["width"] and 0 <= y1 < y2 <= image["height"]
            assert data["score_threshold"] <= face["score"] <= 1 and face["stage"] == "x48"
    rotated = next(i for i in data["images"] if i["file"].endswith("exif_rotated.jpg"))
    assert (rotated["width"], rotated["height"]) == (96, 128)  # displayed orientation
    photo = next(i for i in data["images"] if i["file"].endswith("hopper.jpg"))
    assert len(photo["faces"]) >= 1


def test_videos(folder_run):
    src, out, res = folder_run
    data = json.loads((out / "detections.json").read_text())
    videos = {v["file"].rsplit("/", 1)[-1]: v for v in data["videos"]}
    assert videos["clip.avi"]["status"] == "ok" and len(videos["clip.avi"]["frames"]) == 4
    broken = videos["broken.avi"]
    assert broken["status"].startswith("ended early") and 0 < len(broken["frames"]) < 8
    assert "broken.avi: ended early" in res.stderr
    assert [f["frame"] for f in videos["clip.avi"]["frames"]] == [0, 1, 2, 3]
    # corrupt partway: the frames that decode are kept, and the summary says it is damaged
    zeroed = videos["zeroed.avi"]
    assert 0 < len(zeroed["frames"]) < 8 and zeroed["status"].startswith("ended early")
    assert "zeroed.avi: ended early" in res.stderr
    assert (out / "sub" / "clip.avi").stat().st_size > 0  # annotated video


def test_annotated_images_csv_fddb(folder_run):
    src, out, _ = folder_run
    assert (out / "sub" / "hopper.jpg").is_file() and (out / "cmyk.jpg").is_file()
    assert not (out / "truncated.jpg").exists()
    rows = list(csv.DictReader((out / "detections.csv").open()))
    assert rows and set(rows[0]) == {"file", "frame", "x1", "y1", "x2", "y2", "score", "stage"}
    data = json.loads((out / "detections.json").read_text())
    assert len(rows) == data["summary"]["faces"]
    lines = (out / "detections_fddb.txt").read_text().splitlines()
    i = lines.index("sub/hopper")  # names relative to the folder, without suffix
    count = int(lines[i + 1])
    assert count >= 1 and len(lines[i + 2].split()) == 5  # left top width height score


def test_single_image_json_on_stdout(small_photo, capsys):
    """(In-process; tests/cli/test_export.py runs the same path as a subprocess.)"""
    code = main(["detect", str(small_photo), "--json", "--threshold", "0.5", "--min-face", "30",
                 "--preset", "fast"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["score_threshold"] == 0.5 and data["min_face"] == 30
    assert len(data["images"]) == 1 and data["images"][0]["faces"]
    assert all(f["score"] >= 0.5 for f in data["images"][0]["faces"])
    assert "1 file(s)" in err


def test_errors_are_one_line_without_traceback(small_photo):
    res = run_facecraft("detect", small_photo, "--model", "no-such-model")
    assert res.returncode == 1
    assert res.stderr.strip().count("\n") == 0, res.stderr
    assert res.stderr.startswith("facecraft detect: error: ") and "no-such-model" in res.stderr
    assert "Traceback" not in res.stderr


def test_verbose_shows_the_traceback(tmp_path, capsys):
    assert main(["detect", str(tmp_path / "missing.jpg"), "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" in err and "missing.jpg: no such file" in err


@pytest.mark.parametrize("command", [[], ["detect"], ["eval"], ["export"]])
def test_help_is_complete(command, capsys):
    with pytest.raises(SystemExit) as e:
        main(command + ["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    parser = build_parser()
    if command:
        sub = parser._subparsers._group_actions[0].choices[command[0]]
        for action in sub._actions:
            for flag in action.option_strings:
                assert flag in text
            if action.help not in (None, "==SUPPRESS=="):
                assert action.help.split()[0] in text
    else:
        for name in ("detect", "eval", "export"):
            assert name in text


def test_unavailable_webcam_is_a_listed_failure(capsys):
    """No camera here: index 9 cannot be opened; the run reports it by name and exits 3."""
    assert main(["detect", "9", "--max-frames", "2", "--json"]) == 3
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert data["failures"][0]["file"] == "9" and "cannot open the webcam" in data["failures"][0]["error"]
    assert "9: cannot open the webcam" in err


def test_missing_path_is_listed_and_the_rest_runs(small_photo, tmp_path, capsys):
    missing = str(tmp_path / "nope.jpg")
    assert main(["detect", missing, str(small_photo), "--json"]) == 3
    out, err = capsys.readouterr()
    data = json.loads(out)
    assert [f["file"] for f in data["failures"]] == [missing] and len(data["images"]) == 1
    assert f"{missing}: no such file or folder" in err



def test_per_file_lines_follow_the_input_order(small_photo, tmp_path, capsys):
    """Failed and missing files are reported in their place, not before the batch they sit in."""
    bad = write_bad_image("not_an_image", str(tmp_path))
    good = [str(tmp_path / f"{n}.jpg") for n in ("a", "c", "e")]
    for path in good:
        shutil.copy(small_photo, path)
    missing = str(tmp_path / "d_missing.jpg")
    inputs = [good[0], bad, good[1], missing, good[2]]
    assert main(["detect", *inputs, "--batch-size", "4", "--threshold", "0.5"]) == 3
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[1 if line.startswith("FAILED ") else 0].rstrip(":") for line in lines] == inputs
    assert [line.startswith("FAILED") for line in lines] == [False, True, False, True, False]
