"""glibc's functions through ctypes, for the few calls Python has no binding for.

Invariants:
- the C library is loaded once per process, with errno kept (ctypes.get_errno
  reads the last call's);
- a function is None where it cannot be had (no glibc: musl, macOS; or an
  older glibc without it): every caller must treat None as "not available".
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from typing import Any

_libc: Any = None
if sys.platform.startswith("linux"):
    try:
        _libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        _libc = None


def libc_function(name: str, argtypes: list[Any], restype: Any) -> Any:
    """The C library's function `name` with its signature set, or None."""
    if _libc is None:
        return None
    try:
        fn = getattr(_libc, name)
    except AttributeError:
        return None
    fn.argtypes = argtypes
    fn.restype = restype
    return fn
