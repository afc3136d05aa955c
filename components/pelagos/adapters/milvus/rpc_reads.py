"""Read RPCs: Query, Search, HybridSearch.

Invariants:
- requests are translated by query_codec / search_codec, consistency goes
  into ReadOptions (the proxy decides what it means);
- replies carry `session_ts` (pymilvus pins iterators to it) and output
  columns typed by the collection schema when a string column could be JSON
  (the schema is fetched only then, see RPCBase.schema_for_output).
"""

from __future__ import annotations

from typing import Any

from pymilvus.grpc_gen import milvus_pb2

from pelagos.adapters.milvus import status as st
from pelagos.adapters.milvus.query_codec import query_request_from_proto, query_result_to_proto
from pelagos.adapters.milvus.rpc_base import RPCBase, rpc
from pelagos.adapters.milvus.search_codec import (
    hybrid_search_request_from_proto,
    search_request_from_proto,
    search_result_to_proto,
)
from pelagos.interfaces.types import SearchResult


class ReadRPCs(RPCBase):
    @rpc(milvus_pb2.QueryResults)
    async def Query(self, request: Any, context: Any) -> Any:
        db = self.db(context, request)
        q = query_request_from_proto(request, db)
        result = await self.proxy.query(q)
        schema = await self.schema_for_output(db, request.collection_name, result.table)
        reply = query_result_to_proto(
            result, collection=request.collection_name, requested_output=q.output_fields, schema=schema
        )
        reply.status.CopyFrom(st.ok())
        return reply

    @rpc(milvus_pb2.SearchResults)
    async def Search(self, request: Any, context: Any) -> Any:
        db = self.db(context, request)
        s = search_request_from_proto(request, db)
        return await self._search_reply(
            db, request.collection_name, await self.proxy.search(s), s.output_fields
        )

    @rpc(milvus_pb2.SearchResults)
    async def HybridSearch(self, request: Any, context: Any) -> Any:
        db = self.db(context, request)
        h = hybrid_search_request_from_proto(request, db)
        return await self._search_reply(
            db, request.collection_name, await self.proxy.hybrid_search(h), h.output_fields
        )

    async def _search_reply(
        self, db: str, collection: str, result: SearchResult, requested: list[str]
    ) -> milvus_pb2.SearchResults:
        schema = await self.schema_for_output(db, collection, result.fields)
        reply = milvus_pb2.SearchResults(collection_name=collection, session_ts=result.session_ts)
        reply.status.SetInParent()  # success: code 0, error_code Success (0), as st.ok() has it
        search_result_to_proto(result, requested_output=requested, schema=schema, into=reply.results)
        return reply
