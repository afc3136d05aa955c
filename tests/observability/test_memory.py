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
