"""release_free_memory gives freed heap pages back (glibc), in a clean interpreter of its own."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

SCENARIO = textwrap.dedent(
    """
    import ctypes
    from pelagos.observability.memory import release_free_memory

    def rss():
        return [int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmRSS")][0]

    libc = ctypes.CDLL("libc.so.6")
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    # heap blocks kept apart by small pinned ones: free() cannot give their pages back by itself
    blocks, pins = [], []
    for _ in range(800):  # 50 MB
        blocks.append(libc.malloc(64 * 1024))
        pins.append(libc.malloc(16))
    for b in blocks:
        ctypes.memset(b, 1, 64 * 1024)
    for b in blocks:
        libc.free(b)
    before = rss()
    released = release_free_memory()
    print(released, before - rss())
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="malloc_trim is glibc's")
def test_freed_heap_memory_goes_back() -> None:
    out = subprocess.run([sys.executable, "-c", SCENARIO], capture_output=True, text=True, check=True)
    released, dropped = out.stdout.split()
    assert released == "True"
    assert int(dropped) > 30e6


REUSE = textwrap.dedent(
    """
    import resource, sys
    from pelagos.observability.memory import reuse_freed_buffers

    if sys.argv[1] == "reuse":
        assert reuse_freed_buffers()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for i in range(20):  # what an insert does with each payload: copies of it alive at once, then freed
        copies = [bytes([i]) * (6 << 20) for _ in range(4)]
        del copies
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults)
    """
)


def _faults(mode: str) -> int:
    out = subprocess.run([sys.executable, "-c", REUSE, mode], capture_output=True, text=True, check=True)
    return int(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mallopt is glibc's")
def test_freed_buffers_are_reused_not_faulted_in_again() -> None:
    pages_per_buffer = (6 << 20) // 4096
    fresh, reused = _faults("default"), _faults("reuse")
    # glibc's own policy gives the freed copies back (more free at the heap's top than its trim
    # threshold, twice the largest block freed) and faults them in again on the next round
    assert fresh > 20 * 2 * pages_per_buffer
    assert reused < 6 * pages_per_buffer  # the first round's pages, then the same ones again
