"""glibc's functions through ctypes: had once, None when missing."""

from __future__ import annotations

import ctypes
import os
import sys

import pytest

from pelagos.observability.libc import libc_function


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc on Linux")
def test_a_function_comes_with_its_signature() -> None:
    getpid = libc_function("getpid", [], ctypes.c_int)
    assert getpid is not None and getpid() == os.getpid()


def test_a_missing_function_is_none() -> None:
    assert libc_function("no_such_function_in_any_libc", [], ctypes.c_int) is None
