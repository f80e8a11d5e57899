# Copyright (c) facecraft_d2 contributors.
"""The landmarks-to-square-box transform on hand-made landmark sets."""

import math

import numpy as np
import pytest

from facecraft_d2.data.datasets.landmarks import (
    AFLW_LANDMARK_NAMES,
    EXTENT_MARGIN,
    NOSE_POSITION,
    SIDE_PER_EYE_MOUTH,
    SIDE_PER_INTEROCULAR,
    landmarks_to_square_box,
    normalize_landmarks,
)

# A mean frontal face, inter-ocular distance 1, eyes at y = 0 ("left" = image left).
FRONTAL = {
    "LeftBrowLeftCorner": (-0.85, -0.35),
    "LeftBrowCenter": (-0.5, -0.45),
    "LeftBrowRightCorner": (-0.15, -0.35),
    "RightBrowLeftCorner": (0.15, -0.35),
    "RightBrowCenter": (0.5, -0.45),
    "RightBrowRightCorner": (0.85, -0.35),
    "LeftEyeLeftCorner": (-0.75, 0.0),
    "LeftEyeCenter": (-0.5, 0.0),
    "LeftEyeRightCorner": (-0.25, 0.0),
    "RightEyeLeftCorner": (0.25, 0.0),
    "RightEyeCenter": (0.5, 0.0),
    "RightEyeRightCorner": (0.75, 0.0),
    "LeftEar": (-1.05, 0.45),
    "NoseLeft": (-0.2, 0.65),
    "NoseCenter": (0.0, 0.6),
    "NoseRight": (0.2, 0.65),
    "RightEar": (1.05, 0.45),
    "MouthLeftCorner": (-0.38, 1.1),
    "MouthCenter": (0.0, 1.1),
    "MouthRightCorner": (0.38, 1.1),
    "ChinCenter": (0.0, 1.75),
}

# A right-looking profile: one eye, one brow, the nose, a mouth corner, the chin and an ear.
PROFILE = {
    "RightBrowCenter": (0.55, -0.45),
    "RightEyeCenter": (0.45, 0.0),
    "RightEyeLeftCorner": (0.55, 0.0),
    "NoseCenter": (0.95, 0.6),
    "NoseRight": (0.75, 0.7),
    "MouthRightCorner": (0.6, 1.1),
    "ChinCenter": (0.55, 1.75),
    "LeftEar": (-0.6, 0.4),
}


def transform(points, scale=100.0, offset=(300.0, 200.0)):
    """Place a unit face in the image: scale it and move it."""
    return {k: (offset[0] + scale * x, offset[1] + scale * y) for k, (x, y) in points.items()}


def centre_and_side(box):
    x1, y1, x2, y2 = box
    return ((x1 + x2) / 2, (y1 + y2) / 2), x2 - x1


def contains(box, points, margin=0.0):
    x1, y1, x2, y2 = box
    return all(
        x1 + margin <= x <= x2 - margin and y1 + margin <= y <= y2 - margin
        for x, y in points.values()
    )


def test_names_cover_aflw():
    assert len(AFLW_LANDMARK_NAMES) == 21 and set(FRONTAL) == set(AFLW_LANDMARK_NAMES)


def test_frontal_face():
    pts = transform(FRONTAL)
    box = landmarks_to_square_box(pts)
    (cx, cy), side = centre_and_side(box)
    assert box[2] - box[0] == pytest.approx(box[3] - box[1])  # square
    assert (cx, cy) == pytest.approx(pts["NoseCenter"])  # nose at the centre
    # the three size estimates agree on a mean frontal face: about 2.5 inter-ocular distances
    assert side == pytest.approx(2 * EXTENT_MARGIN * 115.0)
    assert SIDE_PER_INTEROCULAR * 100 == pytest.approx(side, rel=0.05)
    assert SIDE_PER_EYE_MOUTH * 110 == pytest.approx(side, rel=0.05)
    assert contains(box, pts, margin=5.0)


def test_profile_face_with_few_landmarks():
    pts = transform(PROFILE)
    box = landmarks_to_square_box(pts)
    (cx, cy), side = centre_and_side(box)
    assert (cx, cy) == pytest.approx(pts["NoseCenter"])
    assert contains(box, pts)
    # about the size of the frontal box of the same face, not collapsed by the missing eye
    frontal_side = centre_and_side(landmarks_to_square_box(transform(FRONTAL)))[1]
    assert 0.8 * frontal_side <= side <= 1.6 * frontal_side


def test_yaw_foreshortening_does_not_shrink_the_box():
    # squeeze the face horizontally (strong yaw): the eye-mouth distance keeps the size
    squeezed = {k: (0.3 * x, y) for k, (x, y) in FRONTAL.items() if "Ear" not in k}
    side = centre_and_side(landmarks_to_square_box(transform(squeezed)))[1]
    assert side >= SIDE_PER_EYE_MOUTH * 110 - 1e-6


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("points", [FRONTAL, PROFILE], ids=["frontal", "profile"])
def test_translation_and_scale_equivariance(seed, points):
    rng = np.random.RandomState(seed)
    scale, dx, dy = rng.uniform(0.1, 10), rng.uniform(-500, 500), rng.uniform(-500, 500)
    base = landmarks_to_square_box(transform(points, 100.0, (0.0, 0.0)))
    moved = landmarks_to_square_box(transform(points, 100.0 * scale, (dx, dy)))
    expected = [
        scale * base[0] + dx,
        scale * base[1] + dy,
        scale * base[2] + dx,
        scale * base[3] + dy,
    ]
    assert moved == pytest.approx(expected, rel=1e-9, abs=1e-6)


def test_missing_nose_fallbacks():
    pts = transform(FRONTAL)
    # 1. no nose tip: the mean of the nostrils
    no_tip = {k: v for k, v in pts.items() if k != "NoseCenter"}
    (cx, cy), _ = centre_and_side(landmarks_to_square_box(no_tip))
    assert (cx, cy) == pytest.approx((300.0, 265.0))
    # 2. no nose at all: 0.55 of the way from the eyes (y=200) to the mouth (y=310)
    no_nose = {k: v for k, v in no_tip.items() if not k.startswith("Nose")}
    (cx, cy), side = centre_and_side(landmarks_to_square_box(no_nose))
    assert (cx, cy) == pytest.approx((300.0, 200.0 + NOSE_POSITION * 110.0))
    assert contains(landmarks_to_square_box(no_nose), no_nose)
    # 3. no nose, no mouth: the mean of the landmarks
    few = {k: pts[k] for k in ("LeftEyeCenter", "RightEyeCenter", "ChinCenter")}
    (cx, cy), side = centre_and_side(landmarks_to_square_box(few))
    assert (cx, cy) == pytest.approx((300.0, (200.0 + 200.0 + 375.0) / 3))
    assert side >= SIDE_PER_INTEROCULAR * 100 - 1e-6


def test_eye_from_corners():
    pts = transform(FRONTAL)
    without_centres = {k: v for k, v in pts.items() if k not in ("LeftEyeCenter", "RightEyeCenter")}
    assert landmarks_to_square_box(without_centres) == pytest.approx(landmarks_to_square_box(pts))


def test_input_forms_agree():
    pts = transform(FRONTAL)
    expected = landmarks_to_square_box(pts)
    names = list(pts)
    array = np.array([pts[n] for n in names])
    ids = [AFLW_LANDMARK_NAMES.index(n) + 1 for n in names]
    assert landmarks_to_square_box(array, names) == pytest.approx(expected)
    assert landmarks_to_square_box(array, ids) == pytest.approx(expected)
    assert landmarks_to_square_box({n.lower(): p for n, p in pts.items()}) == pytest.approx(
        expected
    )


def test_missing_points_are_skipped():
    pts = transform(FRONTAL)
    with_gaps = dict(pts, LeftEar=None, RightEar=(math.nan, math.nan))
    without = {k: v for k, v in pts.items() if "Ear" not in k}
    assert landmarks_to_square_box(with_gaps) == pytest.approx(landmarks_to_square_box(without))
    assert set(normalize_landmarks(with_gaps)) == set(without)


def test_degenerate_inputs():
    assert landmarks_to_square_box({}) is None
    assert landmarks_to_square_box({"NoseCenter": (5, 5)}) is None
    assert landmarks_to_square_box({"NoseCenter": (5, 5), "ChinCenter": (5, 5)}) is None
    box = landmarks_to_square_box({"NoseCenter": (5, 5), "ChinCenter": (5, 15)})
    assert box == pytest.approx([-6, -6, 16, 16])


@pytest.mark.parametrize(
    "points, names",
    [
        ({"Nose": (1, 2)}, None),
        ({22: (1, 2)}, None),
        ({"NoseCenter": (1,)}, None),
        ([(1, 2)], None),
        ([(1, 2)], ["NoseCenter", "ChinCenter"]),
        ([(1, 2), (3, 4)], ["NoseCenter", 15]),
    ],
)
def test_invalid_inputs(points, names):
    with pytest.raises(ValueError):
        landmarks_to_square_box(points, names)
