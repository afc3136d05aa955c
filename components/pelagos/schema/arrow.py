"""How the engine holds rows: Arrow columns, one per field.

Every batch of rows inside Pelagos (a DML message, a growing segment, a
sealed segment file, a query result) is a `pyarrow.Table` / `RecordBatch`
whose columns are named after the schema's fields, plus system columns:

- `_ts` (uint64): the hybrid timestamp of the write that produced the row.

Column types:
- BOOL bool_, INT8..INT64 int8..int64, FLOAT float32, DOUBLE float64
- VARCHAR: string
- JSON and the dynamic field `$meta`: string holding JSON text
- ARRAY: list_<element type>
- FLOAT_VECTOR: fixed_size_list<float32>[dim]
- BINARY_VECTOR: fixed_size_binary[dim // 8]
- nullable fields carry Arrow nulls.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from pelagos.schema.types import (
    DYNAMIC_FIELD_NAME,
    ROW_TIMESTAMP_COLUMN,
    CollectionSchema,
    DataType,
    FieldSchema,
)

_SCALAR_TYPES: dict[DataType, pa.DataType] = {
    DataType.BOOL: pa.bool_(),
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
    DataType.VARCHAR: pa.string(),
    DataType.JSON: pa.string(),
}


def arrow_type(f: FieldSchema) -> pa.DataType:
    """The Arrow type of one field's column."""
    if f.dtype in _SCALAR_TYPES:
        return _SCALAR_TYPES[f.dtype]
    if f.dtype == DataType.FLOAT_VECTOR:
        if not f.dim:
            raise ValueError(f"vector field {f.name!r} has no dimension")
        return pa.list_(pa.float32(), f.dim)
    if f.dtype == DataType.BINARY_VECTOR:
        if not f.dim or f.dim % 8:
            raise ValueError(f"binary vector field {f.name!r} needs a dimension that is a multiple of 8")
        return pa.binary(f.dim // 8)
    if f.dtype == DataType.ARRAY:
        if f.element_type is None or f.element_type not in _SCALAR_TYPES:
            raise ValueError(f"array field {f.name!r} has no valid element type")
        return pa.list_(_SCALAR_TYPES[f.element_type])
    raise ValueError(f"unsupported data type {f.dtype!r} of field {f.name!r}")


def arrow_schema(schema: CollectionSchema, *, with_system: bool = True) -> pa.Schema:
    """The Arrow schema of a collection's rows (user fields, `$meta`, `_ts`)."""
    cols = [pa.field(f.name, arrow_type(f), nullable=f.nullable or f.is_dynamic) for f in schema.fields]
    if schema.enable_dynamic_field and schema.field(DYNAMIC_FIELD_NAME) is None:
        cols.append(pa.field(DYNAMIC_FIELD_NAME, pa.string(), nullable=True))
    if with_system:
        cols.append(pa.field(ROW_TIMESTAMP_COLUMN, pa.uint64(), nullable=False))
    return pa.schema(cols)


def vectors_of(column: pa.Array | pa.ChunkedArray, dtype: DataType, dim: int) -> np.ndarray:
    """A (n, dim) float32 matrix, or (n, dim // 8) uint8 for binary, without per-row Python."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if dtype == DataType.FLOAT_VECTOR:
        flat = column.flatten() if len(column) else pa.array([], pa.float32())
        return np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, dim)
    if dtype == DataType.BINARY_VECTOR:
        width = dim // 8
        buf = column.buffers()[1]
        raw = np.frombuffer(buf, dtype=np.uint8) if buf is not None else np.empty(0, np.uint8)
        start = column.offset * width
        return raw[start : start + len(column) * width].reshape(-1, width)
    raise ValueError(f"{dtype!r} is not a vector type")


def vector_column(matrix: np.ndarray, dtype: DataType, dim: int) -> pa.Array:
    """The inverse of `vectors_of`: an Arrow column from a matrix, zero-copy where possible."""
    if dtype == DataType.FLOAT_VECTOR:
        m = np.ascontiguousarray(matrix, dtype=np.float32).reshape(-1, dim)
        return pa.FixedSizeListArray.from_arrays(pa.array(m.reshape(-1)), dim)
    if dtype == DataType.BINARY_VECTOR:
        width = dim // 8
        codes = np.ascontiguousarray(matrix, dtype=np.uint8).reshape(-1, width)
        return pa.Array.from_buffers(pa.binary(width), len(codes), [None, pa.py_buffer(codes.tobytes())])
    raise ValueError(f"{dtype!r} is not a vector type")
