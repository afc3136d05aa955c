"""field_data: FieldData columns <-> Arrow tables, checked against pymilvus's own encoder and decoder."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pymilvus.client import field_data_extractors
from pymilvus.client.abstract import CollectionSchema as ClientSchemaView
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import milvus_pb2, schema_pb2

from pelagos.adapters.milvus.field_data import column_to_field, fields_to_table, ids_to_proto, table_to_fields
from pelagos.adapters.milvus.packed import append_fixed, read_fixed
from pelagos.adapters.milvus.schema_codec import schema_to_proto
from pelagos.errors import InvalidArgumentError, UnsupportedError
from pelagos.schema import CollectionSchema, DataType, FieldSchema

SCHEMA = CollectionSchema(
    fields=[
        FieldSchema("id", DataType.INT64, field_id=100, is_primary=True),
        FieldSchema("b", DataType.BOOL, field_id=101, nullable=True),
        FieldSchema("i8", DataType.INT8, field_id=102),
        FieldSchema("i16", DataType.INT16, field_id=103, nullable=True),
        FieldSchema("i32", DataType.INT32, field_id=104, default_value=5),
        FieldSchema("f", DataType.FLOAT, field_id=105, nullable=True),
        FieldSchema("d", DataType.DOUBLE, field_id=106),
        FieldSchema("s", DataType.VARCHAR, field_id=107, max_length=20, nullable=True),
        FieldSchema("j", DataType.JSON, field_id=108, nullable=True),
        FieldSchema("ab", DataType.ARRAY, field_id=109, element_type=DataType.BOOL, max_capacity=4),
        FieldSchema(
            "ai", DataType.ARRAY, field_id=110, element_type=DataType.INT32, max_capacity=4, nullable=True
        ),
        FieldSchema("al", DataType.ARRAY, field_id=111, element_type=DataType.INT64, max_capacity=4),
        FieldSchema("af", DataType.ARRAY, field_id=112, element_type=DataType.FLOAT, max_capacity=4),
        FieldSchema("ad", DataType.ARRAY, field_id=113, element_type=DataType.DOUBLE, max_capacity=4),
        FieldSchema(
            "as_", DataType.ARRAY, field_id=114, element_type=DataType.VARCHAR, max_capacity=4, max_length=5
        ),
        FieldSchema("v", DataType.FLOAT_VECTOR, field_id=115, dim=3),
        FieldSchema("bv", DataType.BINARY_VECTOR, field_id=116, dim=16),
    ],
    enable_dynamic_field=True,
)


def rows() -> list[dict[str, Any]]:
    return [
        {
            "id": i,
            "b": None if i == 1 else i % 2 == 0,
            "i8": -i,
            "i16": None if i == 2 else i * 300,
            "f": None if i == 0 else i / 4,
            "d": i * 1.5,
            "s": None if i == 3 else f"row{i}",
            "j": None if i == 1 else {"n": i, "list": [1, "a"]},
            "ab": [True, False][: i % 3],
            "ai": None if i == 2 else list(range(i)),
            "al": [1 << 40, i],
            "af": [0.5 * i],
            "ad": [],
            "as_": ["x"] * i,
            "v": [i, -i, 0.25],
            "bv": bytes([i, 2 * i]),
            **({"extra": i} if i % 2 else {}),
        }
        for i in range(4)
    ]


def pymilvus_insert(entities: list[dict[str, Any]]) -> milvus_pb2.InsertRequest:
    """An InsertRequest exactly as pymilvus's MilvusClient.insert builds it."""
    view = ClientSchemaView(
        raw=milvus_pb2.DescribeCollectionResponse(schema=schema_to_proto(SCHEMA, "c"))
    ).dict()
    return Prepare.row_insert_param("c", entities, "", view["fields"], enable_dynamic=True)


def test_pymilvus_rows_decode_to_arrow() -> None:
    req = pymilvus_insert(rows())
    table = fields_to_table(req.fields_data, req.num_rows)
    want = rows()
    assert table.num_rows == 4
    assert table.schema.field("i8").type == pa.int8()
    assert table.schema.field("i16").type == pa.int16()
    assert table.schema.field("f").type == pa.float32()
    assert table.schema.field("j").type == pa.string()
    assert table.schema.field("v").type == pa.list_(pa.float32(), 3)
    assert table.schema.field("bv").type == pa.binary(2)
    for name in ("id", "b", "i8", "i16", "d", "s", "ab", "ai", "al", "as_", "bv"):
        assert table.column(name).to_pylist() == [r[name] for r in want], name
    assert table.column("f").to_pylist() == [None, 0.25, 0.5, 0.75]
    assert table.column("af").to_pylist() == [[0.0], [0.5], [1.0], [1.5]]
    assert table.column("ad").to_pylist() == [[], [], [], []]
    assert [None if x is None else json.loads(x) for x in table.column("j").to_pylist()] == [
        r["j"] for r in want
    ]
    assert table.column("v").to_pylist() == [[float(i), float(-i), 0.25] for i in range(4)]
    assert table.column("i32").to_pylist() == [None] * 4  # missing -> the proxy applies the default
    assert [json.loads(x) for x in table.column("$meta").to_pylist()] == [{}, {"extra": 1}, {}, {"extra": 3}]


def test_dense_nulls_are_accepted() -> None:
    fd = schema_pb2.FieldData(type=DataType.INT64, field_name="x")
    fd.scalars.long_data.data.extend([7, 0, 9])
    fd.valid_data.extend([True, False, True])
    assert fields_to_table([fd]).column("x").to_pylist() == [7, None, 9]


def test_row_counts_must_agree() -> None:
    a = schema_pb2.FieldData(type=DataType.INT64, field_name="a")
    a.scalars.long_data.data.extend([1, 2])
    b = schema_pb2.FieldData(type=DataType.BOOL, field_name="b")
    b.scalars.bool_data.data.extend([True])
    with pytest.raises(InvalidArgumentError, match="'b' has 1 rows"):
        fields_to_table([a, b])
    nulls = schema_pb2.FieldData(type=DataType.INT64, field_name="n")
    nulls.scalars.long_data.data.extend([1, 2])
    nulls.valid_data.extend([True, False, False])
    with pytest.raises(InvalidArgumentError, match="'n'"):
        fields_to_table([nulls])


def test_int8_out_of_range_and_unsupported_types() -> None:
    fd = schema_pb2.FieldData(type=DataType.INT8, field_name="small")
    fd.scalars.int_data.data.extend([1, 300])
    with pytest.raises(InvalidArgumentError, match="small"):
        fields_to_table([fd])
    f16 = schema_pb2.FieldData(type=schema_pb2.DataType.Value("Float16Vector"), field_name="h")
    with pytest.raises(UnsupportedError, match="Float16Vector"):
        fields_to_table([f16])


def output_table() -> pa.Table:
    return pa.table(
        {
            "id": pa.array([1, 2, 3], pa.int64()),
            "b": pa.array([True, None, False]),
            "i8": pa.array([1, -2, 3], pa.int8()),
            "i16": pa.array([None, 2, 3], pa.int16()),
            "i32": pa.array([10, 20, None], pa.int32()),
            "f": pa.array([0.5, None, 1.5], pa.float32()),
            "d": pa.array([0.1, 0.2, None], pa.float64()),
            "s": pa.array(["a", None, "ccc"]),
            "j": pa.array(['{"a": 1}', None, "[1, 2]"]),
            "ai": pa.array([[1, 2], None, []], pa.list_(pa.int32())),
            "as_": pa.array([["x"], ["y", "z"], []], pa.list_(pa.string())),
            "af": pa.array([[0.5], [], [1.5, 2.5]], pa.list_(pa.float32())),
            "v": pa.FixedSizeListArray.from_arrays(pa.array(np.arange(9, dtype=np.float32)), 3),
            "bv": pa.array([b"\x01\x02", None, b"\x05\x06"], pa.binary(2)),
            "$meta": pa.array(['{"k": 1}', None, '{"k": 3}']),
            "_ts": pa.array([1, 2, 3], pa.uint64()),
        }
    )


def client_values(fd: schema_pb2.FieldData, n: int) -> list[Any]:
    """What pymilvus decodes from one FieldData (the search-result path)."""
    if fd.type in (DataType.FLOAT_VECTOR, DataType.BINARY_VECTOR, DataType.JSON):
        return [field_data_extractors.decode_cell(fd, i) for i in range(n)]
    return field_data_extractors.decode_range(fd, 0, n)


def test_outputs_decode_in_pymilvus() -> None:
    table = output_table()
    fields = table_to_fields(table, SCHEMA)
    by = {fd.field_name: fd for fd in fields}
    assert "_ts" not in by
    assert by["j"].type == DataType.JSON and by["s"].type == DataType.VARCHAR
    assert by["$meta"].is_dynamic and by["$meta"].type == DataType.JSON
    assert by["id"].field_id == 100
    got = {name: client_values(fd, 3) for name, fd in by.items()}
    for name in ("id", "b", "i8", "i16", "i32", "s", "ai", "as_"):
        assert got[name] == table.column(name).to_pylist(), name
    assert got["f"] == [0.5, None, 1.5]
    assert got["d"][:2] == pytest.approx([0.1, 0.2])
    assert got["d"][2] is None
    assert got["af"] == [[0.5], [], [1.5, 2.5]]
    assert got["j"] == [{"a": 1}, None, [1, 2]]
    assert got["$meta"] == [{"k": 1}, {}, {"k": 3}]  # no "$meta: None" rows for the client
    assert [list(v) for v in got["v"]] == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert got["bv"] == [b"\x01\x02", None, b"\x05\x06"]
    assert len(by["bv"].vectors.binary_vector) == 4  # compact: valid rows only
    assert list(by["ai"].valid_data) == [True, False, True]
    assert not by["$meta"].valid_data


def test_round_trip_table_fields_table() -> None:
    table = output_table().drop_columns(["_ts"])
    fields = table_to_fields(table, SCHEMA)
    back = fields_to_table(fields)
    assert back.column_names == table.column_names
    for name in table.column_names:
        want = table.column(name)
        if name == "$meta":
            want = pa.chunked_array([pa.array(['{"k": 1}', "{}", '{"k": 3}'])])
        assert back.column(name).combine_chunks().equals(want.combine_chunks()), name


def test_without_schema_strings_are_varchar() -> None:
    fd = column_to_field("s", pa.array(["a", "b"]))
    assert fd.type == DataType.VARCHAR
    assert list(fd.scalars.string_data.data) == ["a", "b"]
    count = column_to_field("count(*)", pa.array([42], pa.int64()))
    assert (count.type, list(count.scalars.long_data.data)) == (DataType.INT64, [42])


def test_chunked_and_sliced_columns() -> None:
    col = pa.chunked_array(
        [pa.array([[1], [2, 3]], pa.list_(pa.int64())), pa.array([[4]], pa.list_(pa.int64()))]
    )
    fd = column_to_field("a", col)
    assert field_data_extractors.decode_range(fd, 0, 3) == [[1], [2, 3], [4]]
    vec = pa.FixedSizeListArray.from_arrays(pa.array(np.arange(8, dtype=np.float32)), 2).slice(1, 2)
    fdv = column_to_field("v", vec)
    assert list(fdv.vectors.float_vector.data) == [2, 3, 4, 5]
    bvec = pa.array([b"ab", b"cd", b"ef"], pa.binary(2)).slice(1)
    assert column_to_field("bv", bvec).vectors.binary_vector == b"cdef"


def test_ids() -> None:
    ids = schema_pb2.IDs()
    ids_to_proto(ids, pa.chunked_array([pa.array([5, 6], pa.int64())]))
    assert list(ids.int_id.data) == [5, 6]
    sids = schema_pb2.IDs()
    ids_to_proto(sids, pa.array(["a", "b"]))
    assert list(sids.str_id.data) == ["a", "b"]
    empty = schema_pb2.IDs()
    ids_to_proto(empty, pa.array([], pa.int64()))
    assert empty.HasField("int_id")


def test_packed_fixed_moves() -> None:
    values = np.random.default_rng(0).standard_normal(1000).astype(np.float32)
    msg = schema_pb2.FloatArray()
    append_fixed(msg, 1, values, np.float32)
    assert np.array_equal(np.asarray(msg.data, dtype=np.float32), values)
    assert np.array_equal(read_fixed(msg, np.float32), values)
    append_fixed(msg, 1, values[:3], np.float32)  # appends
    assert len(msg.data) == 1003
    d = schema_pb2.DoubleArray(data=[1.5, -2.0])
    assert read_fixed(d, np.float64).tolist() == [1.5, -2.0]
    assert read_fixed(schema_pb2.DoubleArray(), np.float64).size == 0
