"""Primary key index: lookups with duplicates and misses, against a dict reference."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pelagos.errors import SchemaMismatchError
from pelagos.segments.pk_index import PrimaryKeyIndex, in_pk_range


def reference(pks: list[object], ts: list[int]) -> dict[object, int]:
    """pk -> offset of its latest row: greatest ts, then greatest offset."""
    best: dict[object, int] = {}
    for i, (pk, t) in enumerate(zip(pks, ts, strict=True)):
        j = best.get(pk)
        if j is None or (t, i) >= (ts[j], j):
            best[pk] = i
    return best


def check(index: PrimaryKeyIndex, pks: list[object], ts: list[int], queries: list[object]) -> None:
    ref = reference(pks, ts)
    offsets, found = index.lookup(queries)
    assert offsets.dtype == np.int64 and found.dtype == bool
    assert found.tolist() == [q in ref for q in queries]
    assert offsets.tolist() == [ref.get(q, -1) for q in queries]
    assert index.contains(queries).tolist() == found.tolist()
    assert len(index) == len(ref) and index.row_count == len(pks)
    assert index.min == (min(ref) if ref else None)  # type: ignore[type-var]
    assert index.max == (max(ref) if ref else None)  # type: ignore[type-var]


@settings(max_examples=200)
@given(
    st.lists(st.tuples(st.integers(-5, 5), st.integers(0, 3)), max_size=30),
    st.lists(st.integers(-7, 7), max_size=10),
)
def test_int_pks_match_reference(rows: list[tuple[int, int]], queries: list[int]) -> None:
    pks, ts = [r[0] for r in rows], [r[1] for r in rows]
    check(PrimaryKeyIndex(pa.array(pks, pa.int64()), np.array(ts, np.uint64)), list(pks), ts, list(queries))


@settings(max_examples=200)
@given(
    st.lists(
        st.tuples(st.text(alphabet="ab\u00e9\u4e2d\U0001f600", max_size=3), st.integers(0, 3)), max_size=30
    ),
    st.lists(st.text(alphabet="ab\u00e9\u4e2d\U0001f600", max_size=3), max_size=10),
)
def test_string_pks_match_reference(rows: list[tuple[str, int]], queries: list[str]) -> None:
    pks, ts = [r[0] for r in rows], [r[1] for r in rows]
    check(PrimaryKeyIndex(pa.array(pks, pa.string()), np.array(ts, np.uint64)), list(pks), ts, list(queries))


def test_duplicates_resolve_to_the_latest_row() -> None:
    pks = pa.array([10, 20, 10, 10, 30])
    ts = np.array([5, 1, 9, 7, 1], np.uint64)
    offsets, found = PrimaryKeyIndex(pks, ts).lookup([10, 20, 99])
    assert offsets.tolist() == [2, 1, -1] and found.tolist() == [True, True, False]
    # same ts: the row written last wins; without ts: the last offset wins
    assert PrimaryKeyIndex(pa.array(["a", "a"]), np.array([3, 3], np.uint64)).lookup(["a"])[0].tolist() == [1]
    assert PrimaryKeyIndex(pa.array([1, 1, 2])).lookup([1])[0].tolist() == [1]


def test_query_input_kinds() -> None:
    idx = PrimaryKeyIndex(pa.chunked_array([pa.array([3, 1]), pa.array([2])]))
    for q in ([2, 4], np.array([2, 4], np.int32), pa.array([2, 4], pa.int32()), pa.chunked_array([[2], [4]])):
        assert idx.lookup(q)[0].tolist() == [2, -1]
    sidx = PrimaryKeyIndex(pa.array(["x", "y"], pa.large_string()))
    assert sidx.lookup(np.array(["y", "z"]))[0].tolist() == [1, -1]
    assert idx.lookup([])[0].tolist() == []


def test_empty_index_and_type_mismatch() -> None:
    empty = PrimaryKeyIndex(pa.array([], pa.int64()))
    assert empty.lookup([1, 2])[1].tolist() == [False, False]
    assert empty.min is None and empty.max is None and len(empty) == 0
    with pytest.raises(SchemaMismatchError):
        PrimaryKeyIndex(pa.array([1, 2])).lookup(["1"])
    with pytest.raises(SchemaMismatchError):
        PrimaryKeyIndex(pa.array([1.5]))
    with pytest.raises(SchemaMismatchError):
        PrimaryKeyIndex(pa.array([1, None]))
    with pytest.raises(SchemaMismatchError):
        PrimaryKeyIndex(pa.array([1, 2]), np.array([1], np.uint64))


def test_in_pk_range() -> None:
    assert in_pk_range([0, 1, 5, 9, 10], 1, 9).tolist() == [False, True, True, True, False]
    assert in_pk_range(["a", "b", "c"], "b", "bz").tolist() == [False, True, False]
    assert in_pk_range([1, 2], None, None).tolist() == [False, False]
    assert in_pk_range([], 1, 2).tolist() == []
    with pytest.raises(SchemaMismatchError):
        in_pk_range(["a"], 1, 2)
