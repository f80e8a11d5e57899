# Copyright (c) facecraft_d2 contributors.
"""
Shared pieces of the annotation-parser fuzz tests (``test_fuzz_*.py``): hypothesis settings
profiles, byte-level mutation strategies and the outcome check.

Profiles (``FUZZ`` is the one in use):

* ``ci`` (when ``CI`` is set): derandomized, a fixed number of examples per test, no example
  database, so that CI runs the same inputs every time and stays fast (whole suite < 60 s on
  2 cores);
* ``dev`` (default): random inputs, same budget;
* ``thorough`` (``HYPOTHESIS_PROFILE=thorough``): 20x the examples, for local bug hunts.
"""
import os

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from facecraft_d2.data.datasets.common import AnnotationFormatError

_COMMON = dict(
    deadline=None,  # file I/O timing varies on shared CI machines
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)
settings.register_profile("ci", max_examples=40, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=40, **_COMMON)
settings.register_profile("thorough", max_examples=800, **_COMMON)
FUZZ = settings.get_profile(
    os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)
"""Decorate each fuzz test with ``@FUZZ`` (a ``hypothesis.settings`` object)."""


@st.composite
def mutated(draw, data: bytes):
    """
    ``data`` changed the ways files get damaged: truncated, bytes overwritten, inserted or
    deleted, a line dropped or repeated, or a random chunk spliced in.
    """
    data = bytes(data)
    kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete", "lines", "splice"]))
    n = len(data)
    if kind == "truncate" or n == 0:
        return data[: draw(st.integers(0, max(n - 1, 0)))]
    if kind == "flip":
        out = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            out[draw(st.integers(0, n - 1))] = draw(st.integers(0, 255))
        return bytes(out)
    if kind == "insert":
        at = draw(st.integers(0, n))
        return data[:at] + draw(st.binary(min_size=1, max_size=8)) + data[at:]
    if kind == "delete":
        at = draw(st.integers(0, n - 1))
        return data[:at] + data[at + draw(st.integers(1, 16)) :]
    if kind == "lines":
        lines = data.split(b"\n")
        k = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            del lines[k]
        else:
            lines.insert(k, lines[k])
        return b"\n".join(lines)
    at = draw(st.integers(0, n))
    chunk = draw(st.sampled_from([b"nan", b"inf", b"-1", b"1e400", b"\x00", b"\xff\xfe", b"\r\n",
                                  b"  ", b"0", b"99999999999999999999", b"\xe2\x80\xa8"]))
    return data[:at] + chunk + data[at:]


def load_outcome(load, path):
    """
    Call ``load()``: return its result, or None if it raised the project's
    :class:`AnnotationFormatError` for ``path`` with a record named. Any other exception
    propagates and fails the test.
    """
    try:
        return load()
    except AnnotationFormatError as e:
        assert e.path == str(path), (e.path, path)
        assert str(path) in str(e) and e.record and e.reason, str(e)
        return None


def write(path, data):
    """Write bytes (or text, as UTF-8) to ``path``; return the path as a string."""
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))
    return str(path)
