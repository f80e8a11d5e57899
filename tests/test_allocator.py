"""glibc allocator tuning for long runs (facecraft_d2.utils.allocator)."""
import platform

from facecraft_d2.utils import allocator


def test_tune_allocator_sets_the_threshold_unless_the_user_chose_one(monkeypatch):
    calls = []
    monkeypatch.setattr(allocator, "set_mmap_threshold", lambda n: calls.append(n) or True)
    monkeypatch.delenv("MALLOC_MMAP_THRESHOLD_", raising=False)
    assert allocator.tune_allocator() is True and calls == [128 * 1024]
    monkeypatch.setenv("MALLOC_MMAP_THRESHOLD_", "65536")
    assert allocator.tune_allocator() is False and calls == [128 * 1024]


def test_glibc_calls_apply_here():
    glibc = platform.libc_ver()[0] == "glibc"
    assert allocator.set_mmap_threshold(allocator.DEFAULT_MMAP_THRESHOLD) is glibc
    trim = allocator.malloc_trimmer()
    assert (trim is not None) is glibc
    if glibc:
        assert trim() in (0, 1)
