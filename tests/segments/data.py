"""Test data for segment tests: a schema with every data type and rows for it."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa

from pelagos.schema.arrow import arrow_schema, vector_column
from pelagos.schema.types import CollectionSchema, DataType, FieldSchema

DIM = 8
BDIM = 16

SCALARS = [
    DataType.BOOL,
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.VARCHAR,
    DataType.JSON,
]


def all_types_schema(pk: DataType = DataType.INT64, dynamic: bool = True) -> CollectionSchema:
    fields = [FieldSchema("id", pk, field_id=100, is_primary=True, max_length=64)]
    fid = 101
    for dt in SCALARS:
        for nullable in (False, True):
            name = f"{dt.name.lower()}_{'null' if nullable else 'req'}"
            fields.append(FieldSchema(name, dt, field_id=fid, nullable=nullable, max_length=64))
            fid += 1
    fields.append(
        FieldSchema("arr_int", DataType.ARRAY, field_id=fid, element_type=DataType.INT64, nullable=True)
    )
    fields.append(FieldSchema("arr_str", DataType.ARRAY, field_id=fid + 1, element_type=DataType.VARCHAR))
    fields.append(FieldSchema("fvec", DataType.FLOAT_VECTOR, field_id=fid + 2, dim=DIM))
    fields.append(FieldSchema("bvec", DataType.BINARY_VECTOR, field_id=fid + 3, dim=BDIM))
    return CollectionSchema(fields, enable_dynamic_field=dynamic)


def _values(dt: DataType, n: int, rng: np.random.Generator) -> list[object]:
    if dt == DataType.BOOL:
        return [bool(x) for x in rng.integers(0, 2, n)]
    if dt.is_integer:
        bits = {DataType.INT8: 8, DataType.INT16: 16, DataType.INT32: 32, DataType.INT64: 64}[dt]
        lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
        return [int(x) for x in rng.integers(lo, hi, n, endpoint=True, dtype=np.int64)]
    if dt == DataType.FLOAT:
        return [float(np.float32(x)) for x in rng.normal(0, 100, n)]
    if dt == DataType.DOUBLE:
        return [float(x) for x in rng.normal(0, 1e6, n)]
    if dt == DataType.VARCHAR:
        alphabet = ["a", "b", "Z", "é", "ß", "中", "", "0"]
        return ["".join(rng.choice(alphabet, int(rng.integers(0, 6)))) for _ in range(n)]
    if dt == DataType.JSON:
        return [json.dumps({"k": int(x), "s": ["x", None, 1.5]}) for x in rng.integers(0, 10, n)]
    raise AssertionError(dt)


def make_rows(schema: CollectionSchema, n: int, seed: int = 0, base_ts: int = 1 << 40) -> pa.Table:
    """n rows for `schema` (from all_types_schema): random values, ~1/3 nulls where nullable."""
    rng = np.random.default_rng(seed)
    target = arrow_schema(schema)
    cols: dict[str, pa.Array] = {}
    for f in schema.fields:
        t = target.field(f.name).type
        if f.is_primary:
            if f.dtype == DataType.INT64:
                cols[f.name] = pa.array(rng.permutation(n).astype(np.int64) * 7 - 3, t)
            else:
                cols[f.name] = pa.array([f"pk-{i:05d}-é" for i in rng.permutation(n)], t)
        elif f.dtype == DataType.FLOAT_VECTOR:
            cols[f.name] = vector_column(rng.standard_normal((n, DIM), dtype=np.float32), f.dtype, DIM)
        elif f.dtype == DataType.BINARY_VECTOR:
            cols[f.name] = vector_column(rng.integers(0, 256, (n, BDIM // 8), dtype=np.uint8), f.dtype, BDIM)
        elif f.dtype == DataType.ARRAY:
            assert f.element_type is not None
            lists: list[object] = []
            for _ in range(n):
                k = int(rng.integers(0, 4))
                lists.append(_values(f.element_type, k, rng))
            if f.nullable:
                lists = [None if i % 3 == 1 else v for i, v in enumerate(lists)]
            cols[f.name] = pa.array(lists, t)
        else:
            vals = _values(f.dtype, n, rng)
            if f.nullable:
                vals = [None if i % 3 == 1 else v for i, v in enumerate(vals)]
            cols[f.name] = pa.array(vals, t)
    if "$meta" in target.names:
        cols["$meta"] = pa.array(
            [None if i % 4 == 0 else json.dumps({"dyn": i}) for i in range(n)], pa.string()
        )
    cols["_ts"] = pa.array(base_ts + rng.integers(0, 1000, n).astype(np.uint64), pa.uint64())
    return pa.Table.from_arrays([cols[name] for name in target.names], schema=target)
