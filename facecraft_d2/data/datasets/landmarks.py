# Copyright (c) facecraft_d2 contributors.
"""
Facial landmarks to square face boxes (FaceCraft, section 6.1).

FaceCraft annotates faces with 21 landmarks (the AFLW scheme) and turns them into *square*
boxes with the nose at the centre, so that frontal and profile faces are boxed consistently.
The paper does not publish its transform; :func:`landmarks_to_square_box` is facecraft_d2's
documented rule, used by both the AFLW and the 3R-style loaders:

1. **Centre** (in this order of preference):

   a. the nose tip ``NoseCenter``;
   b. the mean of the available nostrils ``NoseLeft`` / ``NoseRight``;
   c. if both eyes and mouth are known: ``eyes + NOSE_POSITION * (mouth - eyes)``
      (the nose tip sits about 0.55 of the way from the eyes to the mouth);
   d. the mean of all available landmarks.

2. **Side** = the largest of these face-size estimates (each one can only be *shrunk* by
   foreshortening: yaw shrinks the inter-ocular distance, pitch the eye-mouth distance, so the
   largest is the least foreshortened):

   * ``SIDE_PER_INTEROCULAR * |right eye - left eye|`` (needs both eyes);
   * ``SIDE_PER_EYE_MOUTH * |mouth - eyes|`` (needs an eye and the mouth);
   * ``2 * EXTENT_MARGIN * max_i max(|x_i - cx|, |y_i - cy|)`` over all landmarks: the box
     contains every annotated landmark with a 10 % margin (ears, chin, brows).

   where an eye is its ``*EyeCenter`` point, else the mean of its two corners; "eyes" is the
   mean of the available eyes; "mouth" is the mean of the available mouth points.

The constants were set on a mean frontal face (inter-ocular distance 1, eye-mouth distance
1.1, chin 1.15 below the nose tip) so that the three estimates agree there (2.50, 2.42 and
2.53 inter-ocular distances): a frontal face box is about 2.5 inter-ocular distances wide,
from above the brows to below the chin. The box is returned unclipped (it stays square);
Detectron2 clips boxes to the image when it builds ``Instances``.
"""

import math
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

__all__ = [
    "AFLW_LANDMARK_NAMES",
    "SIDE_PER_INTEROCULAR",
    "SIDE_PER_EYE_MOUTH",
    "EXTENT_MARGIN",
    "NOSE_POSITION",
    "normalize_landmarks",
    "landmarks_to_square_box",
]

AFLW_LANDMARK_NAMES = (
    "LeftBrowLeftCorner",
    "LeftBrowCenter",
    "LeftBrowRightCorner",
    "RightBrowLeftCorner",
    "RightBrowCenter",
    "RightBrowRightCorner",
    "LeftEyeLeftCorner",
    "LeftEyeCenter",
    "LeftEyeRightCorner",
    "RightEyeLeftCorner",
    "RightEyeCenter",
    "RightEyeRightCorner",
    "LeftEar",
    "NoseLeft",
    "NoseCenter",
    "NoseRight",
    "RightEar",
    "MouthLeftCorner",
    "MouthCenter",
    "MouthRightCorner",
    "ChinCenter",
)
"""The 21 AFLW landmark names (``FeatureCoordTypes.descr``), in ``feature_id`` order 1..21.
"Left"/"Right" are as seen in the image."""

SIDE_PER_INTEROCULAR = 2.5
"""Box side per inter-ocular (eye centre to eye centre) distance."""
SIDE_PER_EYE_MOUTH = 2.2
"""Box side per distance from the eyes' centre to the mouth's centre."""
EXTENT_MARGIN = 1.1
"""The box half-side is at least this times the farthest landmark's (Chebyshev) offset from
the centre."""
NOSE_POSITION = 0.55
"""Fallback nose-tip position along the eyes-to-mouth segment (0 = eyes, 1 = mouth)."""

_NAME_LOOKUP = {n.lower(): n for n in AFLW_LANDMARK_NAMES}

Point = Tuple[float, float]


def _canonical_name(key) -> str:
    if isinstance(key, bool):
        raise ValueError("invalid landmark key {!r}".format(key))
    if isinstance(key, int):
        if 1 <= key <= len(AFLW_LANDMARK_NAMES):
            return AFLW_LANDMARK_NAMES[key - 1]
        raise ValueError("AFLW landmark id {} is out of range 1..21".format(key))
    name = _NAME_LOOKUP.get(str(key).lower())
    if name is None:
        raise ValueError(
            "unknown landmark name {!r}; expected one of the AFLW 21-point names ({}) or an "
            "id 1..21".format(key, ", ".join(AFLW_LANDMARK_NAMES))
        )
    return name


def normalize_landmarks(
    points: Union[Mapping, Sequence], names: Optional[Sequence] = None
) -> Dict[str, Point]:
    """
    Turn landmarks into ``{AFLW name: (x, y)}``, dropping missing points.

    Args:
        points: either a mapping ``{name_or_id: (x, y)}``, or a sequence of ``(x, y)`` (e.g. an
            (N, 2) array) together with ``names``. Keys are AFLW names (case-insensitive) or
            1-based AFLW feature ids. A point that is ``None`` or has a NaN coordinate is missing.
        names: the names/ids of ``points`` when it is a sequence.

    Returns:
        dict mapping canonical AFLW names to float (x, y).

    Raises:
        ValueError: on an unknown name/id, a duplicate, or a malformed point.
    """
    if isinstance(points, Mapping):
        if names is not None:
            raise ValueError("`names` must not be given when `points` is a mapping")
        items = list(points.items())
    else:
        if names is None:
            raise ValueError("`names` is required when `points` is a sequence")
        points = list(points)
        names = list(names)
        if len(points) != len(names):
            raise ValueError("{} points but {} names".format(len(points), len(names)))
        items = list(zip(names, points))
    out = {}
    for key, point in items:
        name = _canonical_name(key)
        if name in out:
            raise ValueError("landmark {!r} is given twice".format(name))
        if point is None:
            continue
        try:
            x, y = (float(v) for v in point)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(
                "landmark {!r} must be an (x, y) pair, got {!r}".format(name, point)
            ) from None
        if math.isnan(x) or math.isnan(y):
            continue
        if math.isinf(x) or math.isinf(y):
            raise ValueError("landmark {!r} has an infinite coordinate".format(name))
        out[name] = (x, y)
    return out


def _mean(points: List[Point]) -> Optional[Point]:
    if not points:
        return None
    return (sum(p[0] for p in points) / len(points), sum(p[1] for p in points) / len(points))


def _pick(lm: Dict[str, Point], *names) -> List[Point]:
    return [lm[n] for n in names if n in lm]


def _eye(lm: Dict[str, Point], side: str) -> Optional[Point]:
    centre = lm.get(side + "EyeCenter")
    if centre is not None:
        return centre
    return _mean(_pick(lm, side + "EyeLeftCorner", side + "EyeRightCorner"))


def landmarks_to_square_box(
    points: Union[Mapping, Sequence], names: Optional[Sequence] = None
) -> Optional[List[float]]:
    """
    facecraft_d2's landmarks-to-square-box transform (see the module docstring for the rule).

    Args:
        points, names: landmarks, as accepted by :func:`normalize_landmarks` (AFLW names or
            1-based ids; any subset of the 21 points).

    Returns:
        [x1, y1, x2, y2] (XYXY_ABS) of a square box centred on the nose, or None when the
        landmarks do not determine a size (fewer than two distinct points).

    Raises:
        ValueError: on unknown names, malformed points, or coordinates so large that the box
            is not finite.
    """
    lm = normalize_landmarks(points, names)
    if not lm:
        return None
    left, right = _eye(lm, "Left"), _eye(lm, "Right")
    eyes = _mean([p for p in (left, right) if p is not None])
    mouth = _mean(_pick(lm, "MouthLeftCorner", "MouthCenter", "MouthRightCorner"))

    # 1. centre
    if "NoseCenter" in lm:
        cx, cy = lm["NoseCenter"]
    elif "NoseLeft" in lm or "NoseRight" in lm:
        cx, cy = _mean(_pick(lm, "NoseLeft", "NoseRight"))
    elif left is not None and right is not None and mouth is not None:
        cx = eyes[0] + NOSE_POSITION * (mouth[0] - eyes[0])
        cy = eyes[1] + NOSE_POSITION * (mouth[1] - eyes[1])
    else:
        cx, cy = _mean(list(lm.values()))

    # 2. side: the largest of the available face-size estimates
    estimates = [2.0 * EXTENT_MARGIN * max(max(abs(x - cx), abs(y - cy)) for x, y in lm.values())]
    if left is not None and right is not None:
        estimates.append(SIDE_PER_INTEROCULAR * math.hypot(right[0] - left[0], right[1] - left[1]))
    if eyes is not None and mouth is not None:
        estimates.append(SIDE_PER_EYE_MOUTH * math.hypot(mouth[0] - eyes[0], mouth[1] - eyes[1]))
    side = max(estimates)
    if not side > 0:
        return None
    half = side / 2.0
    box = [cx - half, cy - half, cx + half, cy + half]
    if not all(math.isfinite(v) for v in box):
        raise ValueError("landmark coordinates are too large: the face box is not finite")
    return box
