"""Milvus Search / HybridSearch requests and results <-> Pelagos search types.

Invariants:
- `placeholder_group` holds one placeholder (tag `$0`) with one little-endian
  byte string per query: float vectors (type 101) become an (nq, dim) float32
  matrix, binary vectors (type 100) an (nq, dim // 8) uint8 matrix; every
  query must have the same width; other placeholder types (float16, sparse,
  text, embedding lists) are UnsupportedError;
- `search_params` keys: topk, round_decimal, ignore_growing, offset,
  metric_type, anns_field, params (JSON), group_by_field, group_size,
  strict_group_size; pymilvus also copies metric_type / offset /
  ignore_growing into the params JSON, they are taken out of it; the search
  iterator v2 keys (search_iter_v2, search_iter_batch_size,
  search_iter_last_bound, search_iter_id) become the request's iterator
  fields, and the reply carries `search_iterator_v2_results` (token and the
  last hit's score) so pymilvus keeps to the v2 protocol; the v1 flag and
  routing keys (iterator, collection_id, cluster_id, hints) are ignored;
  keys that would change the result and Pelagos cannot honour (order_by_fields,
  group_by_fields, json_path, ...) are UnsupportedError, never ignored;
- results: hits are flat with `topks` (hits per query) so the client can split
  them; scores move as packed float32 bytes; `output_fields` names the
  requested dynamic keys that are not columns, so the client picks them out of
  `$meta`.

Pure: protobuf only, no gRPC.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from pelagos.adapters.milvus.field_data import add_fields, ids_to_proto, key_field, table_to_fields
from pelagos.adapters.milvus.packed import append_fixed
from pelagos.adapters.milvus.params import (
    kv_dict,
    parse_bool,
    parse_float,
    parse_int,
    parse_json_object,
    read_options,
    template_values,
)
from pelagos.errors import InvalidArgumentError, UnsupportedError
from pelagos.interfaces.types import (
    HybridSearchRequest,
    RankerSpec,
    ReadOptions,
    SearchRequest,
    SearchResult,
)
from pelagos.schema import DYNAMIC_FIELD_NAME, ROW_TIMESTAMP_COLUMN, CollectionSchema

_FLOAT_VECTOR = 101
_LITTLE_F32 = np.dtype("<f4")  # the wire's byte order
_F32 = np.dtype(np.float32)
_BINARY_VECTOR = 100
_SCORES_FIELD = schema_pb2.SearchResultData.DESCRIPTOR.fields_by_name["scores"].number
_FEW_SCORES = 256

#: keys that only steer routing or the client's iterator: accepted, not used
_IGNORED_KEYS = frozenset(
    {
        "iterator",
        "collection_id",
        "cluster_id",
        "hints",
        "page_retain_order",
        "timezone",
        "time_fields",
    }
)
#: keys Pelagos cannot honour; ignoring them would return wrong results
_UNSUPPORTED_KEYS = frozenset(
    {"order_by_fields", "group_by_fields", "json_path", "json_type", "strict_cast", "analyzer_name"}
)
#: keys pymilvus copies into the params JSON that have their own request fields
_TOP_LEVEL_IN_PARAMS = ("metric_type", "offset", "ignore_growing", "page_retain_order", "hints")


# --- placeholders --------------------------------------------------------------


def vectors_from_placeholder_group(raw: bytes) -> np.ndarray:
    """The query vectors of a serialized PlaceholderGroup as one matrix."""
    group = common_pb2.PlaceholderGroup()
    try:
        group.ParseFromString(raw)
    except Exception as exc:  # protobuf's DecodeError
        raise InvalidArgumentError(f"the placeholder group is not a valid PlaceholderGroup: {exc}") from exc
    if len(group.placeholders) != 1:
        raise InvalidArgumentError(f"expected one placeholder, got {len(group.placeholders)}")
    ph = group.placeholders[0]
    values = ph.values
    if len(values) == 1:
        joined = values[0]
        width = len(joined)
    else:
        values = list(values)
        if not values:
            raise InvalidArgumentError("the search request has no query vectors")
        widths = {len(v) for v in values}
        if len(widths) != 1:
            raise InvalidArgumentError(f"query vectors have different sizes ({sorted(widths)} bytes)")
        width = widths.pop()
        joined = b"".join(values)
    if ph.type == _FLOAT_VECTOR:
        if width == 0 or width % 4:
            raise InvalidArgumentError(
                f"a float vector query of {width} bytes is not a whole number of float32"
            )
        floats = np.frombuffer(joined, dtype=_LITTLE_F32)
        if floats.dtype != _F32:  # a big-endian host
            floats = floats.astype(_F32)
        return floats.reshape(len(values), width // 4)
    if ph.type == _BINARY_VECTOR:
        if width == 0:
            raise InvalidArgumentError("a binary vector query is empty")
        return np.frombuffer(joined, dtype=np.uint8).reshape(len(values), width)
    raise UnsupportedError(f"search with {_placeholder_name(ph.type)} queries is not supported by Pelagos")


def _placeholder_name(number: int) -> str:
    try:
        return str(common_pb2.PlaceholderType.Name(number))
    except ValueError:
        return f"placeholder type {number}"


# --- requests ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _SearchParams:
    """What a request's `search_params` say, parsed once per distinct list of pairs."""

    limit: int
    anns_field: str | None
    metric: str | None
    params: dict[str, Any]  # copied into each request: handlers may not share it
    offset: int
    round_decimal: int
    ignore_growing: bool
    group_by: str | None
    group_size: int
    strict_group_size: bool
    iterator_v2: bool
    iterator_token: str
    iterator_last_bound: float | None
    iterator_batch_size: int


@functools.lru_cache(maxsize=1024)
def _parse_search_params(pairs: tuple[tuple[str, str], ...]) -> _SearchParams:
    kv = dict(pairs)
    for key in kv.keys() & _UNSUPPORTED_KEYS:
        raise UnsupportedError(f"search parameter {key} is not supported by Pelagos")
    params = parse_json_object(kv.get("params", ""), "search params")
    hoisted = {k: params.pop(k) for k in _TOP_LEVEL_IN_PARAMS if k in params}
    if "topk" not in kv:
        raise InvalidArgumentError("search_params has no topk; set a limit")
    metric = kv.get("metric_type") or _str_or_none(hoisted.get("metric_type"))
    offset_text = kv.get("offset", str(hoisted.get("offset", 0)))
    ignore_growing = parse_bool(
        kv.get("ignore_growing", str(hoisted.get("ignore_growing", False))), "ignore_growing"
    )
    iterator_v2 = parse_bool(kv.get("search_iter_v2", "False"), "search_iter_v2")
    last_bound = kv.get("search_iter_last_bound", "")
    return _SearchParams(
        limit=parse_int(kv["topk"], "topk"),
        anns_field=kv.get("anns_field") or None,
        metric=metric or None,
        params=params,
        offset=parse_int(offset_text, "offset"),
        round_decimal=parse_int(kv.get("round_decimal", "-1"), "round_decimal"),
        ignore_growing=ignore_growing,
        group_by=kv.get("group_by_field") or None,
        group_size=parse_int(kv.get("group_size", "1"), "group_size"),
        strict_group_size=parse_bool(kv.get("strict_group_size", "False"), "strict_group_size"),
        iterator_v2=iterator_v2,
        iterator_token=kv.get("search_iter_id", "") if iterator_v2 else "",
        iterator_last_bound=(
            parse_float(last_bound, "search_iter_last_bound") if iterator_v2 and last_bound.strip() else None
        ),
        iterator_batch_size=(
            parse_int(kv.get("search_iter_batch_size", "0"), "search_iter_batch_size") if iterator_v2 else 0
        ),
    )


def search_request_from_proto(
    req: milvus_pb2.SearchRequest,
    db: str,
    *,
    collection: str | None = None,
    options: ReadOptions | None = None,
    output_fields: Sequence[str] | None = None,
) -> SearchRequest:
    """A Pelagos SearchRequest; HybridSearch passes its own collection, options and outputs."""
    if req.HasField("ids"):
        raise UnsupportedError("search by primary keys (ids) is not supported by Pelagos; send query vectors")
    if len(req.function_score.functions):
        raise UnsupportedError("search rankers (function_score) are not supported by Pelagos")
    if req.HasField("search_aggregation"):
        raise UnsupportedError("search aggregation is not supported by Pelagos")
    if len(req.function_chains):
        raise UnsupportedError("function chains are not supported by Pelagos")
    sp = _parse_search_params(tuple([(kv.key, kv.value) for kv in req.search_params]))
    if options is None:
        if req.use_default_consistency and not len(req.partition_names):  # the usual request
            options = ReadOptions(guarantee_ts=req.guarantee_timestamp, ignore_growing=sp.ignore_growing)
        else:
            options = read_options(
                partition_names=req.partition_names,
                use_default_consistency=req.use_default_consistency,
                consistency_level=req.consistency_level,
                guarantee_timestamp=req.guarantee_timestamp,
                ignore_growing=sp.ignore_growing,
            )
    return SearchRequest(
        db=db,
        collection=collection or req.collection_name,
        vectors=vectors_from_placeholder_group(req.placeholder_group),
        limit=sp.limit,
        anns_field=sp.anns_field,
        metric_type=sp.metric,
        params=dict(sp.params),
        filter=req.dsl,
        filter_params=template_values(req.expr_template_values) if len(req.expr_template_values) else {},
        output_fields=list(req.output_fields if output_fields is None else output_fields),
        offset=sp.offset,
        round_decimal=sp.round_decimal,
        group_by_field=sp.group_by,
        group_size=sp.group_size,
        strict_group_size=sp.strict_group_size,
        options=options,
        iterator_v2=sp.iterator_v2,
        iterator_token=sp.iterator_token,
        iterator_last_bound=sp.iterator_last_bound,
        iterator_batch_size=sp.iterator_batch_size,
    )


def _str_or_none(v: Any) -> str | None:
    return v if isinstance(v, str) and v else None


def hybrid_search_request_from_proto(req: milvus_pb2.HybridSearchRequest, db: str) -> HybridSearchRequest:
    kv = kv_dict(req.rank_params)
    for key in ("group_by_field", "group_size", "strict_group_size", "rank_group_scorer"):
        if key in kv:
            raise UnsupportedError(f"hybrid search with {key} is not supported by Pelagos")
    if "limit" not in kv:
        raise InvalidArgumentError("rank_params has no limit")
    options = read_options(
        partition_names=req.partition_names,
        use_default_consistency=req.use_default_consistency,
        consistency_level=req.consistency_level,
        guarantee_timestamp=req.guarantee_timestamp,
    )
    subs = [
        search_request_from_proto(
            sub, db, collection=req.collection_name, options=_sub_options(options, sub), output_fields=[]
        )
        for sub in req.requests
    ]
    if not subs:
        raise InvalidArgumentError("a hybrid search needs at least one search request")
    return HybridSearchRequest(
        db=db,
        collection=req.collection_name,
        requests=subs,
        ranker=ranker_from_proto(kv, req.function_score),
        limit=parse_int(kv["limit"], "limit"),
        offset=parse_int(kv.get("offset", "0"), "offset"),
        output_fields=list(req.output_fields),
        round_decimal=parse_int(kv.get("round_decimal", "-1"), "round_decimal"),
        options=options,
    )


def _sub_options(outer: ReadOptions, sub: milvus_pb2.SearchRequest) -> ReadOptions:
    ignore_growing = parse_bool(kv_dict(sub.search_params).get("ignore_growing", "False"), "ignore_growing")
    return ReadOptions(
        partitions=list(sub.partition_names) or list(outer.partitions),
        consistency_level=outer.consistency_level,
        guarantee_ts=outer.guarantee_ts,
        ignore_growing=ignore_growing,
    )


def ranker_from_proto(kv: dict[str, str], function_score: schema_pb2.FunctionScore) -> RankerSpec:
    """RRF / weighted reranking from rank_params (strategy + params JSON) or a rerank function."""
    if len(function_score.functions):
        if len(function_score.functions) != 1:
            raise UnsupportedError("hybrid search with several rerank functions is not supported by Pelagos")
        fparams = kv_dict(function_score.functions[0].params)
        strategy = fparams.pop("reranker", "")
        params: dict[str, Any] = {k: _loads(v) for k, v in fparams.items()}
    else:
        strategy = kv.get("strategy", "rrf")
        params = parse_json_object(kv.get("params", ""), "rank params")
    strategy = strategy.lower()
    if strategy == "rrf":
        k = params.get("k", 60)
        if not isinstance(k, int | float) or isinstance(k, bool) or k <= 0:
            raise InvalidArgumentError(f"the RRF parameter k must be a positive number, got {k!r}")
        return RankerSpec(kind="rrf", k=int(k))
    if strategy == "weighted":
        weights = params.get("weights")
        if not isinstance(weights, list) or not weights:
            raise InvalidArgumentError("the weighted ranker needs a non-empty list of weights")
        try:
            floats = [parse_float(str(w), "weights") for w in weights]
        except InvalidArgumentError:
            raise InvalidArgumentError(
                f"the weighted ranker's weights must be numbers, got {weights!r}"
            ) from None
        norm = params.get("norm_score", True)
        return RankerSpec(kind="weighted", weights=floats, normalize=bool(norm))
    raise UnsupportedError(
        f"hybrid search ranker {strategy or '(none)'!r} is not supported by Pelagos; use rrf or weighted"
    )


def _loads(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


# --- results -------------------------------------------------------------------


def response_output_fields(columns: Iterable[str], requested: Sequence[str]) -> list[str]:
    """What a reply's `output_fields` lists: the columns, `$meta` only when all dynamic keys
    are wanted, and requested names that are not columns (dynamic keys the client picks out)."""
    cols = [c for c in columns if c != ROW_TIMESTAMP_COLUMN]
    names = [c for c in cols if c != DYNAMIC_FIELD_NAME]
    dynamic_keys = [r for r in requested if r not in cols and r not in ("*", DYNAMIC_FIELD_NAME)]
    wants_all = not dynamic_keys or "*" in requested or DYNAMIC_FIELD_NAME in requested
    if DYNAMIC_FIELD_NAME in cols and wants_all:
        names.append(DYNAMIC_FIELD_NAME)
    return names + dynamic_keys


def _primary_position(columns: list[str], primary: str, reported: Sequence[str]) -> int | None:
    """Where the primary key goes among a search result's output columns (which never hold it), or
    None when the client did not ask for it: where it was asked, among the columns asked."""
    if primary in reported:
        before = set(reported[: list(reported).index(primary)])
    elif "*" in reported:
        before = set()
    else:
        return None
    return next((i for i, c in enumerate(columns) if c not in before), len(columns))


@functools.lru_cache(maxsize=1024)
def _reply_layout(
    columns: tuple[str, ...], primary: str, reported: tuple[str, ...]
) -> tuple[int | None, tuple[str, ...]]:
    """Where the primary key goes among a reply's output columns (None: not asked for), and the
    reply's `output_fields`; the same for every search of one shape."""
    at = _primary_position(list(columns), primary, reported)
    listed = list(columns) if at is None else [*columns[:at], primary, *columns[at:]]
    return at, tuple(response_output_fields(listed, reported))


def search_result_to_proto(
    result: SearchResult,
    *,
    requested_output: Sequence[str] = (),
    schema: CollectionSchema | None = None,
    into: schema_pb2.SearchResultData | None = None,
) -> schema_pb2.SearchResultData:
    """The SearchResultData of a result, filled into `into` when given (a reply's own field)."""
    n_hits = len(result.ids)
    topks = np.asarray(result.topks, dtype=np.int64).tolist()
    if sum(topks) != n_hits or len(result.scores) != n_hits:
        raise ValueError(
            f"inconsistent search result: {n_hits} ids, {len(result.scores)} scores, topks sum {sum(topks)}"
        )
    columns = result.fields.column_names
    if columns and result.fields.num_rows != n_hits:
        raise ValueError(f"search result has {result.fields.num_rows} output rows for {n_hits} hits")
    data = schema_pb2.SearchResultData() if into is None else into
    data.num_queries = result.num_queries
    data.top_k = result.top_k
    data.primary_field_name = result.primary_field
    data.topks.extend(topks)
    keys = ids_to_proto(data.ids, result.ids)
    scores = np.asarray(result.scores, dtype=np.float32)
    if len(scores) <= _FEW_SCORES:  # a few floats go faster as a list than as packed bytes
        data.scores.extend(scores.tolist())
    else:
        append_fixed(data, _SCORES_FIELD, scores, np.float32)
    reported = result.output_fields or requested_output
    at, listed = _reply_layout(tuple(columns), result.primary_field, tuple(reported))
    if columns:
        add_fields(
            data.fields_data,
            result.fields,
            schema,
            keys=None if at is None else (result.primary_field, keys, at),
        )
    elif at is not None:  # the keys alone (Arrow is not asked about an empty table)
        key_field(data.fields_data.add(), result.primary_field, keys, schema)
    data.output_fields.extend(listed)
    if result.iterator_token:
        data.search_iterator_v2_results.token = result.iterator_token
        if result.iterator_last_bound is not None:
            data.search_iterator_v2_results.last_bound = result.iterator_last_bound
    if result.group_by_field and result.group_values is not None:
        group_column = pa.table({result.group_by_field: result.group_values})
        data.group_by_field_value.CopyFrom(table_to_fields(group_column, schema)[0])
    return data
