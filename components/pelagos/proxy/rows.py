"""Checking and completing the rows of an insert or upsert against the schema.

The result is a table in the collection's Arrow layout (schema/arrow.py)
minus `_ts`, which the channel writer stamps. Everything is done on whole
columns with pyarrow.compute: no per-row Python.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pelagos.errors import InvalidArgumentError, SchemaMismatchError
from pelagos.schema import DYNAMIC_FIELD_NAME, CollectionSchema, DataType, FieldSchema
from pelagos.schema.arrow import arrow_schema, arrow_type

_INT_RANGES = {
    DataType.INT8: (-(2**7), 2**7 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
}


def _column(rows: pa.Table, name: str) -> pa.Array:
    col = rows.column(name)
    return col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col


def _default_scalar(f: FieldSchema, n: int) -> pa.Array:
    value: Any = f.default_value
    if f.dtype == DataType.JSON and not isinstance(value, str):
        value = json.dumps(value)
    return pa.array([value] * n, type=arrow_type(f)) if n else pa.array([], type=arrow_type(f))


def _cast(f: FieldSchema, col: pa.Array) -> pa.Array:
    target = arrow_type(f)
    if f.dtype.is_vector:
        if f.dtype == DataType.FLOAT_VECTOR:
            if not pa.types.is_fixed_size_list(col.type) and not pa.types.is_list(col.type):
                raise SchemaMismatchError(f"the data type of field {f.name} should be a float vector")
            if pa.types.is_fixed_size_list(col.type):
                got = col.type.list_size
            else:
                lens = pc.list_value_length(col)
                got = int(pc.min(lens).as_py()) if len(col) else f.dim
                if len(col) and got != int(pc.max(lens).as_py()):
                    raise InvalidArgumentError(
                        f"the dim of vectors in field {f.name} is not the same for every row"
                    )
            if got != f.dim:
                raise InvalidArgumentError(
                    f"the dim ({got}) of field data({f.name}) is not equal to schema dim ({f.dim})"
                )
        else:
            width = (f.dim or 0) // 8
            if not pa.types.is_fixed_size_binary(col.type) or col.type.byte_width != width:
                got = col.type.byte_width * 8 if pa.types.is_fixed_size_binary(col.type) else "?"
                raise InvalidArgumentError(
                    f"the dim ({got}) of field data({f.name}) is not equal to schema dim ({f.dim})"
                )
        if col.null_count:
            raise InvalidArgumentError(f"vector field {f.name} must not contain null values")
        return col.cast(target) if col.type != target else col
    if f.dtype in _INT_RANGES and len(col) and pa.types.is_integer(col.type):
        lo, hi = _INT_RANGES[f.dtype]
        mm = pc.min_max(col)
        mn, mx = mm["min"].as_py(), mm["max"].as_py()
        if mn is not None and (mn < lo or mx > hi):
            raise InvalidArgumentError(
                f"the value of field {f.name} is out of range of {f.dtype.name.lower()}: [{lo}, {hi}]"
            )
    try:
        out = col.cast(target) if col.type != target else col
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise SchemaMismatchError(
            f"the data type of field {f.name} ({col.type}) does not match the schema ({f.dtype.name})"
        ) from exc
    if f.dtype == DataType.VARCHAR and f.max_length is not None and len(out):
        too_long = pc.greater(pc.utf8_length(out), f.max_length)
        if pc.any(too_long).as_py():
            row = int(np.flatnonzero(too_long.to_numpy(zero_copy_only=False).astype(bool))[0])
            length = len(out[row].as_py())
            raise InvalidArgumentError(
                f"length of varchar field {f.name} exceeds max length, row number: {row}, "
                f"length: {length}, max length: {f.max_length}"
            )
    if f.dtype == DataType.ARRAY and len(out):
        lens = pc.list_value_length(out)
        mx = pc.max(lens).as_py()
        if mx is not None and f.max_capacity is not None and mx > f.max_capacity:
            raise InvalidArgumentError(
                f"array length exceeds max capacity, field name: {f.name}, max capacity: {f.max_capacity}"
            )
        if f.element_type == DataType.VARCHAR and f.max_length is not None:
            flat = pc.list_flatten(out)
            if len(flat) and pc.max(pc.utf8_length(flat)).as_py() > f.max_length:
                raise InvalidArgumentError(
                    f"length of varchar element in array field {f.name} exceeds max length {f.max_length}"
                )
    return out


def prepare_rows(
    schema: CollectionSchema, rows: pa.Table, *, auto_ids: pa.Array | None, upsert: bool = False
) -> pa.Table:
    """Validate `rows` against `schema` and return them in the storage layout.

    `auto_ids` fills an auto_id primary key (insert); on upsert the primary
    key must be given.
    """
    n = rows.num_rows
    given = set(rows.column_names)
    pk = schema.primary_field
    columns: dict[str, pa.Array] = {}
    for f in schema.fields:
        if f.is_dynamic or f.name == DYNAMIC_FIELD_NAME:
            continue
        if f.is_primary and f.auto_id and not upsert:
            if f.name in given:
                raise InvalidArgumentError(
                    f"the primary key field {f.name} is auto-generated, do not provide it when auto_id is enabled"
                )
            assert auto_ids is not None
            columns[f.name] = auto_ids
            continue
        if f.name not in given:
            if f.nullable or f.default_value is not None:
                columns[f.name] = (
                    _default_scalar(f, n) if f.default_value is not None else pa.nulls(n, type=arrow_type(f))
                )
                continue
            if f.is_primary:
                raise InvalidArgumentError(f"the primary key field {pk.name} is missing in the data")
            raise InvalidArgumentError(
                f"Insert missed an field `{f.name}` to collection without set nullable==true or set default_value"
            )
        col = _cast(f, _column(rows, f.name))
        if col.null_count:
            if f.default_value is not None:
                col = pc.if_else(pc.is_null(col), _default_scalar(f, n), col)
            elif not f.nullable:
                raise InvalidArgumentError(
                    f"the field {f.name} is not nullable but its data contains null values"
                )
        columns[f.name] = col
    extra = given - set(columns) - {DYNAMIC_FIELD_NAME}
    for f in schema.fields:
        extra.discard(f.name)
    if extra:
        if not schema.enable_dynamic_field:
            raise InvalidArgumentError(
                f"Attempt to insert an unexpected field `{sorted(extra)[0]}` to collection without enabling "
                "dynamic field"
            )
        raise InvalidArgumentError(
            f"dynamic keys {sorted(extra)} must be packed into the {DYNAMIC_FIELD_NAME} column"
        )
    if schema.enable_dynamic_field:
        if DYNAMIC_FIELD_NAME in given:
            meta = _column(rows, DYNAMIC_FIELD_NAME)
            if not pa.types.is_string(meta.type):
                meta = meta.cast(pa.string())
        else:
            meta = pa.nulls(n, type=pa.string())
        columns[DYNAMIC_FIELD_NAME] = meta
    elif DYNAMIC_FIELD_NAME in given:
        raise InvalidArgumentError(
            "the collection does not enable the dynamic field, remove the dynamic data"
        )
    target = arrow_schema(schema, with_system=False)
    return pa.Table.from_arrays([columns[name] for name in target.names], schema=target)
