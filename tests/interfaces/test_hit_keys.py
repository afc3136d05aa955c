"""Hit keys keep their form: int64 keys as numpy, string keys as Arrow."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pelagos.interfaces.hit_keys import (
    arrow_keys,
    concat_keys,
    empty_keys,
    key_at,
    keys_list,
    take_keys,
)


def test_int_keys_stay_numpy_through_every_operation() -> None:
    a, b = np.array([5, 3], np.int64), np.array([9], np.int64)
    joined = concat_keys([a, b])
    assert isinstance(joined, np.ndarray) and joined.tolist() == [5, 3, 9]
    taken = take_keys(joined, np.array([2, 0]))
    assert isinstance(taken, np.ndarray) and keys_list(taken) == [9, 5]
    assert key_at(joined, -1) == 9 and type(key_at(joined, 0)) is int
    assert keys_list(joined[1:3]) == [3, 9]  # slicing needs no helper
    empty = empty_keys(pa.int64())
    assert isinstance(empty, np.ndarray) and empty.dtype == np.int64 and len(empty) == 0
    assert arrow_keys(joined).equals(pa.array([5, 3, 9], pa.int64()))


def test_string_keys_stay_arrow() -> None:
    a, b = pa.array(["x", "y"]), pa.array(["z"])
    joined = concat_keys([a, b])
    assert isinstance(joined, pa.Array) and joined.to_pylist() == ["x", "y", "z"]
    assert keys_list(take_keys(joined, np.array([2, 1]))) == ["z", "y"]
    assert key_at(joined, 0) == "x" and keys_list(joined[1:]) == ["y", "z"]
    assert empty_keys(pa.string()).type == pa.string()
    assert arrow_keys(joined) is joined


def test_mixed_parts_concatenate_as_arrow() -> None:
    # never within one collection, but concatenation must not lose keys if it happened
    joined = concat_keys([np.array([1], np.int64), pa.array([2], pa.int64())])
    assert isinstance(joined, pa.Array) and joined.to_pylist() == [1, 2]
