"""Milvus `schema.CollectionSchema` <-> Pelagos `CollectionSchema`.

Invariants:
- data type numbers are the same on both sides; a Milvus type Pelagos does not
  support (float16 vectors, sparse vectors, text, geometry, structs, functions,
  ...) is refused with UnsupportedError naming the field, never dropped;
- `type_params` travel as strings: `dim`, `max_length`, `max_capacity` become
  typed attributes, every other key (e.g. `mmap.enabled`) is kept verbatim in
  `FieldSchema.type_params`, and all of them are written back as strings;
- default values travel as `schema.ValueField` in the slot Milvus uses for the
  type (int8..int32 -> int_data, int64 -> long_data, JSON -> bytes_data);
- the dynamic field (`$meta`, `is_dynamic`) is never shown to clients: pymilvus
  would otherwise treat it as a required insert column; `enable_dynamic_field`
  says it exists;
- field IDs pass through unchanged (clients send 0; the proxy assigns).

Pure: protobuf only, no gRPC.
"""

from __future__ import annotations

import json
from typing import Any

from pymilvus.grpc_gen import common_pb2, schema_pb2

from pelagos.errors import InvalidArgumentError, UnsupportedError
from pelagos.schema import CollectionSchema, DataType, FieldSchema

_TYPED_PARAMS = ("dim", "max_length", "max_capacity")
_SUPPORTED = {int(t) for t in DataType}
_ELEMENT_TYPES = {
    DataType.BOOL,
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.VARCHAR,
}


def schema_from_proto(pb: schema_pb2.CollectionSchema) -> CollectionSchema:
    """A Pelagos schema from what CreateCollection carries (already parsed)."""
    if len(pb.functions):
        names = ", ".join(f.name for f in pb.functions)
        raise UnsupportedError(f"schema functions ({names}) are not supported by Pelagos; remove them")
    if len(pb.struct_array_fields):
        names = ", ".join(f.name for f in pb.struct_array_fields)
        raise UnsupportedError(f"struct array fields ({names}) are not supported by Pelagos")
    fields = [field_from_proto(f) for f in pb.fields]
    if pb.autoID:
        for f in fields:
            if f.is_primary:
                f.auto_id = True
    return CollectionSchema(
        fields=fields, description=pb.description, enable_dynamic_field=pb.enable_dynamic_field
    )


def schema_from_bytes(raw: bytes) -> CollectionSchema:
    """CreateCollectionRequest.schema is the serialized CollectionSchema."""
    pb = schema_pb2.CollectionSchema()
    try:
        pb.ParseFromString(raw)
    except Exception as exc:  # protobuf's DecodeError
        raise InvalidArgumentError(
            f"the collection schema is not a valid serialized CollectionSchema: {exc}"
        ) from exc
    return schema_from_proto(pb)


def field_from_proto(f: schema_pb2.FieldSchema) -> FieldSchema:
    dtype = _data_type(f.data_type, f.name)
    params = {kv.key: kv.value for kv in f.type_params}
    element_type: DataType | None = None
    if dtype == DataType.ARRAY:
        element_type = _data_type(f.element_type, f.name)
        if element_type not in _ELEMENT_TYPES:
            raise UnsupportedError(
                f"array field {f.name!r} has element type {_type_name(f.element_type)}; Pelagos supports "
                "arrays of bool, int8..int64, float, double and varchar"
            )
    return FieldSchema(
        name=f.name,
        dtype=dtype,
        field_id=f.fieldID,
        description=f.description,
        is_primary=f.is_primary_key,
        auto_id=f.autoID,
        nullable=f.nullable,
        default_value=default_from_proto(f.default_value, dtype, f.name)
        if f.HasField("default_value")
        else None,
        is_partition_key=f.is_partition_key,
        is_dynamic=f.is_dynamic,
        dim=_int_param(params, "dim", f.name),
        max_length=_int_param(params, "max_length", f.name),
        element_type=element_type,
        max_capacity=_int_param(params, "max_capacity", f.name),
        type_params={k: v for k, v in params.items() if k not in _TYPED_PARAMS},
    )


def schema_to_proto(schema: CollectionSchema, name: str = "") -> schema_pb2.CollectionSchema:
    """What DescribeCollection shows: user fields only (no `$meta`), type params as strings."""
    pb = schema_pb2.CollectionSchema(
        name=name, description=schema.description, enable_dynamic_field=schema.enable_dynamic_field
    )
    for f in schema.fields:
        if f.is_dynamic:
            continue
        pb.fields.append(field_to_proto(f))
        if f.is_primary and f.auto_id:
            pb.autoID = True
    return pb


def field_to_proto(f: FieldSchema) -> schema_pb2.FieldSchema:
    pb = schema_pb2.FieldSchema(
        fieldID=f.field_id,
        name=f.name,
        is_primary_key=f.is_primary,
        description=f.description,
        data_type=int(f.dtype),
        autoID=f.auto_id,
        element_type=int(f.element_type) if f.element_type is not None else 0,
        is_dynamic=f.is_dynamic,
        is_partition_key=f.is_partition_key,
        nullable=f.nullable,
    )
    typed = {"dim": f.dim, "max_length": f.max_length, "max_capacity": f.max_capacity}
    for key, value in typed.items():
        if value is not None:
            pb.type_params.append(common_pb2.KeyValuePair(key=key, value=str(value)))
    for key, text in f.type_params.items():
        if key not in typed:
            pb.type_params.append(common_pb2.KeyValuePair(key=key, value=str(text)))
    if f.default_value is not None:
        pb.default_value.CopyFrom(default_to_proto(f.default_value, f.dtype, f.name))
    return pb


def default_from_proto(v: schema_pb2.ValueField, dtype: DataType, field: str) -> Any:
    """The Python value of a default (JSON defaults as JSON text); None when unset."""
    slot = v.WhichOneof("data")
    if slot is None:
        return None
    value = getattr(v, slot)
    if dtype == DataType.JSON:
        return value.decode() if isinstance(value, bytes) else json.dumps(value)
    if slot in ("bytes_data", "timestamptz_data", "date_data", "time_data"):
        raise UnsupportedError(
            f"the default value of field {field!r} uses {slot}, which Pelagos does not support"
        )
    return value


def default_to_proto(value: Any, dtype: DataType, field: str) -> schema_pb2.ValueField:
    v = schema_pb2.ValueField()
    try:
        if dtype == DataType.BOOL:
            v.bool_data = bool(value)
        elif dtype in (DataType.INT8, DataType.INT16, DataType.INT32):
            v.int_data = int(value)
        elif dtype == DataType.INT64:
            v.long_data = int(value)
        elif dtype == DataType.FLOAT:
            v.float_data = float(value)
        elif dtype == DataType.DOUBLE:
            v.double_data = float(value)
        elif dtype == DataType.VARCHAR:
            v.string_data = str(value)
        elif dtype == DataType.JSON:
            v.bytes_data = (value if isinstance(value, str) else json.dumps(value)).encode()
        else:
            raise InvalidArgumentError(f"field {field!r} of type {dtype.name} cannot have a default value")
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(
            f"default value {value!r} of field {field!r} does not fit {dtype.name}"
        ) from exc
    return v


def _data_type(number: int, field: str) -> DataType:
    if number not in _SUPPORTED:
        raise UnsupportedError(
            f"field {field!r} has data type {_type_name(number)}, which Pelagos does not support"
        )
    return DataType(number)


def _type_name(number: int) -> str:
    try:
        return str(schema_pb2.DataType.Name(number))
    except ValueError:
        return str(number)


def _int_param(params: dict[str, str], key: str, field: str) -> int | None:
    text = params.get(key)
    if text is None or text == "":
        return None
    try:
        return int(json.loads(text)) if text.strip().startswith('"') else int(text)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"type param {key}={text!r} of field {field!r} is not an integer") from exc
