"""Delete logs and the delete rule, checked against a per-row reference evaluator."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pelagos.errors import SchemaMismatchError, SegmentFormatError
from pelagos.segments.columns import write_columns
from pelagos.segments.deltas import DeleteLog, alive_mask, visible_mask


def reference_alive(
    row_pks: list[object], row_ts: list[int], del_pks: list[object], del_ts: list[int], as_of: int | None
) -> list[bool]:
    """The rule, one row at a time: dead iff some delete of its pk has row_ts < delete_ts (<= as_of)."""
    out = []
    for pk, ts in zip(row_pks, row_ts, strict=True):
        dead = any(
            dpk == pk and dts > ts and (as_of is None or dts <= as_of)
            for dpk, dts in zip(del_pks, del_ts, strict=True)
        )
        out.append(not dead)
    return out


# few distinct pks and timestamps, so collisions (same pk, same ts) are common
small_ts = st.integers(0, 6)
int_pk = st.integers(-3, 3)
str_pk = st.sampled_from(["", "a", "é", "b", "ab"])


@st.composite
def cases(
    draw: st.DrawFn, pk: st.SearchStrategy[object]
) -> tuple[list[object], list[int], list[object], list[int], int | None]:
    rows = draw(st.lists(st.tuples(pk, small_ts), max_size=25))
    dels = draw(st.lists(st.tuples(pk, small_ts), max_size=25))
    as_of = draw(st.one_of(st.none(), small_ts))
    return [r[0] for r in rows], [r[1] for r in rows], [d[0] for d in dels], [d[1] for d in dels], as_of


def _check(case: tuple[list[object], list[int], list[object], list[int], int | None], t: pa.DataType) -> None:
    rp, rt, dp, dt, as_of = case
    got = alive_mask(
        pa.array(rp, t), np.array(rt, np.uint64), pa.array(dp, t), np.array(dt, np.uint64), as_of
    )
    assert got.dtype == bool
    assert got.tolist() == reference_alive(rp, rt, dp, dt, as_of)


@settings(max_examples=300)
@given(cases(int_pk))
def test_alive_mask_matches_reference_int_pks(
    case: tuple[list[object], list[int], list[object], list[int], int | None],
) -> None:
    _check(case, pa.int64())


@settings(max_examples=300)
@given(cases(str_pk))
def test_alive_mask_matches_reference_string_pks(
    case: tuple[list[object], list[int], list[object], list[int], int | None],
) -> None:
    _check(case, pa.string())


def test_upsert_at_the_same_ts_keeps_the_new_row_and_kills_the_old() -> None:
    # pk 5 inserted at ts 10, upserted at ts 20 (delete@20 + insert@20)
    rows = pa.array([5, 5, 6])
    row_ts = np.array([10, 20, 10], np.uint64)
    got = alive_mask(rows, row_ts, pa.array([5]), np.array([20], np.uint64))
    assert got.tolist() == [False, True, True]
    # before the upsert is visible, the old row is still alive
    assert (
        alive_mask(rows, row_ts, pa.array([5]), np.array([20], np.uint64), as_of_ts=19).tolist() == [True] * 3
    )


def test_delete_before_insert_does_not_kill_the_later_row() -> None:
    got = alive_mask(
        pa.array(["k"]), np.array([30], np.uint64), pa.array(["k", "k"]), np.array([5, 30], np.uint64)
    )
    assert got.tolist() == [True]


def test_many_deletes_of_one_pk_only_the_latest_matters() -> None:
    n = 1000
    dp = pa.array(np.full(n, 7, np.int64))
    dt = np.arange(n, dtype=np.uint64)
    rows = pa.array([7, 7, 7, 8])
    got = alive_mask(rows, np.array([0, 998, 999, 0], np.uint64), dp, dt)
    assert got.tolist() == [False, False, True, True]
    latest = DeleteLog(dp, dt).latest_per_pk()
    assert latest.pks.to_pylist() == [7] and latest.ts.tolist() == [n - 1]


def test_chunked_rows_and_empty_inputs() -> None:
    rows = pa.chunked_array([pa.array([1, 2]), pa.array([3])])
    ts = np.array([1, 1, 1], np.uint64)
    assert alive_mask(rows, ts, pa.array([], pa.int64()), np.empty(0, np.uint64)).tolist() == [True] * 3
    assert alive_mask(rows, ts, pa.array([3]), np.array([2], np.uint64)).tolist() == [True, True, False]
    assert (
        alive_mask(pa.array([], pa.int64()), np.empty(0, np.uint64), pa.array([1]), np.array([2])).tolist()
        == []
    )


def test_mismatched_inputs_are_refused() -> None:
    with pytest.raises(SchemaMismatchError):
        alive_mask(pa.array([1]), np.array([1], np.uint64), pa.array(["1"]), np.array([2], np.uint64))
    with pytest.raises(SchemaMismatchError):
        alive_mask(pa.array([1, 2]), np.array([1], np.uint64), pa.array([1]), np.array([2], np.uint64))
    with pytest.raises(SchemaMismatchError):
        DeleteLog.of([1, 2], [1])
    with pytest.raises(SchemaMismatchError):
        DeleteLog.of(pa.array([1, None]), [1, 2])


def test_visible_mask() -> None:
    assert visible_mask(np.array([1, 5, 6], np.uint64), 5).tolist() == [True, True, False]


@pytest.mark.parametrize("pks", [[3, -1, 2**62], ["x", "é", ""]])
def test_delete_log_round_trips_through_bytes(pks: list[object]) -> None:
    log = DeleteLog.of(pa.array(pks), [2**63 + 1, 0, 7])
    back = DeleteLog.from_bytes(log.to_bytes())
    assert back.pks.equals(log.pks) and back.ts.dtype == np.uint64 and back.ts.tolist() == log.ts.tolist()
    empty = DeleteLog.empty(log.pks.type)
    back_empty = DeleteLog.from_bytes(empty.to_bytes())
    assert len(back_empty) == 0 and back_empty.pks.type == log.pks.type


def test_delete_log_concat_and_bad_bytes() -> None:
    merged = DeleteLog.concat([DeleteLog.of([1], [5]), DeleteLog.of([2, 1], [6, 7])])
    assert merged.pks.to_pylist() == [1, 2, 1] and merged.ts.tolist() == [5, 6, 7]
    with pytest.raises(SchemaMismatchError):
        DeleteLog.concat([DeleteLog.of([1], [5]), DeleteLog.of(["a"], [6])])
    with pytest.raises(SegmentFormatError, match="not a delete log"):
        DeleteLog.from_bytes(write_columns(pa.table({"x": [1]})))
    with pytest.raises(SegmentFormatError):
        DeleteLog.from_bytes(b"garbage")
