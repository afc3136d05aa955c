"""Milvus `FieldData` columns <-> Arrow tables (pelagos.schema.arrow layout).

Decoding (insert / upsert):
- one Arrow column per FieldData, named by `field_name`; the dynamic field
  arrives as JSON named `$meta` with `is_dynamic` set and stays `$meta`;
- types follow FieldData.type: int8/int16 arrive in `int_data` and are cast
  (an out-of-range value is an InvalidArgumentError); JSON bytes become
  strings; float vectors become fixed_size_list<float32>[dim], binary vectors
  fixed_size_binary[dim // 8];
- ARRAY columns take the element type from `array_data.element_type` when set,
  else from the populated slot of the cells (int_data -> int32, ...): pymilvus
  does not send it, so an int8 array arrives as list<int32> and the proxy casts
  to its schema;
- `valid_data` marks nulls; the payload may be compact (only valid rows, as
  pymilvus sends it) or dense (one value per row); both are accepted;
- all columns must have the same number of rows.

Encoding (query / search outputs):
- scalar payloads are dense (a placeholder where a row is null) with
  `valid_data` when the column has nulls; vector payloads are compact (valid
  rows only), which is what pymilvus indexes with a prefix sum;
- `$meta` is JSON with `is_dynamic`; its nulls become `{}` (no valid_data) so
  clients do not see a `$meta: None` key;
- the system column `_ts` is never sent.

Vectorised: numpy / pyarrow bulk conversions and `.extend()` of lists built
in bulk; float payloads move through packed wire bytes (packed.py). ARRAY
cells are one protobuf message per row by protocol design, so they are the one
per-row loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from pymilvus.grpc_gen import schema_pb2

from pelagos.adapters.milvus.packed import append_fixed, read_fixed
from pelagos.errors import InvalidArgumentError, UnsupportedError
from pelagos.interfaces.hit_keys import HitKeys
from pelagos.schema import DYNAMIC_FIELD_NAME, ROW_TIMESTAMP_COLUMN, CollectionSchema, DataType

_INT_ARROW = {DataType.INT8: pa.int8(), DataType.INT16: pa.int16(), DataType.INT32: pa.int32()}
_SCALAR_ARROW: dict[DataType, pa.DataType] = {
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
#: ScalarField slot of each element type of an ARRAY cell
_ELEMENT_SLOT: dict[DataType, str] = {
    DataType.BOOL: "bool_data",
    DataType.INT8: "int_data",
    DataType.INT16: "int_data",
    DataType.INT32: "int_data",
    DataType.INT64: "long_data",
    DataType.FLOAT: "float_data",
    DataType.DOUBLE: "double_data",
    DataType.VARCHAR: "string_data",
}
_SLOT_ELEMENT: dict[str, DataType] = {
    "bool_data": DataType.BOOL,
    "int_data": DataType.INT32,
    "long_data": DataType.INT64,
    "float_data": DataType.FLOAT,
    "double_data": DataType.DOUBLE,
    "string_data": DataType.VARCHAR,
}


# --- decoding ----------------------------------------------------------------


def fields_to_table(fields: Sequence[schema_pb2.FieldData], num_rows: int = 0) -> pa.Table:
    """The rows of an InsertRequest / UpsertRequest as an Arrow table, one column per field."""
    if not fields:
        raise InvalidArgumentError("the request carries no field data")
    n = num_rows or _row_count(fields[0])
    names: list[str] = []
    columns: list[pa.Array] = []
    for fd in fields:
        name = DYNAMIC_FIELD_NAME if fd.is_dynamic and not fd.field_name else fd.field_name
        if not name:
            raise InvalidArgumentError("a field data column has no field name")
        if name in names:
            raise InvalidArgumentError(f"field {name!r} appears twice in the request")
        column = field_to_column(fd)
        if len(column) != n:
            raise InvalidArgumentError(
                f"field {name!r} has {len(column)} rows but the request has {n}; every field needs one value per row"
            )
        names.append(name)
        columns.append(column)
    return pa.Table.from_arrays(columns, names=names)


def field_to_column(fd: schema_pb2.FieldData) -> pa.Array:
    """One FieldData as an Arrow column, nulls applied."""
    dtype = _dtype(fd)
    payload = _payload(fd, dtype)
    if len(fd.valid_data) == 0:
        return payload
    valid = np.fromiter(fd.valid_data, dtype=bool, count=len(fd.valid_data))
    return _apply_validity(payload, valid, fd.field_name)


def _row_count(fd: schema_pb2.FieldData) -> int:
    if len(fd.valid_data):
        return len(fd.valid_data)
    return len(_payload(fd, _dtype(fd)))


def _dtype(fd: schema_pb2.FieldData) -> DataType:
    try:
        return DataType(fd.type)
    except ValueError:
        name = schema_pb2.DataType.Name(fd.type) if fd.type in schema_pb2.DataType.values() else str(fd.type)
        raise UnsupportedError(
            f"field {fd.field_name!r} carries {name} data, which Pelagos does not support"
        ) from None


def _payload(fd: schema_pb2.FieldData, dtype: DataType) -> pa.Array:
    """The values present in the message (compact or dense), typed."""
    s = fd.scalars
    if dtype == DataType.BOOL:
        return pa.array(np.fromiter(s.bool_data.data, dtype=bool, count=len(s.bool_data.data)))
    if dtype in _INT_ARROW:
        raw = pa.array(np.fromiter(s.int_data.data, dtype=np.int32, count=len(s.int_data.data)))
        try:
            return raw.cast(_INT_ARROW[dtype])
        except pa.ArrowInvalid as exc:
            raise InvalidArgumentError(
                f"field {fd.field_name!r} has a value out of the {dtype.name} range"
            ) from exc
    if dtype == DataType.INT64:
        return pa.array(np.fromiter(s.long_data.data, dtype=np.int64, count=len(s.long_data.data)))
    if dtype == DataType.FLOAT:
        return pa.array(read_fixed(s.float_data, np.float32))
    if dtype == DataType.DOUBLE:
        return pa.array(read_fixed(s.double_data, np.float64))
    if dtype == DataType.VARCHAR:
        return pa.array(list(s.string_data.data), type=pa.string())
    if dtype == DataType.JSON:
        return _utf8(pa.array(list(s.json_data.data), type=pa.binary()), fd.field_name)
    if dtype == DataType.ARRAY:
        return _array_payload(fd)
    if dtype == DataType.FLOAT_VECTOR:
        dim = fd.vectors.dim
        flat = read_fixed(fd.vectors.float_vector, np.float32)
        if dim <= 0 or flat.size % dim:
            raise InvalidArgumentError(
                f"float vector field {fd.field_name!r} has {flat.size} values, not a multiple of dim {dim}"
            )
        return pa.FixedSizeListArray.from_arrays(pa.array(flat), dim)
    if dtype == DataType.BINARY_VECTOR:
        dim = fd.vectors.dim
        raw = fd.vectors.binary_vector
        if dim <= 0 or dim % 8 or len(raw) % (dim // 8):
            raise InvalidArgumentError(
                f"binary vector field {fd.field_name!r} has {len(raw)} bytes, not a multiple of dim/8 for dim {dim}"
            )
        width = dim // 8
        return pa.Array.from_buffers(pa.binary(width), len(raw) // width, [None, pa.py_buffer(raw)])
    raise UnsupportedError(
        f"field {fd.field_name!r} carries {dtype.name} data, which Pelagos does not support"
    )


def _array_payload(fd: schema_pb2.FieldData) -> pa.Array:
    cells = fd.scalars.array_data.data
    element = fd.scalars.array_data.element_type
    slot: str | None = None
    element_type: DataType | None = None
    if element:
        element_type = DataType(element) if element in DataType._value2member_map_ else None
        if element_type is None or element_type not in _ELEMENT_SLOT:
            raise UnsupportedError(
                f"array field {fd.field_name!r} has an element type Pelagos does not support"
            )
        slot = _ELEMENT_SLOT[element_type]
    else:
        for cell in cells:
            slot = cell.WhichOneof("data")
            if slot is not None:
                break
        if slot is not None and slot not in _SLOT_ELEMENT:
            raise UnsupportedError(
                f"array field {fd.field_name!r} carries {slot} elements, which Pelagos does not support"
            )
        element_type = _SLOT_ELEMENT[slot] if slot is not None else None
    if slot is None or element_type is None:  # no cell has any element: type unknown, the proxy casts
        offsets = np.zeros(len(cells) + 1, dtype=np.int32)
        return pa.ListArray.from_arrays(pa.array(offsets), pa.nulls(0))
    lengths = np.fromiter((len(getattr(c, slot).data) for c in cells), dtype=np.int64, count=len(cells))
    offsets = np.zeros(len(cells) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    values: list[Any] = []
    for c in cells:
        values.extend(getattr(c, slot).data)
    flat = pa.array(values, type=_SCALAR_ARROW[element_type])
    if element_type in _INT_ARROW and element_type != DataType.INT32:
        flat = flat.cast(_INT_ARROW[element_type])
    return pa.ListArray.from_arrays(pa.array(offsets), flat)


def _utf8(arr: pa.Array, field: str) -> pa.Array:
    try:
        return arr.cast(pa.string())
    except pa.ArrowInvalid as exc:
        raise InvalidArgumentError(f"JSON field {field!r} holds bytes that are not UTF-8 text") from exc


def _apply_validity(payload: pa.Array, valid: np.ndarray, field: str) -> pa.Array:
    n = len(valid)
    n_valid = int(valid.sum())
    if len(payload) == n:  # dense: one value per row
        if n_valid == n:
            return payload
        indices = pa.array(np.arange(n, dtype=np.int64), mask=~valid)
    elif len(payload) == n_valid:  # compact: values of valid rows only
        indices = pa.array(np.cumsum(valid, dtype=np.int64) - 1, mask=~valid)
    else:
        raise InvalidArgumentError(
            f"field {field!r} has {len(payload)} values for {n} rows of which {n_valid} are not null"
        )
    return payload.take(indices)


# --- encoding ----------------------------------------------------------------


def table_to_fields(table: pa.Table, schema: CollectionSchema | None = None) -> list[schema_pb2.FieldData]:
    """Output columns as FieldData, typed by `schema` where it names the column, else by Arrow type."""
    holder = schema_pb2.SearchResultData()
    add_fields(holder.fields_data, table, schema)
    return list(holder.fields_data)


def add_fields(
    repeated: Any,
    table: pa.Table,
    schema: CollectionSchema | None = None,
    *,
    keys: tuple[str, list[int] | list[str], int] | None = None,
) -> None:
    """Append the output columns to a repeated FieldData (built in place: no copies).

    `keys` (name, values, position): a primary-key column the table does not hold (search results
    carry their keys apart), written from the values a reply already encoded as its ids, before
    the table's column at that position.
    """
    names = table.column_names
    for i, (name, column) in enumerate(zip(names, table.columns, strict=True)):
        if keys is not None and i == keys[2]:
            key_field(repeated.add(), keys[0], keys[1], schema)
        if name == ROW_TIMESTAMP_COLUMN:
            continue
        f = schema.field(name) if schema is not None else None
        fd = repeated.add()
        column_to_field(
            name,
            column,
            dtype=f.dtype if f is not None else None,
            field_id=f.field_id if f is not None else 0,
            into=fd,
        )
    if keys is not None and keys[2] >= len(names):
        key_field(repeated.add(), keys[0], keys[1], schema)


def key_field(fd: Any, name: str, values: list[int] | list[str], schema: CollectionSchema | None) -> None:
    """Fill FieldData `fd` with primary key `name` from its values (those a reply wrote as its ids)."""
    f = schema.field(name) if schema is not None else None
    fd.field_name = name
    fd.field_id = f.field_id if f is not None else 0
    strings = f.dtype == DataType.VARCHAR if f is not None else bool(values) and isinstance(values[0], str)
    if strings:
        fd.type = int(DataType.VARCHAR)
        fd.scalars.string_data.data.extend(values)
    else:
        fd.type = int(DataType.INT64)
        fd.scalars.long_data.data.extend(values)


def column_to_field(
    name: str,
    column: pa.Array | pa.ChunkedArray,
    *,
    dtype: DataType | None = None,
    field_id: int = 0,
    into: schema_pb2.FieldData | None = None,
) -> schema_pb2.FieldData:
    """One Arrow column as FieldData (see the module docstring for the payload layout), filled into
    `into` when given."""
    arr = _contiguous(column)
    is_dynamic = name == DYNAMIC_FIELD_NAME
    dtype = DataType.JSON if is_dynamic else (dtype or arrow_dtype(arr.type, name))
    fd = schema_pb2.FieldData() if into is None else into
    fd.type = int(dtype)
    fd.field_name = name
    fd.field_id = field_id
    fd.is_dynamic = is_dynamic
    if is_dynamic:
        arr = pc.fill_null(arr.cast(pa.string()), "{}") if arr.null_count else arr
    elif arr.null_count:
        fd.valid_data.extend(np.asarray(arr.is_valid()).tolist())
    if dtype.is_vector:
        _encode_vector(fd, arr, dtype)
    elif dtype == DataType.ARRAY:
        _encode_array(fd, arr)
    else:
        _encode_scalar(fd, arr, dtype)
    return fd


def arrow_dtype(t: pa.DataType, name: str = "") -> DataType:
    """The Milvus type of an Arrow column type (strings are VARCHAR; JSON needs the schema)."""
    if pa.types.is_boolean(t):
        return DataType.BOOL
    if pa.types.is_int8(t):
        return DataType.INT8
    if pa.types.is_int16(t):
        return DataType.INT16
    if pa.types.is_int32(t):
        return DataType.INT32
    if pa.types.is_integer(t):
        return DataType.INT64
    if pa.types.is_float32(t):
        return DataType.FLOAT
    if pa.types.is_floating(t):
        return DataType.DOUBLE
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return DataType.VARCHAR
    if pa.types.is_fixed_size_list(t):
        return DataType.FLOAT_VECTOR
    if pa.types.is_fixed_size_binary(t):
        return DataType.BINARY_VECTOR
    if pa.types.is_list(t) or pa.types.is_large_list(t):
        return DataType.ARRAY
    raise UnsupportedError(f"output column {name!r} has Arrow type {t}, which has no Milvus equivalent")


def _contiguous(column: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(column, pa.ChunkedArray):
        if column.num_chunks == 1:
            return column.chunk(0)
        return column.combine_chunks() if column.num_chunks else pa.array([], type=column.type)
    return column


def _encode_scalar(fd: schema_pb2.FieldData, arr: pa.Array, dtype: DataType) -> None:
    s = fd.scalars
    if dtype in (DataType.VARCHAR, DataType.JSON):
        text = arr.cast(pa.string())
        if text.null_count:
            text = pc.fill_null(text, "")
        if dtype == DataType.VARCHAR:
            s.string_data.data.extend(text.to_pylist())
        else:
            s.json_data.data.extend(text.cast(pa.binary()).to_pylist())
        return
    target = _SCALAR_ARROW.get(dtype)
    if target is None:
        raise UnsupportedError(f"cannot encode column {fd.field_name!r} as {dtype.name}")
    if arr.type != target:
        arr = arr.cast(target)
    values = (
        arr.to_numpy(zero_copy_only=False)
        if not arr.null_count
        else pc.fill_null(arr, _zero(target)).to_numpy(zero_copy_only=False)
    )
    if dtype == DataType.BOOL:
        s.bool_data.data.extend(values.tolist())
    elif dtype in _INT_ARROW:
        s.int_data.data.extend(values.tolist())
    elif dtype == DataType.INT64:
        s.long_data.data.extend(values.tolist())
    elif dtype == DataType.FLOAT:
        s.float_data.SetInParent()
        append_fixed(s.float_data, 1, values, np.float32)
    else:
        s.double_data.SetInParent()
        append_fixed(s.double_data, 1, values, np.float64)


def _zero(t: pa.DataType) -> Any:
    if pa.types.is_boolean(t):
        return False
    if pa.types.is_floating(t):
        return 0.0
    return 0


def _encode_vector(fd: schema_pb2.FieldData, arr: pa.Array, dtype: DataType) -> None:
    valid_rows = arr.drop_null() if arr.null_count else arr  # vectors are compact
    if dtype == DataType.FLOAT_VECTOR:
        if not pa.types.is_fixed_size_list(arr.type):
            raise UnsupportedError(
                f"float vector column {fd.field_name!r} is {arr.type}, not fixed_size_list"
            )
        dim = arr.type.list_size
        fd.vectors.dim = dim
        fd.vectors.float_vector.SetInParent()
        flat = valid_rows.flatten().cast(pa.float32())
        append_fixed(fd.vectors.float_vector, 1, flat.to_numpy(zero_copy_only=False), np.float32)
        return
    if dtype == DataType.BINARY_VECTOR:
        if not pa.types.is_fixed_size_binary(arr.type):
            raise UnsupportedError(
                f"binary vector column {fd.field_name!r} is {arr.type}, not fixed_size_binary"
            )
        width = arr.type.byte_width
        fd.vectors.dim = width * 8
        buf = valid_rows.buffers()[1]
        start = valid_rows.offset * width
        fd.vectors.binary_vector = (
            b"" if buf is None else buf.to_pybytes()[start : start + len(valid_rows) * width]
        )
        return
    raise UnsupportedError(f"cannot encode column {fd.field_name!r} as {dtype.name}")


def _encode_array(fd: schema_pb2.FieldData, arr: pa.Array) -> None:
    if not (pa.types.is_list(arr.type) or pa.types.is_large_list(arr.type)):
        raise UnsupportedError(f"array column {fd.field_name!r} is {arr.type}, not a list")
    element = arrow_dtype(arr.type.value_type, fd.field_name)
    slot = _ELEMENT_SLOT.get(element)
    if slot is None:
        raise UnsupportedError(f"array column {fd.field_name!r} has elements of {arr.type.value_type}")
    array_data = fd.scalars.array_data
    array_data.element_type = int(element)
    offsets = np.asarray(arr.offsets.to_numpy(zero_copy_only=False), dtype=np.int64)
    values = arr.values.to_pylist() if arr.values.null_count else _bulk_values(arr.values)
    valid = np.asarray(arr.is_valid()) if arr.null_count else None
    for i in range(len(arr)):  # one ScalarField message per row: the protocol's shape
        cell = array_data.data.add()
        target = getattr(cell, slot)
        target.SetInParent()
        if valid is None or valid[i]:
            target.data.extend(values[offsets[i] : offsets[i + 1]])


def _bulk_values(values: pa.Array) -> list[Any]:
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        return list(values.to_pylist())
    return list(values.to_numpy(zero_copy_only=False).tolist())


def ids_to_proto(ids: schema_pb2.IDs, keys: HitKeys | pa.ChunkedArray) -> list[int] | list[str]:
    """Primary keys (a search's hit keys, or an Arrow array) into an IDs message (int_id or str_id);
    the keys as the list written."""
    if isinstance(keys, np.ndarray):  # int64 hit keys: no Arrow on a search's way out
        int_values: list[int] = keys.tolist()
        ids.int_id.SetInParent()
        ids.int_id.data.extend(int_values)
        return int_values
    keys = _contiguous(keys)
    if pa.types.is_string(keys.type) or pa.types.is_large_string(keys.type):
        ids.str_id.SetInParent()
        str_values: list[str] = keys.to_pylist()
        ids.str_id.data.extend(str_values)
        return str_values
    ids.int_id.SetInParent()
    if keys.type != pa.int64():
        keys = keys.cast(pa.int64())
    values: list[int] = keys.to_numpy(zero_copy_only=False).tolist()
    ids.int_id.data.extend(values)
    return values
