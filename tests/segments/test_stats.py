"""Column statistics against plain Python, and their JSON round trip."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pelagos.errors import SegmentFormatError
from pelagos.schema.types import DataType
from pelagos.segments.stats import ColumnStats, column_stats
from tests.segments.data import all_types_schema, make_rows


def reference(values: list[Any], ordered: bool) -> ColumnStats:
    present = [v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]
    nulls = sum(v is None for v in values)
    if not ordered or not present:
        return ColumnStats(None, None, nulls, len(values))
    return ColumnStats(min(present), max(present), nulls, len(values))


def test_every_field_of_the_all_types_schema() -> None:
    schema = all_types_schema()
    table = make_rows(schema, 60, seed=11)
    for f in schema.fields:
        ordered = f.dtype.is_numeric or f.dtype in (DataType.BOOL, DataType.VARCHAR)
        got = column_stats(table.column(f.name), f.dtype, f.name)
        assert got == reference(table.column(f.name).to_pylist(), ordered), f.name
    # JSON and vectors: counts only; `$meta` is recognised by name
    assert column_stats(table.column("$meta"), name="$meta") == ColumnStats(None, None, 15, 60)
    assert column_stats(table.column("_ts")) == reference(table.column("_ts").to_pylist(), True)


def test_json_needs_the_dtype_to_be_told_from_varchar() -> None:
    col = pa.array(['{"a": 1}', '{"b": 2}'])
    assert column_stats(col, DataType.JSON).min is None
    assert column_stats(col, DataType.VARCHAR).min == '{"a": 1}'


ints = st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=40)
floats = st.lists(st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True)), max_size=40)
texts = st.lists(st.one_of(st.none(), st.text(max_size=6)), max_size=40)
bools = st.lists(st.one_of(st.none(), st.booleans()), max_size=40)


@given(ints)
def test_int64_matches_python(values: list[int | None]) -> None:
    assert column_stats(pa.array(values, pa.int64())) == reference(list(values), True)


@given(floats)
def test_float64_matches_python_ignoring_nan(values: list[float | None]) -> None:
    got = column_stats(pa.array(values, pa.float64()))
    assert got == reference(list(values), True)
    assert ColumnStats.from_json(json.loads(json.dumps(got.to_json(), allow_nan=False))) == got


@given(texts)
def test_varchar_matches_python_code_point_order(values: list[str | None]) -> None:
    got = column_stats(pa.array(values, pa.string()), DataType.VARCHAR)
    assert got == reference(list(values), True)
    assert ColumnStats.from_json(json.loads(json.dumps(got.to_json()))) == got


@given(bools)
def test_bool_matches_python(values: list[bool | None]) -> None:
    got = column_stats(pa.array(values, pa.bool_()))
    assert got == reference(list(values), True)
    back = ColumnStats.from_json(json.loads(json.dumps(got.to_json())))
    assert back == got and type(back.min) is type(got.min)


def test_float32_vectors_and_arrays_have_counts_only() -> None:
    vec = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(12, dtype=np.float32)), 4)
    assert column_stats(vec) == ColumnStats(None, None, 0, 3)
    arr = pa.array([[1, 2], None, []], pa.list_(pa.int64()))
    assert column_stats(arr) == ColumnStats(None, None, 1, 3)
    chunked = pa.chunked_array([pa.array([3, None], pa.int8()), pa.array([-4], pa.int8())])
    assert column_stats(chunked) == ColumnStats(-4, 3, 1, 3)


def test_infinities_round_trip_through_strict_json() -> None:
    s = ColumnStats(-math.inf, math.inf, 0, 2)
    text = json.dumps(s.to_json(), allow_nan=False)
    assert ColumnStats.from_json(json.loads(text)) == s
    big = ColumnStats(-(2**63), 2**64 - 1, 0, 2)
    assert ColumnStats.from_json(json.loads(json.dumps(big.to_json()))) == big


@pytest.mark.parametrize(
    "doc",
    [
        {"kind": "int", "min": "x", "max": 1, "null_count": 0, "row_count": 1},
        {"kind": "weird", "min": 1, "max": 1, "null_count": 0, "row_count": 1},
        {"kind": "int", "min": 1, "max": 1, "row_count": 1},
        {"kind": "str", "min": 1, "max": "a", "null_count": 0, "row_count": 1},
    ],
)
def test_bad_stats_json_is_refused(doc: dict[str, object]) -> None:
    with pytest.raises(SegmentFormatError):
        ColumnStats.from_json(doc)
