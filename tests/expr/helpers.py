"""Shared by the expr tests: build Arrow rows for a schema from plain Python dicts.

JSON fields take Python objects (serialised here); keys that are not schema
fields go to `$meta` when the schema has the dynamic field.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pyarrow as pa

from pelagos.schema import DYNAMIC_FIELD_NAME, ROW_TIMESTAMP_COLUMN, CollectionSchema, DataType
from pelagos.schema.arrow import arrow_schema


def rows_to_table(schema: CollectionSchema, rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    aschema = arrow_schema(schema)
    names = {f.name for f in schema.fields}
    columns: dict[str, list[Any]] = {name: [] for name in aschema.names}
    for i, row in enumerate(rows):
        for f in schema.fields:
            v = row.get(f.name)
            if f.dtype == DataType.JSON and v is not None:
                v = json.dumps(v)
            columns[f.name].append(v)
        if DYNAMIC_FIELD_NAME in columns:
            extra = {k: v for k, v in row.items() if k not in names}
            columns[DYNAMIC_FIELD_NAME].append(json.dumps(extra))
        columns[ROW_TIMESTAMP_COLUMN].append(i)
    return pa.table(
        {name: pa.array(values, aschema.field(name).type) for name, values in columns.items()}, schema=aschema
    )


def product_schema(*, dynamic: bool = True) -> CollectionSchema:
    """The schema most unit tests filter over: one field of every filterable kind."""
    from pelagos.schema import FieldSchema

    return CollectionSchema(
        [
            FieldSchema("id", DataType.INT64, is_primary=True),
            FieldSchema("price", DataType.DOUBLE),
            FieldSchema("weight", DataType.FLOAT),
            FieldSchema("category", DataType.INT32),
            FieldSchema("tag", DataType.VARCHAR, max_length=64),
            FieldSchema("in_stock", DataType.BOOL),
            FieldSchema("rating", DataType.INT64, nullable=True),
            FieldSchema("meta", DataType.JSON),
            FieldSchema("extra", DataType.JSON, nullable=True),
            FieldSchema("sizes", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8),
            FieldSchema(
                "labels", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=8, nullable=True
            ),
            FieldSchema("vec", DataType.FLOAT_VECTOR, dim=2),
        ],
        enable_dynamic_field=dynamic,
    )


PRODUCT_ROWS: list[dict[str, Any]] = [
    {
        "id": 1,
        "price": 5.0,
        "weight": 0.5,
        "category": 1,
        "tag": "abc",
        "in_stock": True,
        "rating": None,
        "meta": {"a": {"b": 4}, "tags": ["x", "y"], "n": 1, "flag": True},
        "extra": None,
        "sizes": [1, 2, 3],
        "labels": ["red", "big"],
        "color": "red",
        "size": 1,
    },
    {
        "id": 2,
        "price": 15.5,
        "weight": 1.5,
        "category": 3,
        "tag": "xabcx",
        "in_stock": False,
        "rating": 7,
        "meta": {"a": {"b": "4"}, "tags": ["z"], "n": 2.5, "flag": False},
        "extra": {"q": 1},
        "sizes": [],
        "labels": None,
        "color": "blue",
        "size": 3,
    },
    {
        "id": 3,
        "price": 20.0,
        "weight": 2.0,
        "category": 3,
        "tag": "g042",
        "in_stock": True,
        "rating": -3,
        "meta": {"a": 1, "tags": "x", "n": "2"},
        "extra": {"q": 2},
        "sizes": [9],
        "labels": [],
    },
    {
        "id": 4,
        "price": -1.0,
        "weight": 0.0,
        "category": 4,
        "tag": "50%_off",
        "in_stock": False,
        "rating": 0,
        "meta": {"a": {"b": 10}, "tags": [1, 2, "x"], "n": True},
        "extra": {"q": None},
        "sizes": [4, 4, 5, 6],
        "labels": ["blue"],
        "color": 5,
    },
]
for _row in PRODUCT_ROWS:
    _row["vec"] = [0.0, 1.0]
