"""Index RPCs: CreateIndex, DescribeIndex, GetIndexState, GetIndexBuildProgress,
DropIndex, AlterIndex.

Invariants:
- CreateIndex passes index_type / metric_type / build params flat to the
  proxy (params.py); an unnamed index is named after its field;
- DescribeIndex with empty names describes every index of the collection;
  pymilvus polls its `state` until Finished (3) and matches by field name;
  no index is code 700 (status.py), which pymilvus's list_indexes treats as
  "no indexes";
- GetIndexState / GetIndexBuildProgress (legacy) aggregate the matching
  indexes: Failed if any failed, Finished when all finished.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.params import index_params_from_proto, index_params_to_proto, kv_dict
from pelagos.adapters.milvus.rpc_base import RPCBase, rpc
from pelagos.interfaces.types import IndexInfo, IndexState


def index_description(info: IndexInfo) -> milvus_pb2.IndexDescription:
    return milvus_pb2.IndexDescription(
        index_name=info.index_name,
        indexID=info.index_id,
        params=index_params_to_proto(info.params),
        field_name=info.field_name,
        indexed_rows=info.indexed_rows,
        total_rows=info.total_rows,
        state=int(info.state),
        index_state_fail_reason=info.fail_reason,
        pending_index_rows=info.pending_index_rows,
    )


def overall_state(infos: list[IndexInfo]) -> tuple[IndexState, str]:
    failed = [i for i in infos if i.state == IndexState.FAILED]
    if failed:
        return IndexState.FAILED, "; ".join(f"{i.index_name}: {i.fail_reason}" for i in failed)
    if infos and all(i.state == IndexState.FINISHED for i in infos):
        return IndexState.FINISHED, ""
    return IndexState.IN_PROGRESS, ""


class IndexRPCs(RPCBase):
    @rpc(None)
    async def CreateIndex(self, request: Any, context: Any) -> Any:
        await self.proxy.create_index(
            self.db(context, request),
            request.collection_name,
            request.field_name,
            request.index_name or request.field_name,
            index_params_from_proto(request.extra_params),
        )
        return st.ok()

    @rpc(milvus_pb2.DescribeIndexResponse)
    async def DescribeIndex(self, request: Any, context: Any) -> Any:
        infos = await self.proxy.describe_index(
            self.db(context, request), request.collection_name, request.field_name, request.index_name
        )
        return milvus_pb2.DescribeIndexResponse(
            status=st.ok(), index_descriptions=[index_description(i) for i in infos]
        )

    @rpc(milvus_pb2.GetIndexStateResponse)
    async def GetIndexState(self, request: Any, context: Any) -> Any:
        infos = await self.proxy.describe_index(
            self.db(context, request), request.collection_name, request.field_name, request.index_name
        )
        state, reason = overall_state(infos)
        return milvus_pb2.GetIndexStateResponse(status=st.ok(), state=int(state), fail_reason=reason)

    @rpc(milvus_pb2.GetIndexBuildProgressResponse)
    async def GetIndexBuildProgress(self, request: Any, context: Any) -> Any:
        infos = await self.proxy.describe_index(
            self.db(context, request), request.collection_name, request.field_name, request.index_name
        )
        return milvus_pb2.GetIndexBuildProgressResponse(
            status=st.ok(),
            indexed_rows=sum(i.indexed_rows for i in infos),
            total_rows=sum(i.total_rows for i in infos),
        )

    @rpc(None)
    async def DropIndex(self, request: Any, context: Any) -> Any:
        await self.proxy.drop_index(
            self.db(context, request), request.collection_name, request.field_name, request.index_name
        )
        return st.ok()

    @rpc(None)
    async def AlterIndex(self, request: Any, context: Any) -> Any:
        await self.proxy.alter_index(
            self.db(context, request),
            request.collection_name,
            request.index_name,
            kv_dict(request.extra_params),
            list(request.delete_keys),
        )
        return st.ok()
