"""The engine's schema model: data types, fields, collections.

Plain data, no protocol: the Milvus adapter translates to and from these.
Numeric values of DataType match Milvus's so translation is a lookup, but the
engine never depends on that.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class DataType(enum.IntEnum):
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    FLOAT = 10
    DOUBLE = 11
    VARCHAR = 21
    ARRAY = 22
    JSON = 23
    BINARY_VECTOR = 100
    FLOAT_VECTOR = 101

    @property
    def is_vector(self) -> bool:
        return self in (DataType.FLOAT_VECTOR, DataType.BINARY_VECTOR)

    @property
    def is_integer(self) -> bool:
        return self in (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64)

    @property
    def is_float(self) -> bool:
        return self in (DataType.FLOAT, DataType.DOUBLE)

    @property
    def is_numeric(self) -> bool:
        return self.is_integer or self.is_float

    @property
    def is_scalar(self) -> bool:
        return not self.is_vector


#: Name of the hidden JSON column that holds dynamic fields.
DYNAMIC_FIELD_NAME = "$meta"
#: Internal system columns every segment carries.
ROW_TIMESTAMP_COLUMN = "_ts"

#: First field ID of user fields (Milvus reserves 0..99 for system fields).
FIRST_USER_FIELD_ID = 100


@dataclass(slots=True)
class FieldSchema:
    name: str
    dtype: DataType
    field_id: int = 0
    description: str = ""
    is_primary: bool = False
    auto_id: bool = False
    nullable: bool = False
    default_value: Any = None
    is_partition_key: bool = False
    is_dynamic: bool = False
    #: vector dimension (FLOAT_VECTOR: floats; BINARY_VECTOR: bits)
    dim: int | None = None
    #: VARCHAR (and ARRAY of VARCHAR) maximum length in characters
    max_length: int | None = None
    #: ARRAY element type and maximum number of elements
    element_type: DataType | None = None
    max_capacity: int | None = None
    #: any other type params as Milvus carries them (strings)
    type_params: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class CollectionSchema:
    fields: list[FieldSchema]
    description: str = ""
    enable_dynamic_field: bool = False

    @property
    def primary_field(self) -> FieldSchema:
        for f in self.fields:
            if f.is_primary:
                return f
        raise LookupError("schema has no primary key field")

    def field(self, name: str) -> FieldSchema | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    @property
    def vector_fields(self) -> list[FieldSchema]:
        return [f for f in self.fields if f.dtype.is_vector]

    @property
    def partition_key_field(self) -> FieldSchema | None:
        for f in self.fields:
            if f.is_partition_key:
                return f
        return None
