"""Per-column statistics of a sealed segment, for pruning segments by filter.

`ColumnStats(min, max, null_count, row_count)` maps one-to-one onto
`pelagos.expr.stats.FieldStats(min, max, null_count, row_count)`: same names,
same meaning, so `FieldStats(s.min, s.max, s.null_count, s.row_count)`.

Invariants:
- computed with pyarrow.compute over whole columns, never per row;
- `min`/`max` are Python values (bool, int, float, str) of the non-null,
  non-NaN values, or None when there are none or the type has no order that
  pruning could use: vectors, JSON (including `$meta`), arrays, binary;
- strings compare by code point (Arrow compares UTF-8 bytes, which is the
  same order as Python `str`);
- floats: NaN is ignored; `to_json` stores +/-inf as strings tagged by
  `kind`, so the JSON is strict (no `Infinity` token) and round-trips exactly;
- `null_count + (non-null values) == row_count`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pelagos.errors import SegmentFormatError
from pelagos.schema.types import DYNAMIC_FIELD_NAME, DataType

StatValue = bool | int | float | str


@dataclass(frozen=True, slots=True)
class ColumnStats:
    min: StatValue | None
    max: StatValue | None
    null_count: int
    row_count: int

    def to_json(self) -> dict[str, Any]:
        kind = _kind(self.min if self.min is not None else self.max)
        return {
            "kind": kind,
            "min": _encode(self.min),
            "max": _encode(self.max),
            "null_count": self.null_count,
            "row_count": self.row_count,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ColumnStats:
        try:
            kind = doc["kind"]
            return cls(
                min=_decode(kind, doc["min"]),
                max=_decode(kind, doc["max"]),
                null_count=int(doc["null_count"]),
                row_count=int(doc["row_count"]),
            )
        except (KeyError, TypeError, ValueError) as e:
            raise SegmentFormatError(f"bad column statistics {doc!r}: {e}") from e


def _kind(v: StatValue | None) -> str:
    if v is None:
        return "none"
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, int):
        return "int"
    if isinstance(v, float):
        return "float"
    return "str"


def _encode(v: StatValue | None) -> StatValue | None:
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return v


def _decode(kind: str, v: Any) -> StatValue | None:
    if v is None:
        return None
    if kind == "bool":
        if not isinstance(v, bool):
            raise ValueError(f"{v!r} is not a bool")
        return v
    if kind == "int":
        if isinstance(v, bool) or not isinstance(v, int):
            raise ValueError(f"{v!r} is not an int")
        return v
    if kind == "float":
        return float(v)  # also parses "inf" / "-inf"
    if kind == "str":
        if not isinstance(v, str):
            raise ValueError(f"{v!r} is not a string")
        return v
    raise ValueError(f"unknown statistics kind {kind!r}")


def has_order(arrow_type: pa.DataType, dtype: DataType | None = None, name: str | None = None) -> bool:
    """Whether min/max are kept for a column: numeric, bool and VARCHAR, not JSON."""
    if dtype is not None:
        return dtype.is_numeric or dtype in (DataType.BOOL, DataType.VARCHAR)
    if name == DYNAMIC_FIELD_NAME:
        return False
    t = arrow_type
    return bool(
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_boolean(t) or pa.types.is_string(t)
    )


def column_stats(
    column: pa.Array | pa.ChunkedArray, dtype: DataType | None = None, name: str | None = None
) -> ColumnStats:
    """Statistics of one column.

    Pass the field's `dtype` when known: JSON is an Arrow string column, and
    only the schema can tell it from VARCHAR. Without it, every string column
    but `$meta` is taken for VARCHAR.
    """
    rows = len(column)
    nulls = int(column.null_count)
    lo: StatValue | None = None
    hi: StatValue | None = None
    if rows > nulls and has_order(column.type, dtype, name):
        mm = pc.min_max(column)
        lo, hi = mm["min"].as_py(), mm["max"].as_py()
        if isinstance(lo, float) and math.isnan(lo):  # every value is NaN
            lo = hi = None
    return ColumnStats(min=lo, max=hi, null_count=nulls, row_count=rows)
