"""Write RPCs: Insert, Upsert, Delete, Flush, GetFlushState.

Invariants:
- rows reach the proxy as one Arrow table by field name (field_data.py); an
  empty partition name means the proxy's default partition (None);
- the reply is a MutationResult with the written primary keys (int_id or
  str_id), the counts, `succ_index` 0..n-1 and the write's timestamp, which
  pymilvus keeps as its Session-consistency token; a delete reply has no
  keys, only `delete_cnt` (what Milvus >= 2.3.2 does);
- Delete passes the filter (`pk in [...]` for delete by ids), its template
  values and the consistency level the client sent;
- partial upserts are refused (UnsupportedError), never run as full upserts;
- Flush reports, per collection, the segments, the flushed segments and the
  flush timestamp that GetFlushState is then polled with.
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.field_data import fields_to_table, ids_to_proto
from pelagos.adapters.milvus.params import template_values
from pelagos.adapters.milvus.rpc_base import RPCBase, physical_ms, rpc
from pelagos.adapters.milvus.rpc_collections import consistency_level
from pelagos.errors import InvalidArgumentError, UnsupportedError
from pelagos.interfaces.types import MutationResult


def mutation_reply(
    result: MutationResult, written: int, *, with_ids: bool = True
) -> milvus_pb2.MutationResult:
    """The reply of a write. Deletes carry no IDs: since Milvus 2.3.2 a client that
    sees IDs in a delete reply returns them instead of the delete count."""
    reply = milvus_pb2.MutationResult(
        status=st.ok(),
        insert_cnt=result.insert_count,
        upsert_cnt=result.upsert_count,
        delete_cnt=result.delete_count,
        timestamp=result.timestamp,
    )
    if with_ids:
        ids_to_proto(reply.IDs, result.ids)
    reply.succ_index.extend(range(written))
    return reply


class WriteRPCs(RPCBase):
    @rpc(milvus_pb2.MutationResult)
    async def Insert(self, request: Any, context: Any) -> Any:
        rows = fields_to_table(request.fields_data, request.num_rows)
        result = await self.proxy.insert(
            self.db(context, request), request.collection_name, request.partition_name or None, rows
        )
        return mutation_reply(result, result.insert_count)

    @rpc(milvus_pb2.MutationResult)
    async def Upsert(self, request: Any, context: Any) -> Any:
        if request.partial_update or len(request.field_ops):
            raise UnsupportedError(
                "partial upserts are not supported by Pelagos; send every field of each row"
            )
        rows = fields_to_table(request.fields_data, request.num_rows)
        result = await self.proxy.upsert(
            self.db(context, request), request.collection_name, request.partition_name or None, rows
        )
        return mutation_reply(result, result.upsert_count)

    @rpc(milvus_pb2.MutationResult)
    async def Delete(self, request: Any, context: Any) -> Any:
        if not request.expr.strip():
            raise InvalidArgumentError("delete needs a filter expression")
        result = await self.proxy.delete(
            self.db(context, request),
            request.collection_name,
            request.partition_name or None,
            request.expr,
            template_values(request.expr_template_values) or None,
            consistency_level(request.consistency_level),
        )
        return mutation_reply(result, 0, with_ids=False)

    @rpc(milvus_pb2.FlushResponse)
    async def Flush(self, request: Any, context: Any) -> Any:
        db = self.db(context, request)
        infos = await self.proxy.flush(db, list(request.collection_names))
        reply = milvus_pb2.FlushResponse(status=st.ok(), db_name=db)
        for info in infos:
            reply.coll_segIDs[info.collection].data.extend(info.segment_ids)
            reply.flush_coll_segIDs[info.collection].data.extend(info.flushed_segment_ids)
            reply.coll_flush_ts[info.collection] = info.flush_ts
            reply.coll_seal_times[info.collection] = physical_ms(info.flush_ts) // 1000
        return reply

    @rpc(milvus_pb2.GetFlushStateResponse)
    async def GetFlushState(self, request: Any, context: Any) -> Any:
        if not request.collection_name:
            raise InvalidArgumentError("GetFlushState needs the collection name and the flush timestamp")
        flushed = await self.proxy.flush_state(
            self.db(context, request), request.collection_name, request.flush_ts
        )
        return milvus_pb2.GetFlushStateResponse(status=st.ok(), flushed=flushed)
