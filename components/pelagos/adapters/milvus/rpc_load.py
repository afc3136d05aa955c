"""Load RPCs: Load / Release collection and partitions, GetLoadState, GetLoadingProgress.

Invariants: loading returns at once (pymilvus then polls GetLoadingProgress
until 100); a replica number of 0 means one replica; refresh progress is the
loading progress (Pelagos has no separate refresh); load_fields /
skip_load_dynamic_field / resource groups are accepted and not used.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.rpc_base import RPCBase, rpc


class LoadRPCs(RPCBase):
    @rpc(None)
    async def LoadCollection(self, request: Any, context: Any) -> Any:
        await self.proxy.load(
            self.db(context, request), request.collection_name, [], replicas=max(1, request.replica_number)
        )
        return st.ok()

    @rpc(None)
    async def ReleaseCollection(self, request: Any, context: Any) -> Any:
        await self.proxy.release(self.db(context, request), request.collection_name, [])
        return st.ok()

    @rpc(None)
    async def LoadPartitions(self, request: Any, context: Any) -> Any:
        await self.proxy.load(
            self.db(context, request),
            request.collection_name,
            list(request.partition_names),
            replicas=max(1, request.replica_number),
        )
        return st.ok()

    @rpc(None)
    async def ReleasePartitions(self, request: Any, context: Any) -> Any:
        await self.proxy.release(
            self.db(context, request), request.collection_name, list(request.partition_names)
        )
        return st.ok()

    @rpc(milvus_pb2.GetLoadStateResponse)
    async def GetLoadState(self, request: Any, context: Any) -> Any:
        state = await self.proxy.load_state(
            self.db(context, request), request.collection_name, list(request.partition_names)
        )
        return milvus_pb2.GetLoadStateResponse(status=st.ok(), state=int(state))

    @rpc(milvus_pb2.GetLoadingProgressResponse)
    async def GetLoadingProgress(self, request: Any, context: Any) -> Any:
        progress = await self.proxy.loading_progress(
            self.db(context, request), request.collection_name, list(request.partition_names)
        )
        return milvus_pb2.GetLoadingProgressResponse(
            status=st.ok(), progress=progress, refresh_progress=progress
        )
