"""Schema model of collections."""

from pelagos.schema.types import (
    DYNAMIC_FIELD_NAME,
    FIRST_USER_FIELD_ID,
    ROW_TIMESTAMP_COLUMN,
    CollectionSchema,
    DataType,
    FieldSchema,
)

__all__ = [
    "DYNAMIC_FIELD_NAME",
    "FIRST_USER_FIELD_ID",
    "ROW_TIMESTAMP_COLUMN",
    "CollectionSchema",
    "DataType",
    "FieldSchema",
]
