"""Validation of names and schemas, with Milvus's rules and wording.

Everything a user can get wrong in DDL is checked here, before anything is
written, and reported as NameRuleError / InvalidArgumentError with a
message that says what is wrong and what is allowed.
"""

from __future__ import annotations

import re

from pelagos.errors import InvalidArgumentError, NameRuleError
from pelagos.schema import DYNAMIC_FIELD_NAME, CollectionSchema, DataType, FieldSchema

MAX_NAME_LENGTH = 255
MAX_DIM = 32768
MAX_VARCHAR_LENGTH = 65535
MAX_ARRAY_CAPACITY = 4096
MAX_FIELDS = 64
MAX_SHARDS = 16

_NAME_BODY = re.compile(r"^[A-Za-z0-9_]*$")


def check_name(name: str, kind: str) -> None:
    """Milvus's rule for collection, field, partition, alias, index and database names."""
    if not name or not name.strip():
        raise NameRuleError(f"Invalid {kind} name: {name!r}. the {kind} name should not be empty")
    if len(name) > MAX_NAME_LENGTH:
        raise NameRuleError(
            f"Invalid {kind} name: {name}. the length of a {kind} name must be less than "
            f"{MAX_NAME_LENGTH} characters"
        )
    first = name[0]
    if not (first == "_" or (first.isascii() and first.isalpha())):
        raise NameRuleError(
            f"Invalid {kind} name: {name}. the first character of a {kind} name must be an underscore or letter"
        )
    if not _NAME_BODY.match(name):
        raise NameRuleError(
            f"Invalid {kind} name: {name}. {kind} name can only contain numbers, letters and underscores"
        )


_PK_TYPES = (DataType.INT64, DataType.VARCHAR)
_ARRAY_ELEMENTS = (
    DataType.BOOL,
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.VARCHAR,
)


def _check_field(f: FieldSchema) -> None:
    if f.is_dynamic or f.name == DYNAMIC_FIELD_NAME:
        return
    check_name(f.name, "field")
    if f.dtype.is_vector:
        if f.dim is None:
            raise InvalidArgumentError(f"dimension is not defined in field type params of field {f.name}")
        if not 1 <= f.dim <= MAX_DIM:
            raise InvalidArgumentError(
                f"invalid dimension: {f.dim} of field {f.name}. should be in range 2 ~ {MAX_DIM}"
            )
        if f.dtype == DataType.BINARY_VECTOR and f.dim % 8:
            raise InvalidArgumentError(
                f"invalid dimension: {f.dim} of field {f.name}. binary vector dimension should be multiple of 8"
            )
        if f.nullable:
            raise InvalidArgumentError(f"vector field {f.name} cannot be nullable")
    if f.dtype == DataType.VARCHAR or (f.dtype == DataType.ARRAY and f.element_type == DataType.VARCHAR):
        if f.max_length is None:
            raise InvalidArgumentError(f"type param(max_length) should be specified for the field({f.name})")
        if not 1 <= f.max_length <= MAX_VARCHAR_LENGTH:
            raise InvalidArgumentError(
                f"the maximum length specified for the field({f.name}) should be in (0, {MAX_VARCHAR_LENGTH}], "
                f"but got {f.max_length} instead"
            )
    if f.dtype == DataType.ARRAY:
        if f.element_type not in _ARRAY_ELEMENTS:
            raise InvalidArgumentError(f"element type of array field {f.name} is not supported or not set")
        if f.max_capacity is None:
            raise InvalidArgumentError(
                f"type param(max_capacity) should be specified for array field {f.name}"
            )
        if not 1 <= f.max_capacity <= MAX_ARRAY_CAPACITY:
            raise InvalidArgumentError(
                f"the maximum capacity specified for a Array should be in (0, {MAX_ARRAY_CAPACITY}], "
                f"but got {f.max_capacity} of field {f.name}"
            )
    if f.auto_id and not f.is_primary:
        raise InvalidArgumentError(f"only the primary field can enable autoID; field {f.name} is not primary")
    if f.is_partition_key:
        if f.dtype not in _PK_TYPES:
            raise InvalidArgumentError(
                f"the data type of the partition key should be Int64 or VarChar, field {f.name} is {f.dtype.name}"
            )
        if f.is_primary:
            raise InvalidArgumentError(f"the partition key field must not be primary field: {f.name}")
        if f.nullable:
            raise InvalidArgumentError(f"partition key field {f.name} cannot be nullable")


def check_schema(schema: CollectionSchema) -> None:
    """Raise InvalidArgumentError unless `schema` is a valid collection schema."""
    user = [f for f in schema.fields if not f.is_dynamic]
    if not user:
        raise InvalidArgumentError("schema has no fields")
    if len(user) > MAX_FIELDS:
        raise InvalidArgumentError(f"maximum field's number should be limited to {MAX_FIELDS}")
    names: set[str] = set()
    for f in user:
        if f.name in names:
            raise InvalidArgumentError(f"duplicated field name: {f.name}")
        names.add(f.name)
        _check_field(f)
    primaries = [f for f in user if f.is_primary]
    if not primaries:
        raise InvalidArgumentError(
            "schema does not contain primary key, please specify the primary key field"
        )
    if len(primaries) > 1:
        raise InvalidArgumentError(
            "there are more than one primary key, field names: " + ", ".join(f.name for f in primaries)
        )
    pk = primaries[0]
    if pk.dtype not in _PK_TYPES:
        raise InvalidArgumentError(
            f"the data type of primary key should be Int64 or VarChar, field {pk.name} is {pk.dtype.name}"
        )
    if pk.nullable:
        raise InvalidArgumentError(f"primary field {pk.name} does not support nullable")
    if pk.default_value is not None:
        raise InvalidArgumentError(f"primary field {pk.name} does not support default value")
    if not any(f.dtype.is_vector for f in user):
        raise InvalidArgumentError("schema does not contain vector field, please specify a vector field")
    if sum(1 for f in user if f.is_partition_key) > 1:
        raise InvalidArgumentError("there are more than one partition key")


def assign_field_ids(schema: CollectionSchema) -> CollectionSchema:
    """Field IDs from 100 in schema order (the dynamic field last)."""
    next_id = 100
    for f in schema.fields:
        f.field_id = next_id
        next_id += 1
    return schema
