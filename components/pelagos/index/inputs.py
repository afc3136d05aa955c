"""Checking and converting the arrays callers hand to an index.

Invariants:
- Float vectors come out as C-contiguous float32 (n, dim); binary vectors as
  C-contiguous uint8 (n, dim / 8). A 1-D input is one vector.
- A wrong shape, dtype or dimension is an InvalidArgumentError that says what
  was expected; nothing is silently truncated or padded.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from pelagos.errors import InvalidArgumentError
from pelagos.index.spec import IndexSpec

_F32 = np.dtype(np.float32)


def as_vectors(x: npt.NDArray[Any], spec: IndexSpec, what: str) -> npt.NDArray[Any]:
    """`x` as the matrix the index stores: float32 (n, dim) or packed uint8 (n, dim / 8)."""
    if (  # already in shape (every search passes here twice): only the values need a look
        type(x) is np.ndarray
        and x.dtype == _F32
        and x.ndim == 2
        and not spec.is_binary
        and x.shape[1] == spec.dim
        and x.flags.c_contiguous
    ):
        if not np.isfinite(x).all():
            raise InvalidArgumentError(f"{what} contain NaN or infinite values")
        return x
    arr = np.asarray(x)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    width = spec.dim // 8 if spec.is_binary else spec.dim
    if arr.ndim != 2 or arr.shape[1] != width:
        unit = f"{width} bytes (dim {spec.dim} bits)" if spec.is_binary else f"{width} floats"
        raise InvalidArgumentError(f"{what} must be rows of {unit}, got shape {arr.shape}")
    if spec.is_binary:
        if arr.dtype != np.uint8:
            raise InvalidArgumentError(f"{what} of a binary index must be packed uint8, got {arr.dtype}")
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.number) or np.issubdtype(arr.dtype, np.complexfloating):
        raise InvalidArgumentError(f"{what} must be real numbers, got {arr.dtype}")
    out = np.ascontiguousarray(arr, dtype=np.float32)
    if not np.isfinite(out).all():
        raise InvalidArgumentError(f"{what} contain NaN or infinite values")
    return out


def check_k(k: int) -> int:
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise InvalidArgumentError(f"k (limit) must be a positive integer, got {k!r}")
    return int(k)
