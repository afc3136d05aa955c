"""MilvusServer driven by raw gRPC stubs: headers, and RPCs MilvusClient rarely sends."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import grpc
import pytest
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

from pelagos.adapters.milvus import MilvusServer
from pelagos.adapters.milvus.servicer import implemented_rpcs, unimplemented_rpcs
from pelagos.errors import ServiceUnavailableError
from pelagos.interfaces.types import ConsistencyLevel, IndexInfo, IndexState
from tests.adapters.milvus.recording_proxy import RecordingProxy

DB = [("dbname", "books")]


@pytest.fixture(scope="module")
async def stub(server: MilvusServer) -> AsyncIterator[Any]:
    async with grpc.aio.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield milvus_pb2_grpc.MilvusServiceStub(channel)


@pytest.fixture(scope="module")
async def books(stub: Any, proxy: RecordingProxy) -> str:
    schema = schema_pb2.CollectionSchema(
        fields=[
            schema_pb2.FieldSchema(
                name="id", data_type=schema_pb2.DataType.Value("Int64"), is_primary_key=True
            ),
            schema_pb2.FieldSchema(
                name="v",
                data_type=schema_pb2.DataType.Value("FloatVector"),
                type_params=[common_pb2.KeyValuePair(key="dim", value="2")],
            ),
        ]
    )
    status = await stub.CreateCollection(
        milvus_pb2.CreateCollectionRequest(collection_name="novels", schema=schema.SerializeToString()),
        metadata=DB,
    )
    assert status.code == 0, status.reason
    return "novels"


async def test_dbname_header_and_request_field(stub: Any, proxy: RecordingProxy, books: str) -> None:
    assert proxy.calls_of("create_collection")[-1].args[:2] == ("books", "novels")
    reply = await stub.DescribeCollection(
        milvus_pb2.DescribeCollectionRequest(collection_name=books), metadata=DB
    )
    assert reply.status.code == 0 and reply.db_name == "books"
    missing = await stub.DescribeCollection(milvus_pb2.DescribeCollectionRequest(collection_name=books))
    assert missing.status.code == 100  # no header: the default database, where it does not exist
    assert missing.status.reason.startswith("collection not found[database=default][collection=novels]")
    in_field = await stub.DescribeCollection(
        milvus_pb2.DescribeCollectionRequest(db_name="books", collection_name=books)
    )
    assert in_field.status.code == 0


async def test_connect_identifiers_are_unique(stub: Any) -> None:
    a = await stub.Connect(milvus_pb2.ConnectRequest())
    b = await stub.Connect(milvus_pb2.ConnectRequest())
    assert a.status.code == 0 and a.identifier != b.identifier
    assert a.server_info.build_tags == "v2.6.0-pelagos-test"


async def test_show_collections_in_memory(stub: Any, books: str) -> None:
    all_ = await stub.ShowCollections(milvus_pb2.ShowCollectionsRequest(), metadata=DB)
    assert list(all_.collection_names) == [books] and len(all_.created_utc_timestamps) == 1
    in_memory = milvus_pb2.ShowCollectionsRequest(type=milvus_pb2.ShowType.Value("InMemory"))
    assert list((await stub.ShowCollections(in_memory, metadata=DB)).collection_names) == []
    assert (
        await stub.LoadCollection(milvus_pb2.LoadCollectionRequest(collection_name=books), metadata=DB)
    ).code == 0
    loaded = await stub.ShowCollections(in_memory, metadata=DB)
    assert list(loaded.collection_names) == [books] and list(loaded.inMemory_percentages) == [100]
    named = milvus_pb2.ShowCollectionsRequest(collection_names=["nope"])
    assert (await stub.ShowCollections(named, metadata=DB)).status.code == 100


async def test_load_partitions_and_progress(stub: Any, proxy: RecordingProxy, books: str) -> None:
    req = milvus_pb2.LoadPartitionsRequest(
        collection_name=books, partition_names=["_default"], replica_number=2
    )
    assert (await stub.LoadPartitions(req, metadata=DB)).code == 0
    assert proxy.calls_of("load")[-1].args == ("books", books, ["_default"], 2)
    progress = await stub.GetLoadingProgress(
        milvus_pb2.GetLoadingProgressRequest(collection_name=books, partition_names=["_default"]), metadata=DB
    )
    assert (progress.progress, progress.refresh_progress) == (100, 100)
    state = await stub.GetLoadState(milvus_pb2.GetLoadStateRequest(collection_name=books), metadata=DB)
    assert state.state == common_pb2.LoadState.Value("LoadStateLoaded")
    release = milvus_pb2.ReleasePartitionsRequest(collection_name=books, partition_names=["_default"])
    assert (await stub.ReleasePartitions(release, metadata=DB)).code == 0
    state = await stub.GetLoadState(milvus_pb2.GetLoadStateRequest(collection_name=books), metadata=DB)
    assert state.state == common_pb2.LoadState.Value("LoadStateNotLoad")


async def test_index_state_aggregates(stub: Any, proxy: RecordingProxy, books: str) -> None:
    coll = proxy.colls[("books", books)]
    coll.indexes = [
        IndexInfo(books, "v", "a", 1, {}, IndexState.FINISHED, total_rows=10, indexed_rows=10),
        IndexInfo(books, "v2", "b", 2, {}, IndexState.IN_PROGRESS, total_rows=10, indexed_rows=4),
    ]
    state = await stub.GetIndexState(milvus_pb2.GetIndexStateRequest(collection_name=books), metadata=DB)
    assert state.state == IndexState.IN_PROGRESS
    progress = await stub.GetIndexBuildProgress(
        milvus_pb2.GetIndexBuildProgressRequest(collection_name=books), metadata=DB
    )
    assert (progress.indexed_rows, progress.total_rows) == (14, 20)
    coll.indexes[1].state, coll.indexes[1].fail_reason = IndexState.FAILED, "out of memory"
    state = await stub.GetIndexState(milvus_pb2.GetIndexStateRequest(collection_name=books), metadata=DB)
    assert state.state == IndexState.FAILED and "out of memory" in state.fail_reason
    one = await stub.DescribeIndex(
        milvus_pb2.DescribeIndexRequest(collection_name=books, index_name="a"), metadata=DB
    )
    assert [d.index_name for d in one.index_descriptions] == ["a"]
    alter = milvus_pb2.AlterIndexRequest(
        collection_name=books,
        index_name="a",
        extra_params=[common_pb2.KeyValuePair(key="mmap.enabled", value="true")],
    )
    assert (await stub.AlterIndex(alter, metadata=DB)).code == 0
    assert proxy.calls_of("alter_index")[-1].args == ("books", books, "a", {"mmap.enabled": "true"}, [])
    coll.indexes = []


async def test_health_and_timestamps(stub: Any, proxy: RecordingProxy) -> None:
    health = await stub.CheckHealth(milvus_pb2.CheckHealthRequest())
    assert health.status.code == 0 and health.isHealthy
    proxy.fail["allocate_timestamp"] = ServiceUnavailableError("the coordinator is starting")
    health = await stub.CheckHealth(milvus_pb2.CheckHealthRequest())
    assert health.status.code == 0 and not health.isHealthy
    assert "coordinator is starting" in health.reasons[0]
    a = await stub.AllocTimestamp(milvus_pb2.AllocTimestampRequest())
    b = await stub.AllocTimestamp(milvus_pb2.AllocTimestampRequest())
    assert 0 < a.timestamp < b.timestamp


async def test_collection_ddl(stub: Any, proxy: RecordingProxy, books: str) -> None:
    alter = milvus_pb2.AlterCollectionRequest(
        collection_name=books, properties=[common_pb2.KeyValuePair(key="k", value="v")], delete_keys=["old"]
    )
    assert (await stub.AlterCollection(alter, metadata=DB)).code == 0
    assert proxy.calls_of("alter_collection")[-1].args == ("books", books, {"k": "v"}, ["old"])
    truncate = await stub.TruncateCollection(
        milvus_pb2.TruncateCollectionRequest(collection_name=books), metadata=DB
    )
    assert truncate.status.code == 0
    has = await stub.HasCollection(milvus_pb2.HasCollectionRequest(collection_name=books), metadata=DB)
    assert has.value
    by_id = await stub.DescribeCollection(milvus_pb2.DescribeCollectionRequest(collectionID=7), metadata=DB)
    assert by_id.status.code == 3000
    rename = milvus_pb2.RenameCollectionRequest(oldName=books, newName="tales", newDBName="")
    assert (await stub.RenameCollection(rename, metadata=DB)).code == 0
    assert proxy.calls_of("rename_collection")[-1].args == ("books", books, "tales", None)
    back = milvus_pb2.RenameCollectionRequest(oldName="tales", newName=books)
    assert (await stub.RenameCollection(back, metadata=DB)).code == 0


async def test_databases_and_aliases(stub: Any, proxy: RecordingProxy, books: str) -> None:
    create = milvus_pb2.CreateDatabaseRequest(
        db_name="books", properties=[common_pb2.KeyValuePair(key="a", value="1")]
    )
    assert (await stub.CreateDatabase(create)).code == 0
    alter = milvus_pb2.AlterDatabaseRequest(db_name="books", delete_keys=["a"])
    assert (await stub.AlterDatabase(alter)).code == 0
    described = await stub.DescribeDatabase(milvus_pb2.DescribeDatabaseRequest(), metadata=DB)
    assert described.db_name == "books" and not described.properties
    listed = await stub.ListDatabases(milvus_pb2.ListDatabasesRequest())
    assert "books" in listed.db_names and len(listed.created_timestamp) == len(listed.db_names)
    assert (await stub.DropDatabase(milvus_pb2.DropDatabaseRequest(db_name=""))).code == 1100

    alias = milvus_pb2.CreateAliasRequest(collection_name=books, alias="fiction")
    assert (await stub.CreateAlias(alias, metadata=DB)).code == 0
    listed_aliases = await stub.ListAliases(milvus_pb2.ListAliasesRequest(), metadata=DB)
    assert (listed_aliases.db_name, list(listed_aliases.aliases)) == ("books", ["fiction"])
    assert proxy.calls_of("list_aliases")[-1].args == ("books", None)
    assert (await stub.DropAlias(milvus_pb2.DropAliasRequest(alias="fiction"), metadata=DB)).code == 0
    gone = await stub.DescribeAlias(milvus_pb2.DescribeAliasRequest(alias="fiction"), metadata=DB)
    assert gone.status.code == 1600


async def test_partitions(stub: Any, books: str) -> None:
    req = milvus_pb2.CreatePartitionRequest(collection_name=books, partition_name="p")
    assert (await stub.CreatePartition(req, metadata=DB)).code == 0
    show = await stub.ShowPartitions(
        milvus_pb2.ShowPartitionsRequest(collection_name=books, type=milvus_pb2.ShowType.Value("InMemory")),
        metadata=DB,
    )
    assert list(show.partition_names) == ["_default", "p"] and len(show.inMemory_percentages) == 2
    missing = await stub.ShowPartitions(
        milvus_pb2.ShowPartitionsRequest(collection_name=books, partition_names=["zz"]), metadata=DB
    )
    assert missing.status.code == 200
    drop = milvus_pb2.DropPartitionRequest(collection_name=books, partition_name="p")
    assert (await stub.DropPartition(drop, metadata=DB)).code == 0
    has = await stub.HasPartition(
        milvus_pb2.HasPartitionRequest(collection_name=books, partition_name="p"), metadata=DB
    )
    assert not has.value


async def test_writes_refused_cleanly(stub: Any, proxy: RecordingProxy, books: str) -> None:
    partial = milvus_pb2.UpsertRequest(collection_name=books, partial_update=True)
    assert (await stub.Upsert(partial, metadata=DB)).status.code == 3000
    empty = milvus_pb2.InsertRequest(collection_name=books)
    reply = await stub.Insert(empty, metadata=DB)
    assert reply.status.code == 1100 and "no field data" in reply.status.reason
    flush_state = await stub.GetFlushState(milvus_pb2.GetFlushStateRequest(flush_ts=5), metadata=DB)
    assert flush_state.status.code == 1100
    delete = Prepare.delete_request(books, "id in [1]", consistency_level=0)
    assert (await stub.Delete(delete, metadata=DB)).status.code == 0
    assert proxy.calls_of("delete")[-1].args[3:] == ("id in [1]", None, ConsistencyLevel.STRONG)


async def test_unimplemented_rpcs(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as err:
        await stub.CreateCredential(milvus_pb2.CreateCredentialRequest(username="u"))
    assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "CreateCredential" in (err.value.details() or "")
    served = set(implemented_rpcs())
    assert {
        "Connect",
        "Search",
        "HybridSearch",
        "Query",
        "Insert",
        "DescribeCollection",
        "TruncateCollection",
    } <= served
    assert "CreateCredential" in unimplemented_rpcs() and not served & set(unimplemented_rpcs())
