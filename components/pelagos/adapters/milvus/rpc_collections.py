"""Collection RPCs: Create / Drop / Has / Describe / Show / Rename / Alter /
Truncate collection and GetCollectionStatistics.

Invariants:
- CreateCollection's schema arrives serialized; the request's collection name
  wins over the schema's `name`;
- DescribeCollection answers everything pymilvus caches (schema with field
  IDs, type params as strings, defaults, nullable, partition key; collection
  ID, shards, channels, consistency level, aliases, properties, partitions,
  created and updated timestamps); `update_timestamp` is the collection's
  updated timestamp, the version pymilvus sends back as `schema_timestamp`;
- a missing collection is code 100 (status.py), which `has_collection` and
  the schema cache rely on;
- ShowCollections with type InMemory lists loaded (or loading) collections
  with their loading percentage.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.params import kv_dict, kv_pairs
from pelagos.adapters.milvus.rpc_base import RPCBase, physical_ms, rpc
from pelagos.adapters.milvus.schema_codec import schema_from_bytes, schema_to_proto
from pelagos.errors import (
    CollectionNotFoundError,
    CollectionNotLoadedError,
    InvalidArgumentError,
    UnsupportedError,
)
from pelagos.interfaces.types import CollectionInfo, ConsistencyLevel, LoadState

_IN_MEMORY = milvus_pb2.ShowType.Value("InMemory")


def consistency_level(number: int) -> ConsistencyLevel:
    try:
        return ConsistencyLevel(number)
    except ValueError:
        raise InvalidArgumentError(f"unknown consistency level {number}") from None


def describe_response(info: CollectionInfo) -> milvus_pb2.DescribeCollectionResponse:
    updated = info.updated_ts or info.created_ts
    return milvus_pb2.DescribeCollectionResponse(
        status=st.ok(),
        schema=schema_to_proto(info.schema, info.name),
        collectionID=info.collection_id,
        virtual_channel_names=info.channels,
        physical_channel_names=info.channels,
        created_timestamp=info.created_ts,
        created_utc_timestamp=physical_ms(info.created_ts),
        shards_num=info.shards_num,
        aliases=info.aliases,
        consistency_level=int(info.consistency_level),
        collection_name=info.name,
        properties=kv_pairs(info.properties),
        db_name=info.db,
        num_partitions=len(info.partitions),
        update_timestamp=updated,
        update_timestamp_str=str(updated),
    )


class CollectionRPCs(RPCBase):
    @rpc(None)
    async def CreateCollection(self, request: Any, context: Any) -> Any:
        schema = schema_from_bytes(request.schema)
        properties = kv_dict(request.properties)
        await self.proxy.create_collection(
            self.db(context, request),
            request.collection_name,
            schema,
            shards_num=request.shards_num,
            consistency_level=consistency_level(request.consistency_level),
            properties=properties or None,
            num_partitions=request.num_partitions,
        )
        return st.ok()

    @rpc(None)
    async def DropCollection(self, request: Any, context: Any) -> Any:
        await self.proxy.drop_collection(self.db(context, request), request.collection_name)
        return st.ok()

    @rpc(milvus_pb2.BoolResponse)
    async def HasCollection(self, request: Any, context: Any) -> Any:
        found = await self.proxy.has_collection(self.db(context, request), request.collection_name)
        return milvus_pb2.BoolResponse(status=st.ok(), value=found)

    @rpc(milvus_pb2.DescribeCollectionResponse)
    async def DescribeCollection(self, request: Any, context: Any) -> Any:
        if not request.collection_name:
            if request.collectionID:
                raise UnsupportedError(
                    "describing a collection by ID is not supported by Pelagos; use its name"
                )
            raise InvalidArgumentError("the collection name is empty")
        info = await self.proxy.describe_collection(self.db(context, request), request.collection_name)
        return describe_response(info)

    @rpc(milvus_pb2.ShowCollectionsResponse)
    async def ShowCollections(self, request: Any, context: Any) -> Any:
        db = self.db(context, request)
        infos = await self.proxy.list_collections(db)
        wanted = list(request.collection_names)
        if wanted:
            by_name = {i.name: i for i in infos}
            missing = [n for n in wanted if n not in by_name]
            if missing:
                raise CollectionNotFoundError(f"collection {missing[0]} does not exist in database {db}")
            infos = [by_name[n] for n in wanted]
        reply = milvus_pb2.ShowCollectionsResponse(status=st.ok())
        for info in infos:
            if request.type == _IN_MEMORY:
                state = await self.proxy.load_state(db, info.name, [])
                if state not in (LoadState.LOADING, LoadState.LOADED):
                    if wanted:
                        raise CollectionNotLoadedError(f"collection {info.name} is not loaded")
                    continue
                progress = (
                    100 if state == LoadState.LOADED else await self.proxy.loading_progress(db, info.name, [])
                )
                reply.inMemory_percentages.append(progress)
                reply.query_service_available.append(state == LoadState.LOADED)
            reply.collection_names.append(info.name)
            reply.collection_ids.append(info.collection_id)
            reply.created_timestamps.append(info.created_ts)
            reply.created_utc_timestamps.append(physical_ms(info.created_ts))
            reply.shards_num.append(info.shards_num)
        return reply

    @rpc(None)
    async def RenameCollection(self, request: Any, context: Any) -> Any:
        await self.proxy.rename_collection(
            self.db(context, request), request.oldName, request.newName, request.newDBName or None
        )
        return st.ok()

    @rpc(None)
    async def AlterCollection(self, request: Any, context: Any) -> Any:
        await self.proxy.alter_collection(
            self.db(context, request),
            request.collection_name,
            kv_dict(request.properties),
            list(request.delete_keys),
        )
        return st.ok()

    @rpc(milvus_pb2.TruncateCollectionResponse)
    async def TruncateCollection(self, request: Any, context: Any) -> Any:
        await self.proxy.truncate_collection(self.db(context, request), request.collection_name)
        return milvus_pb2.TruncateCollectionResponse(status=st.ok())

    @rpc(milvus_pb2.GetCollectionStatisticsResponse)
    async def GetCollectionStatistics(self, request: Any, context: Any) -> Any:
        rows = await self.proxy.collection_row_count(self.db(context, request), request.collection_name)
        return milvus_pb2.GetCollectionStatisticsResponse(
            status=st.ok(), stats=[common_pb2.KeyValuePair(key="row_count", value=str(rows))]
        )
