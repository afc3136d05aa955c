"""Milvus Query request / QueryResults <-> Pelagos QueryRequest / QueryResult.

Invariants:
- `query_params` keys: limit, offset, ignore_growing, iterator,
  reduce_stop_for_best (both set `is_iterator`); routing keys (collection_id,
  cluster_id, timezone, ...) are ignored; ordering and grouping keys that
  Pelagos cannot honour are UnsupportedError;
- `output_fields` go to the proxy as sent (`*`, `count(*)`, dynamic keys);
- the reply lists every column (all the same length) and, in
  `output_fields`, the requested dynamic keys that are not columns, so the
  client picks them out of `$meta` (see search_codec.response_output_fields).

Pure: protobuf only, no gRPC.
"""

from __future__ import annotations

from pymilvus.grpc_gen import milvus_pb2

from pelagos.adapters.milvus.field_data import add_fields
from pelagos.adapters.milvus.params import kv_dict, parse_bool, parse_int, read_options, template_values
from pelagos.adapters.milvus.search_codec import response_output_fields
from pelagos.errors import UnsupportedError
from pelagos.interfaces.types import QueryRequest, QueryResult
from pelagos.schema import CollectionSchema

_UNSUPPORTED_KEYS = frozenset({"order_by_fields", "group_by_fields", "query_iter_last_element_offset"})


def query_request_from_proto(req: milvus_pb2.QueryRequest, db: str) -> QueryRequest:
    kv = kv_dict(req.query_params)
    for key in kv.keys() & _UNSUPPORTED_KEYS:
        raise UnsupportedError(f"query parameter {key} is not supported by Pelagos")
    limit = parse_int(kv["limit"], "limit") if kv.get("limit", "").strip() else None
    iterator = parse_bool(kv.get("iterator", "False"), "iterator") or parse_bool(
        kv.get("reduce_stop_for_best", "False"), "reduce_stop_for_best"
    )
    return QueryRequest(
        db=db,
        collection=req.collection_name,
        filter=req.expr,
        filter_params=template_values(req.expr_template_values),
        output_fields=list(req.output_fields),
        limit=limit,
        offset=parse_int(kv.get("offset", "0") or "0", "offset"),
        options=read_options(
            partition_names=req.partition_names,
            use_default_consistency=req.use_default_consistency,
            consistency_level=req.consistency_level,
            guarantee_timestamp=req.guarantee_timestamp,
            ignore_growing=parse_bool(kv.get("ignore_growing", "False"), "ignore_growing"),
        ),
        is_iterator=iterator,
    )


def query_result_to_proto(
    result: QueryResult,
    *,
    collection: str,
    requested_output: list[str],
    schema: CollectionSchema | None = None,
) -> milvus_pb2.QueryResults:
    reply = milvus_pb2.QueryResults(collection_name=collection, session_ts=result.session_ts)
    add_fields(reply.fields_data, result.table, schema)
    reply.output_fields.extend(response_output_fields(result.table.column_names, requested_output))
    if schema is not None:
        try:
            reply.primary_field_name = schema.primary_field.name
        except LookupError:
            pass
    return reply
