# Copyright (c) facecraft_d2 contributors.
"""
Property-based fuzzing of the WIDER FACE ``.mat`` ground truth (``wider_face_val.mat`` and
``wider_{easy,medium,hard}_val.mat``, read by the WIDER FACE evaluator): a damaged or odd file
gives AnnotationFormatError naming the file and the event/image, never a bare error, and a
face index is never silently wrapped around.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.io import savemat

from facecraft_d2.data.datasets.common import AnnotationFormatError
from facecraft_d2.evaluation.widerface_evaluation import SETTINGS, load_wider_ground_truth

from fuzz_support import FUZZ, mutated, write

load = load_wider_ground_truth.__wrapped__  # without the cache: each example is a new file

box = st.lists(st.integers(0, 900), min_size=4, max_size=4)
image = st.lists(box, max_size=4).flatmap(  # (faces, the 1-based indices of each setting)
    lambda faces: st.tuples(
        st.just(faces),
        st.tuples(*[st.sets(st.integers(1, len(faces))) if faces else st.just(set())] * 3),
    )
)
events = st.lists(st.lists(image, min_size=1, max_size=3), min_size=1, max_size=3)


def _cell(items):
    cell = np.empty((len(items), 1), dtype=object)
    for i, item in enumerate(items):
        cell[i, 0] = item
    return cell


def write_wider_mat(gt_dir, events, index_offset=0):
    common = {
        "event_list": _cell(["{}--Event".format(e) for e in range(len(events))]),
        "file_list": _cell([_cell(["{}_img_{}".format(e, j) for j in range(len(imgs))]) for e, imgs in enumerate(events)]),
        "face_bbx_list": _cell([_cell([np.array(f, np.int32).reshape(-1, 4) for f, _ in imgs]) for imgs in events]),
    }
    savemat(str(gt_dir / "wider_face_val.mat"), common)
    for k, setting in enumerate(SETTINGS):
        lists = _cell([_cell([np.array(sorted(i[k]), np.int64).reshape(-1, 1) + index_offset for _, i in imgs])
                       for imgs in events])
        savemat(str(gt_dir / "wider_{}_val.mat".format(setting)), dict(common, gt_list=lists))


def _outcome(gt_dir):
    try:
        return load(str(gt_dir))
    except AnnotationFormatError as e:
        assert e.path.startswith(str(gt_dir)) and e.record and e.reason, str(e)
        return None


@pytest.fixture(scope="module")
def gt_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("wider_mat")


@FUZZ
@given(events=events)
def test_valid_ground_truth_loads_completely(gt_dir, events):
    write_wider_mat(gt_dir, events)
    gt = _outcome(gt_dir)
    assert len(gt) == sum(len(imgs) for imgs in events)
    for e, imgs in enumerate(events):
        for j, (faces, lists) in enumerate(imgs):
            boxes, keep = gt["{}--Event/{}_img_{}".format(e, e, j)]
            assert boxes.tolist() == faces
            for k, s in enumerate(SETTINGS):
                assert set(np.flatnonzero(keep[s]) + 1) == lists[k]


@FUZZ
@given(events=events.filter(lambda ev: any(lists[0] for imgs in ev for _, lists in imgs)),
       offset=st.sampled_from([-1, 1, 1000]))
def test_out_of_range_face_indices_are_an_error(gt_dir, events, offset):
    write_wider_mat(gt_dir, events, index_offset=offset)
    shifted = [i + offset for imgs in events for faces, lists in imgs for i in lists[0]
               if not 1 <= i + offset <= len(faces)]
    if shifted:  # an index outside 1..G must not wrap around silently
        assert _outcome(gt_dir) is None


@FUZZ
@given(events=events, which=st.sampled_from(["face", "easy", "hard"]), data=st.data())
def test_damaged_ground_truth_loads_or_raises(gt_dir, events, which, data):
    write_wider_mat(gt_dir, events)
    path = gt_dir / ("wider_face_val.mat" if which == "face" else "wider_{}_val.mat".format(which))
    write(path, data.draw(mutated(path.read_bytes())))
    gt = _outcome(gt_dir)
    if gt is not None:
        for boxes, keep in gt.values():
            assert np.isfinite(boxes).all() and all(len(m) == len(boxes) for m in keep.values())


@FUZZ
@given(data=st.binary(max_size=300))
def test_arbitrary_bytes(gt_dir, data):
    write_wider_mat(gt_dir, [[([[1, 2, 3, 4]], ({1}, {1}, {1}))]])
    write(gt_dir / "wider_face_val.mat", data)
    assert _outcome(gt_dir) is None
