"""Partition and alias RPCs.

Partitions: Create / Drop / Has / ShowPartitions / GetPartitionStatistics
(row_count). Aliases: Create / Drop / Alter / Describe / ListAliases.
Loading partitions lives with the other load RPCs (rpc_load.py).

Invariants: ShowPartitions with type InMemory adds each partition's loading
percentage; an empty collection name in ListAliases lists every alias of the
database.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.rpc_base import RPCBase, physical_ms, rpc
from pelagos.errors import PartitionNotFoundError

_IN_MEMORY = milvus_pb2.ShowType.Value("InMemory")


class PartitionRPCs(RPCBase):
    @rpc(None)
    async def CreatePartition(self, request: Any, context: Any) -> Any:
        await self.proxy.create_partition(
            self.db(context, request), request.collection_name, request.partition_name
        )
        return st.ok()

    @rpc(None)
    async def DropPartition(self, request: Any, context: Any) -> Any:
        await self.proxy.drop_partition(
            self.db(context, request), request.collection_name, request.partition_name
        )
        return st.ok()

    @rpc(milvus_pb2.BoolResponse)
    async def HasPartition(self, request: Any, context: Any) -> Any:
        found = await self.proxy.has_partition(
            self.db(context, request), request.collection_name, request.partition_name
        )
        return milvus_pb2.BoolResponse(status=st.ok(), value=found)

    @rpc(milvus_pb2.ShowPartitionsResponse)
    async def ShowPartitions(self, request: Any, context: Any) -> Any:
        db = self.db(context, request)
        parts = await self.proxy.list_partitions(db, request.collection_name)
        wanted = list(request.partition_names)
        if wanted:
            by_name = {p.name: p for p in parts}
            missing = [n for n in wanted if n not in by_name]
            if missing:
                raise PartitionNotFoundError(
                    f"partition {missing[0]} does not exist in collection {request.collection_name}"
                )
            parts = [by_name[n] for n in wanted]
        reply = milvus_pb2.ShowPartitionsResponse(
            status=st.ok(),
            partition_names=[p.name for p in parts],
            partitionIDs=[p.partition_id for p in parts],
            created_timestamps=[p.created_ts for p in parts],
            created_utc_timestamps=[physical_ms(p.created_ts) for p in parts],
        )
        if request.type == _IN_MEMORY:
            for p in parts:
                reply.inMemory_percentages.append(
                    await self.proxy.loading_progress(db, request.collection_name, [p.name])
                )
        return reply

    @rpc(milvus_pb2.GetPartitionStatisticsResponse)
    async def GetPartitionStatistics(self, request: Any, context: Any) -> Any:
        rows = await self.proxy.partition_row_count(
            self.db(context, request), request.collection_name, request.partition_name
        )
        return milvus_pb2.GetPartitionStatisticsResponse(
            status=st.ok(), stats=[common_pb2.KeyValuePair(key="row_count", value=str(rows))]
        )


class AliasRPCs(RPCBase):
    @rpc(None)
    async def CreateAlias(self, request: Any, context: Any) -> Any:
        await self.proxy.create_alias(self.db(context, request), request.alias, request.collection_name)
        return st.ok()

    @rpc(None)
    async def DropAlias(self, request: Any, context: Any) -> Any:
        await self.proxy.drop_alias(self.db(context, request), request.alias)
        return st.ok()

    @rpc(None)
    async def AlterAlias(self, request: Any, context: Any) -> Any:
        await self.proxy.alter_alias(self.db(context, request), request.alias, request.collection_name)
        return st.ok()

    @rpc(milvus_pb2.DescribeAliasResponse)
    async def DescribeAlias(self, request: Any, context: Any) -> Any:
        a = await self.proxy.describe_alias(self.db(context, request), request.alias)
        return milvus_pb2.DescribeAliasResponse(
            status=st.ok(), db_name=a.db, alias=a.alias, collection=a.collection
        )

    @rpc(milvus_pb2.ListAliasesResponse)
    async def ListAliases(self, request: Any, context: Any) -> Any:
        db = self.db(context, request)
        aliases = await self.proxy.list_aliases(db, request.collection_name or None)
        return milvus_pb2.ListAliasesResponse(
            status=st.ok(),
            db_name=db,
            collection_name=request.collection_name,
            aliases=[a.alias for a in aliases],
        )
