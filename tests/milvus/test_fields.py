"""Field types, nulls, defaults, JSON, arrays, partition keys and partition loads through pymilvus."""

from __future__ import annotations

import pytest
from pymilvus import DataType, MilvusClient

from tests.fixtures.standalone import unique


def _vec(i: int) -> list[float]:
    return [0.1, 0.2, 0.3, float(i)]


def test_every_scalar_type_round_trips_with_nulls_and_defaults(client: MilvusClient) -> None:
    name = unique()
    schema = MilvusClient.create_schema(enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("b", DataType.BOOL)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16)
    schema.add_field("i32", DataType.INT32, nullable=True)
    schema.add_field("f", DataType.FLOAT, default_value=1.5)
    schema.add_field("d", DataType.DOUBLE)
    schema.add_field("s", DataType.VARCHAR, max_length=8, nullable=True)
    schema.add_field("j", DataType.JSON)
    schema.add_field("arr", DataType.ARRAY, element_type=DataType.VARCHAR, max_length=4, max_capacity=3)
    client.create_collection(name, schema=schema, consistency_level="Strong")
    idx = client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index(name, idx)
    client.load_collection(name)
    rows = [
        {
            "id": 1,
            "v": _vec(1),
            "b": True,
            "i8": -8,
            "i16": 300,
            "i32": None,
            "d": 2.25,
            "s": None,
            "j": {"a": {"b": 3}, "tags": ["x"]},
            "arr": ["p", "q"],
            "extra": "dyn",
        },
        {
            "id": 2,
            "v": _vec(2),
            "b": False,
            "i8": 7,
            "i16": -2,
            "i32": 42,
            "f": 9.0,
            "d": -1.0,
            "s": "hey",
            "j": [1, 2],
            "arr": [],
        },
    ]
    client.insert(name, rows)
    got = {r["id"]: r for r in client.query(name, filter="id > 0", output_fields=["*"])}
    assert got[1]["i32"] is None and got[2]["i32"] == 42
    assert got[1]["f"] == pytest.approx(1.5) and got[2]["f"] == pytest.approx(9.0)
    assert got[1]["s"] is None and got[2]["s"] == "hey"
    assert got[1]["j"] == {"a": {"b": 3}, "tags": ["x"]} and got[2]["j"] == [1, 2]
    assert got[1]["arr"] == ["p", "q"] and got[2]["arr"] == []
    assert got[1]["i8"] == -8 and got[1]["i16"] == 300 and got[1]["b"] is True
    assert got[1]["extra"] == "dyn"
    assert [r["id"] for r in client.query(name, filter='j["a"]["b"] == 3')] == [1]
    assert [r["id"] for r in client.query(name, filter='array_contains(arr, "q")')] == [1]
    assert [r["id"] for r in client.query(name, filter="i32 is null")] == [1]
    assert [r["id"] for r in client.query(name, filter='extra == "dyn"')] == [1]
    client.drop_collection(name)


def test_partition_key_routes_rows_and_filters_work(client: MilvusClient) -> None:
    name = unique()
    schema = MilvusClient.create_schema()
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    schema.add_field("tenant", DataType.VARCHAR, max_length=16, is_partition_key=True)
    client.create_collection(name, schema=schema, num_partitions=4, consistency_level="Strong")
    assert len(client.list_partitions(name)) == 4
    idx = client.prepare_index_params()
    idx.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_index(name, idx)
    client.load_collection(name)
    client.insert(name, [{"id": i, "v": _vec(i), "tenant": f"t{i % 5}"} for i in range(50)])
    got = client.query(name, filter='tenant == "t3"', output_fields=["tenant"])
    assert sorted(r["id"] for r in got) == [i for i in range(50) if i % 5 == 3]
    hits = client.search(name, data=[_vec(13)], limit=3, filter='tenant == "t3"')
    assert hits[0][0]["id"] == 13 and all(h["id"] % 5 == 3 for h in hits[0])
    client.drop_collection(name)


def test_load_and_release_partitions_and_their_statistics(client: MilvusClient) -> None:
    name = unique()
    client.create_collection(name, dimension=4, consistency_level="Strong")
    client.create_partition(name, "p1")
    client.insert(name, [{"id": i, "vector": _vec(i)} for i in range(10)], partition_name="p1")
    client.insert(name, [{"id": 100 + i, "vector": _vec(i)} for i in range(5)])
    client.flush(name)
    assert client.get_partition_stats(name, "p1")["row_count"] == 10
    assert client.get_partition_stats(name, "_default")["row_count"] == 5
    client.release_collection(name)
    client.load_partitions(name, ["p1"])
    assert client.get_load_state(name, partition_name="p1")["state"].name == "Loaded"
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 10
    client.release_partitions(name, ["p1"])
    assert client.get_load_state(name)["state"].name == "NotLoad"
    client.drop_collection(name)
