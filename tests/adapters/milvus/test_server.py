"""MilvusServer driven by the real pymilvus MilvusClient, over a RecordingProxy.

These prove translation in both directions: what the client sends reaches the
proxy as the right Pelagos values, and what the proxy answers comes back to
the client correctly decoded. The client is blocking, so each call runs in a
thread while the server serves on the test's event loop.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from pymilvus import AnnSearchRequest, DataType, MilvusClient, MilvusException, RRFRanker, WeightedRanker
from pymilvus.client.types import LoadState

from pelagos.adapters.milvus import MilvusServer
from pelagos.errors import (
    CollectionNotFoundError,
    InvalidArgumentError,
    SchemaMismatchError,
    ServerProcessError,
)
from pelagos.interfaces.types import ConsistencyLevel, QueryRequest, SearchRequest
from pelagos.schema import DataType as PDataType
from tests.adapters.milvus.helpers import SERVER_INFO, call
from tests.adapters.milvus.recording_proxy import RecordingProxy

DIM = 4


def full_schema(client: MilvusClient) -> Any:
    schema = client.create_schema(auto_id=False, enable_dynamic_field=True, description="all types")
    schema.add_field("pk", DataType.INT64, is_primary=True)
    schema.add_field("b", DataType.BOOL)
    schema.add_field("i8", DataType.INT8)
    schema.add_field("i16", DataType.INT16, nullable=True)
    schema.add_field("i32", DataType.INT32, default_value=7)
    schema.add_field("f", DataType.FLOAT)
    schema.add_field("d", DataType.DOUBLE)
    schema.add_field("s", DataType.VARCHAR, max_length=32, is_partition_key=True)
    schema.add_field("j", DataType.JSON, nullable=True)
    schema.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=5)
    schema.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=3, max_length=8)
    schema.add_field("vec", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("bvec", DataType.BINARY_VECTOR, dim=16)
    return schema


def full_rows() -> list[dict[str, Any]]:
    return [
        {
            "pk": i,
            "b": i % 2 == 0,
            "i8": i - 3,
            "i16": None if i == 1 else i * 100,
            "i32": i * 1000,
            "f": i + 0.5,
            "d": i / 3,
            "s": f"s{i}",
            "j": None if i == 2 else {"k": i, "nested": [i, "x"]},
            "arr": list(range(i)),
            "tags": [f"t{i}"] * (i % 3),
            "vec": [float(i), 0.25, -1.0, 2.0],
            "bvec": bytes([i, 255 - i]),
            "color": f"c{i}",  # dynamic key
        }
        for i in range(4)
    ]


async def test_connect_and_version(client: MilvusClient) -> None:
    assert await call(client.get_server_version) == "v2.6.0-pelagos-test"
    info = await call(client.get_server_version, detail=True)
    assert info["deploy_mode"] == "STANDALONE"
    assert info["git_commit"] == "abc"


async def test_quick_create_reaches_proxy_and_polls(client: MilvusClient, proxy: RecordingProxy) -> None:
    await call(client.create_collection, "quick", dimension=8)
    (create,) = proxy.calls_of("create_collection")[-1:]
    db, name, schema = create.args
    assert (db, name) == ("default", "quick")
    assert schema.enable_dynamic_field
    pk, vec = schema.fields
    assert (pk.name, pk.dtype, pk.is_primary, pk.auto_id) == ("id", PDataType.INT64, True, False)
    assert (vec.name, vec.dtype, vec.dim) == ("vector", PDataType.FLOAT_VECTOR, 8)
    assert create.kwargs["consistency_level"] == ConsistencyLevel.BOUNDED
    index = proxy.calls_of("create_index")[-1]
    assert index.args == (
        "default",
        "quick",
        "vector",
        "vector",
        {"index_type": "AUTOINDEX", "metric_type": "COSINE"},
    )
    assert proxy.calls_of("load")[-1].args[:3] == ("default", "quick", [])
    assert await call(client.has_collection, "quick")
    assert "quick" in await call(client.list_collections)
    assert (await call(client.get_load_state, "quick"))["state"] == LoadState.Loaded


async def test_full_schema_round_trips(client: MilvusClient, proxy: RecordingProxy) -> None:
    await call(
        client.create_collection,
        "full",
        schema=full_schema(client),
        consistency_level="Strong",
        properties={"collection.ttl.seconds": "60"},
    )
    create = proxy.calls_of("create_collection")[-1]
    schema = create.args[2]
    by = {f.name: f for f in schema.fields}
    assert [f.name for f in schema.fields] == [
        "pk", "b", "i8", "i16", "i32", "f", "d", "s", "j", "arr", "tags", "vec", "bvec",
    ]  # fmt: skip
    assert by["i16"].nullable and by["j"].nullable and not by["b"].nullable
    assert by["i32"].default_value == 7
    assert by["s"].max_length == 32 and by["s"].is_partition_key
    assert (by["arr"].element_type, by["arr"].max_capacity) == (PDataType.INT64, 5)
    assert (by["tags"].element_type, by["tags"].max_length) == (PDataType.VARCHAR, 8)
    assert by["bvec"].dim == 16
    assert create.kwargs["consistency_level"] == ConsistencyLevel.STRONG
    assert create.kwargs["properties"] == {"collection.ttl.seconds": "60"}

    desc = await call(client.describe_collection, "full")
    assert desc["collection_name"] == "full"
    assert desc["enable_dynamic_field"] is True
    assert desc["description"] == "all types"
    fields = {f["name"]: f for f in desc["fields"]}
    assert "$meta" not in fields
    assert fields["vec"]["params"] == {"dim": DIM}
    assert fields["pk"]["field_id"] == 100 and fields["pk"]["is_primary"]
    assert fields["i32"]["default_value"].int_data == 7
    assert fields["arr"]["element_type"] == DataType.INT64
    assert fields["arr"]["params"]["max_capacity"] == 5
    assert fields["s"].get("is_partition_key") is True
    assert desc["consistency_level"] == ConsistencyLevel.STRONG
    assert desc["properties"] == {"collection.ttl.seconds": "60"}


async def test_insert_reaches_proxy_as_arrow(client: MilvusClient, proxy: RecordingProxy) -> None:
    res = await call(client.insert, "full", full_rows())
    assert res["insert_count"] == 4
    assert list(res["ids"]) == [0, 1, 2, 3]
    rows: pa.Table = proxy.calls_of("insert")[-1].args[3]
    assert proxy.calls_of("insert")[-1].args[2] is None  # default partition
    assert rows.column("pk").to_pylist() == [0, 1, 2, 3]
    assert rows.schema.field("i8").type == pa.int8()
    assert rows.column("i8").to_pylist() == [-3, -2, -1, 0]
    assert rows.schema.field("i16").type == pa.int16()
    assert rows.column("i16").to_pylist() == [0, None, 200, 300]
    assert rows.column("f").to_pylist() == [0.5, 1.5, 2.5, 3.5]
    assert rows.column("j").to_pylist()[2] is None
    assert json.loads(rows.column("j")[3].as_py()) == {"k": 3, "nested": [3, "x"]}
    assert rows.column("arr").to_pylist() == [[], [0], [0, 1], [0, 1, 2]]
    assert rows.column("tags").to_pylist() == [[], ["t1"], ["t2", "t2"], []]
    assert rows.schema.field("vec").type == pa.list_(pa.float32(), DIM)
    assert rows.column("vec")[1].as_py() == [1.0, 0.25, -1.0, 2.0]
    assert rows.schema.field("bvec").type == pa.binary(2)
    assert rows.column("bvec").to_pylist()[3] == bytes([3, 252])
    assert [json.loads(x)["color"] for x in rows.column("$meta").to_pylist()] == ["c0", "c1", "c2", "c3"]


async def test_query_results_decode(client: MilvusClient, proxy: RecordingProxy) -> None:
    got = await call(client.query, "full", filter="pk >= 0", output_fields=["*"], limit=10)
    assert len(got) == 4
    expected = full_rows()
    for row, want in zip(got, expected, strict=True):
        for key in ("pk", "b", "i8", "i16", "s", "arr", "tags", "color"):
            assert row[key] == want[key], key
        assert row["f"] == pytest.approx(want["f"])
        assert row["d"] == pytest.approx(want["d"])
        assert row["j"] == want["j"]
        assert row["vec"] == pytest.approx(want["vec"])
        assert row["bvec"] == [want["bvec"]]
        assert "$meta" not in row
    q: QueryRequest = proxy.calls_of("query")[-1].args[0]
    assert (q.filter, q.limit, q.offset, q.output_fields) == ("pk >= 0", 10, 0, ["*"])
    count = await call(client.query, "full", filter="", output_fields=["count(*)"])
    assert count[0]["count(*)"] == 4


async def test_query_dynamic_key_only(client: MilvusClient) -> None:
    got = await call(client.query, "full", filter="pk > 1", output_fields=["color"], limit=2)
    assert [r["color"] for r in got] == ["c0", "c1"]  # the recording proxy ignores the filter
    assert all(set(r) == {"pk", "color"} for r in got)


async def test_search_results_decode(client: MilvusClient, proxy: RecordingProxy) -> None:
    queries = [[1.0, 0.0, 0.0, 0.0], [0.0, 2.0, 0.0, 1.0]]
    got = await call(
        client.search,
        "full",
        data=queries,
        limit=3,
        filter="i32 > {x}",
        filter_params={"x": 5},
        output_fields=["s", "vec", "j", "color"],
        search_params={"metric_type": "L2", "params": {"ef": 32}},
        anns_field="vec",
        consistency_level="Session",
    )
    s: SearchRequest = proxy.calls_of("search")[-1].args[0]
    np.testing.assert_array_equal(s.vectors, np.asarray(queries, dtype=np.float32))
    assert (s.limit, s.anns_field, s.metric_type, s.params) == (3, "vec", "L2", {"ef": 32})
    assert (s.filter, s.filter_params) == ("i32 > {x}", {"x": 5})
    assert s.options.consistency_level == ConsistencyLevel.SESSION
    assert s.options.guarantee_ts > 1  # the client's last write timestamp
    result = proxy.last_search
    assert result is not None
    assert len(got) == 2
    for qi, hits in enumerate(got):
        assert [h["pk"] for h in hits] == [0, 1, 2]
        want = result.scores[qi * 3 : qi * 3 + 3]
        assert [h["distance"] for h in hits] == pytest.approx(want.tolist())
        for h in hits:
            pk = h["pk"]
            assert h["entity"]["s"] == f"s{pk}"
            assert h["entity"]["vec"] == pytest.approx(full_rows()[pk]["vec"])
            assert h["entity"]["j"] == full_rows()[pk]["j"]
            assert h["entity"]["color"] == f"c{pk}"


async def test_binary_vector_search_placeholder(client: MilvusClient, proxy: RecordingProxy) -> None:
    await call(client.search, "full", data=[bytes([1, 2])], limit=1, anns_field="bvec")
    s: SearchRequest = proxy.calls_of("search")[-1].args[0]
    assert s.vectors.dtype == np.uint8
    np.testing.assert_array_equal(s.vectors, np.array([[1, 2]], dtype=np.uint8))


async def test_hybrid_search_reaches_proxy(client: MilvusClient, proxy: RecordingProxy) -> None:
    reqs = [
        AnnSearchRequest([[1.0, 0.0, 0.0, 0.0]], "vec", {"metric_type": "L2"}, limit=2),
        AnnSearchRequest([bytes([1, 2])], "bvec", {"metric_type": "HAMMING"}, limit=2, expr="pk > 0"),
    ]
    got = await call(client.hybrid_search, "full", reqs, RRFRanker(30), limit=2, output_fields=["s"])
    h = proxy.calls_of("hybrid_search")[-1].args[0]
    assert (h.ranker.kind, h.ranker.k, h.limit) == ("rrf", 30, 2)
    assert [r.anns_field for r in h.requests] == ["vec", "bvec"]
    assert h.requests[1].filter == "pk > 0"
    assert h.output_fields == ["s"]
    assert [hit["entity"]["s"] for hit in got[0]] == ["s0", "s1"]
    await call(client.hybrid_search, "full", reqs, WeightedRanker(0.3, 0.7), limit=2)
    w = proxy.calls_of("hybrid_search")[-1].args[0]
    assert (w.ranker.kind, w.ranker.weights, w.ranker.normalize) == ("weighted", [0.3, 0.7], True)


async def test_delete_upsert_flush_stats(client: MilvusClient, proxy: RecordingProxy) -> None:
    deleted = await call(client.delete, "full", ids=[1, 2])
    assert deleted["delete_count"] == 2
    d = proxy.calls_of("delete")[-1]
    assert d.args[3] == "pk in [1,2]"
    up = await call(client.upsert, "full", full_rows()[:2])
    assert up["upsert_count"] == 2
    await call(client.flush, "full")
    assert proxy.calls_of("flush")[-1].args == ("default", ["full"])
    assert proxy.calls_of("flush_state")
    stats = await call(client.get_collection_stats, "full")
    assert stats["row_count"] == 6


async def test_indexes(client: MilvusClient, proxy: RecordingProxy) -> None:
    params = client.prepare_index_params()
    params.add_index("vec", index_type="HNSW", index_name="vec_idx", metric_type="L2", params={"M": 8})
    await call(client.create_index, "full", params)
    c = proxy.calls_of("create_index")[-1]
    assert c.args[2:] == ("vec", "vec_idx", {"index_type": "HNSW", "metric_type": "L2", "M": "8"})
    desc = await call(client.describe_index, "full", "vec_idx")
    assert desc["index_type"] == "HNSW" and desc["metric_type"] == "L2"
    assert desc["params"] == {"M": 8}
    assert desc["state"] == "Finished"
    assert await call(client.list_indexes, "full") == ["vec_idx"]
    await call(client.drop_index, "full", "vec_idx")
    assert await call(client.list_indexes, "full") == []  # IndexNotFound (700) reads as "no indexes"


async def test_partitions_aliases_databases(client: MilvusClient, proxy: RecordingProxy) -> None:
    await call(client.create_partition, "full", "p1")
    assert await call(client.has_partition, "full", "p1")
    assert await call(client.list_partitions, "full") == ["_default", "p1"]
    assert (await call(client.get_partition_stats, "full", "p1"))["row_count"] == 3
    await call(client.create_alias, "full", "full_alias")
    assert (await call(client.describe_alias, "full_alias"))["collection_name"] == "full"
    assert (await call(client.list_aliases, "full"))["aliases"] == ["full_alias"]
    await call(client.create_database, "db2", properties={"k": "v"})
    assert "db2" in await call(client.list_databases)
    assert (await call(client.describe_database, "db2"))["k"] == "v"
    with pytest.raises(MilvusException) as err:
        await call(client.describe_database, "nope")
    assert err.value.code == 800


async def test_engine_error_is_not_retried(client: MilvusClient, proxy: RecordingProxy) -> None:
    assert not await call(client.has_collection, "missing")
    with pytest.raises(MilvusException) as err:
        await call(client.describe_collection, "missing")
    assert err.value.code == 100
    assert "collection not found" in err.value.message and "missing" in err.value.message

    before = len(proxy.calls_of("drop_collection"))
    proxy.fail["drop_collection"] = InvalidArgumentError("that is not allowed")
    with pytest.raises(MilvusException) as err:
        await call(client.drop_collection, "full")
    assert err.value.code == 1100
    assert "that is not allowed" in err.value.message
    assert len(proxy.calls_of("drop_collection")) == before + 1  # one call: no retry storm

    before = len(proxy.calls_of("list_collections"))
    proxy.fail["list_collections"] = RuntimeError("engine bug")
    with pytest.raises(MilvusException) as err:
        await call(client.list_collections)
    assert err.value.code == 1
    assert "engine bug" in err.value.message
    assert len(proxy.calls_of("list_collections")) == before + 1


async def test_schema_mismatch_refreshes_and_retries_once(
    client: MilvusClient, proxy: RecordingProxy
) -> None:
    inserts = len(proxy.calls_of("insert"))
    describes = len(proxy.calls_of("describe_collection"))
    proxy.fail["insert"] = SchemaMismatchError("the collection was recreated; refresh the schema")
    res = await call(client.insert, "full", full_rows()[:1])
    assert res["insert_count"] == 1
    assert len(proxy.calls_of("insert")) == inserts + 2
    assert len(proxy.calls_of("describe_collection")) > describes  # the cache was refreshed


async def test_not_found_during_write(client: MilvusClient, proxy: RecordingProxy) -> None:
    proxy.fail["load"] = CollectionNotFoundError("collection full is gone")
    with pytest.raises(MilvusException) as err:
        await call(client.load_collection, "full")
    assert err.value.code == 100


async def test_unimplemented_rpc_fails_promptly(client: MilvusClient) -> None:
    with pytest.raises(Exception, match="not implemented by Pelagos"):
        await call(client.list_users)
    assert await call(client.has_collection, "full")  # the connection still serves


async def test_port_taken_is_a_clear_error(server: MilvusServer, proxy: RecordingProxy) -> None:
    second = MilvusServer(proxy, "127.0.0.1", server.port, server_info=SERVER_INFO)
    with pytest.raises(ServerProcessError, match=str(server.port)):
        await second.start()
