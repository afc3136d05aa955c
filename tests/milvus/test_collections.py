"""Data definition through pymilvus: collections, fields, partitions, aliases, databases."""

from __future__ import annotations

import time

import pytest
from pymilvus import DataType, MilvusClient, MilvusException

from tests.fixtures.standalone import unique


def test_quick_create_describe_list_drop(client: MilvusClient) -> None:
    name = unique()
    client.create_collection(name, dimension=8)
    assert client.has_collection(name)
    assert name in client.list_collections()
    d = client.describe_collection(name)
    fields = {f["name"]: f for f in d["fields"]}
    assert fields["id"]["type"] == DataType.INT64 and fields["id"]["is_primary"]
    assert fields["vector"]["type"] == DataType.FLOAT_VECTOR
    assert fields["vector"]["params"]["dim"] == 8
    assert sorted(f["field_id"] for f in d["fields"]) == [100, 101]
    assert d["enable_dynamic_field"] is True
    assert client.get_load_state(name)["state"].name == "Loaded"
    client.drop_collection(name)
    assert not client.has_collection(name)


def test_full_schema_with_every_field_type(client: MilvusClient) -> None:
    name = unique()
    schema = MilvusClient.create_schema(auto_id=True, enable_dynamic_field=False)
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("b", DataType.BOOL)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16)
    schema.add_field("i32", DataType.INT32, nullable=True)
    schema.add_field("f", DataType.FLOAT, default_value=1.5)
    schema.add_field("d", DataType.DOUBLE)
    schema.add_field("s", DataType.VARCHAR, max_length=32)
    schema.add_field("j", DataType.JSON)
    schema.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4)
    schema.add_field("bv", DataType.BINARY_VECTOR, dim=16)
    schema.add_field("fv", DataType.FLOAT_VECTOR, dim=4)
    client.create_collection(name, schema=schema)
    d = client.describe_collection(name)
    by = {f["name"]: f for f in d["fields"]}
    assert by["pk"]["auto_id"] is True
    assert by["s"]["params"]["max_length"] == 32
    assert by["arr"]["element_type"] == DataType.INT64 and by["arr"]["params"]["max_capacity"] == 4
    assert by["bv"]["params"]["dim"] == 16
    assert by["i32"].get("nullable") is True
    assert by["f"].get("default_value") is not None
    rows = [
        {
            "b": True,
            "i8": 1,
            "i16": 2,
            "i32": None,
            "d": 2.5,
            "s": "x",
            "j": {"a": 1},
            "arr": [1, 2],
            "bv": bytes([1, 2]),
            "fv": [0.1, 0.2, 0.3, 0.4],
        },
    ]
    res = client.insert(name, rows)
    assert res["insert_count"] == 1
    client.drop_collection(name)


def test_rename_alter_stats(client: MilvusClient) -> None:
    name, new = unique(), unique()
    client.create_collection(name, dimension=4)
    client.rename_collection(name, new)
    assert client.has_collection(new) and not client.has_collection(name)
    client.alter_collection_properties(new, properties={"collection.ttl.seconds": 60})
    assert client.describe_collection(new)["properties"].get("collection.ttl.seconds") == "60"
    client.insert(new, [{"id": i, "vector": [0.0, 0.1, 0.2, float(i)]} for i in range(10)])
    client.flush(new)
    assert client.get_collection_stats(new)["row_count"] == 10
    client.drop_collection(new)


def test_partitions(client: MilvusClient) -> None:
    name = unique()
    client.create_collection(name, dimension=4)
    client.create_partition(name, "p1")
    assert client.has_partition(name, "p1")
    assert set(client.list_partitions(name)) == {"_default", "p1"}
    client.insert(name, [{"id": 1, "vector": [0.1] * 4}], partition_name="p1")
    client.insert(name, [{"id": 2, "vector": [0.2] * 4}])
    got = client.query(name, filter="id > 0", partition_names=["p1"], consistency_level="Strong")
    assert [r["id"] for r in got] == [1]
    client.release_collection(name)
    client.drop_partition(name, "p1")
    assert not client.has_partition(name, "p1")
    with pytest.raises(MilvusException):
        client.insert(name, [{"id": 3, "vector": [0.3] * 4}], partition_name="nope")
    client.drop_collection(name)


def test_aliases(client: MilvusClient) -> None:
    a, b, alias = unique(), unique(), unique("al")
    client.create_collection(a, dimension=4)
    client.create_collection(b, dimension=4)
    client.create_alias(a, alias)
    assert client.describe_alias(alias)["collection_name"] == a
    assert alias in client.list_aliases(a)["aliases"]
    client.insert(alias, [{"id": 7, "vector": [0.1] * 4}])
    assert client.query(a, filter="id == 7", consistency_level="Strong")[0]["id"] == 7
    client.alter_alias(b, alias)
    assert client.describe_alias(alias)["collection_name"] == b
    client.drop_alias(alias)
    client.drop_collection(a)
    client.drop_collection(b)


def test_databases(standalone: object, client: MilvusClient) -> None:
    db = unique("db")
    client.create_database(db)
    assert db in client.list_databases()
    client.use_database(db)
    client.create_collection("inner", dimension=4)
    assert client.list_collections() == ["inner"]
    with pytest.raises(MilvusException):
        client.drop_database(db)  # not empty
    client.drop_collection("inner")
    client.use_database("default")
    client.drop_database(db)
    assert db not in client.list_databases()


@pytest.mark.parametrize("bad", ["1abc", "a-b", "", "x" * 256])
def test_name_rules(client: MilvusClient, bad: str) -> None:
    started = time.monotonic()
    with pytest.raises(MilvusException) as err:
        client.create_collection(bad, dimension=4)
    assert "name" in str(err.value).lower()
    assert time.monotonic() - started < 10  # answered, not retried for minutes


def test_missing_collection_is_code_100(client: MilvusClient) -> None:
    with pytest.raises(MilvusException) as err:
        client.describe_collection(unique("missing"))
    assert err.value.code == 100
    assert not client.has_collection(unique("missing"))


def test_truncate_keeps_schema_and_removes_rows(client: MilvusClient) -> None:
    name = unique()
    client.create_collection(name, dimension=4, consistency_level="Strong")
    client.insert(name, [{"id": i, "vector": [0.1, 0.2, 0.3, float(i)]} for i in range(20)])
    client.flush(name)
    client.insert(name, [{"id": 100 + i, "vector": [0.1, 0.2, 0.3, float(i)]} for i in range(5)])
    client.truncate_collection(name)
    assert client.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == 0
    assert client.get_collection_stats(name)["row_count"] == 0
    client.insert(name, [{"id": 1, "vector": [0.0, 0.0, 0.0, 1.0]}])
    assert [r["id"] for r in client.query(name, filter="id >= 0")] == [1]
    assert client.describe_collection(name)["fields"][1]["params"]["dim"] == 4
    client.drop_collection(name)
