"""The proxy's search: validate, fan out to the leader of every shard, reduce to the global answer.

Forms: top-k (many queries per request, filter, partitions, offset, output
fields, round_decimal), range search (radius / range_filter in params),
grouping search (group_by_field, group_size, strict_group_size) and the
search iterator v2 (pymilvus `search_iterator`).

Invariants:
- Everything that can be checked without the segments is checked before
  fan-out, with Milvus's wording where clients match on it: the vector
  field (anns_field required when there are several), dimensions, nq and
  topk limits, the metric against the field's index ("metric type not
  match") and the vector type, group-by field and size. Search params are
  checked by the query nodes against the field's index before they search.
- Every shard is searched at the same read timestamp and consistency
  guarantee; results are the exact global top-k of the shards' exact top-k
  (shard_reduce), grouping results the exact global grouping.
- The iterator pages in (score, pk) order: page n+1 starts strictly after
  page n's last hit, so every row comes once, in order of distance.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from typing import Protocol

import numpy as np

from pelagos.errors import InvalidArgumentError
from pelagos.expr import compile_filter
from pelagos.index.kinds import MetricType
from pelagos.interfaces.hit_keys import key_at
from pelagos.interfaces.keys import frozen
from pelagos.interfaces.roles import CoordinatorAPI, ShardSearch, ShardSearchResult
from pelagos.interfaces.types import CollectionInfo, ReadOptions, SearchRequest, SearchResult
from pelagos.proxy.iterators import SESSIONS
from pelagos.proxy.metrics import SEARCH_VECTORS
from pelagos.proxy.outputs import OutputPlan, plan_outputs
from pelagos.proxy.shard_reduce import Reduced, reduce_groups, reduce_topk
from pelagos.schema import DataType, FieldSchema

_F32 = np.dtype(np.float32)
_METRICS = {str(m): m for m in MetricType}
MAX_TOPK = 16384
MAX_NQ = 16384
MAX_GROUP_SIZE = 1024
GROUPABLE = frozenset(
    {DataType.BOOL, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.VARCHAR}
)


class SearchHost(Protocol):
    """What the search needs of the proxy."""

    coord: CoordinatorAPI

    def _loaded(self, c: CollectionInfo, partitions: list[str]) -> list[int]: ...

    async def _guarantee(self, c: CollectionInfo, options: ReadOptions) -> tuple[int, int]: ...


@dataclass(slots=True)
class PreparedSearch:
    request: SearchRequest
    collection: CollectionInfo
    field: FieldSchema
    metric: MetricType
    partition_ids: list[int]
    outputs: OutputPlan

    @property
    def nq(self) -> int:
        return len(self.request.vectors)


# --- validation ---------------------------------------------------------------------------------


def vector_field(c: CollectionInfo, anns_field: str | None) -> FieldSchema:
    vectors = c.schema.vector_fields
    if anns_field:
        f = c.schema.field(anns_field)
        if f is None or not f.dtype.is_vector:
            raise InvalidArgumentError(
                f"failed to get field schema by name: fieldName({anns_field}) not found"
            )
        return f
    if len(vectors) > 1:
        raise InvalidArgumentError("multiple anns_fields exist, please specify a anns_field in search_params")
    if not vectors:
        raise InvalidArgumentError(f"collection {c.name} has no vector field to search")
    return vectors[0]


def resolve_metric(
    coord: CoordinatorAPI, c: CollectionInfo, f: FieldSchema, requested: str | None
) -> MetricType:
    metric = (requested or "").upper()
    index_metric = coord.index_metric(c.collection_id, f.name)
    if index_metric and metric and metric != index_metric:
        raise InvalidArgumentError(
            f"metric type not match: invalid parameter[expected={index_metric}][actual={metric}]"
        )
    binary = f.dtype == DataType.BINARY_VECTOR
    name = metric or index_metric or ("HAMMING" if binary else "COSINE")
    try:
        resolved = _METRICS.get(name) or MetricType(name)
    except ValueError:
        raise InvalidArgumentError(
            f"metric type {name} is not supported; use {'HAMMING or JACCARD' if binary else 'L2, IP or COSINE'}"
        ) from None
    if resolved.for_binary != binary:
        raise InvalidArgumentError(
            f"metric type {name} does not fit the {'binary' if binary else 'float'} vector field {f.name}; "
            f"use {'HAMMING or JACCARD' if binary else 'L2, IP or COSINE'}"
        )
    return resolved


def _check_vectors(f: FieldSchema, vectors: np.ndarray) -> None:
    if (  # the usual request: float32 rows of the field's width, a sane count
        vectors.dtype == _F32
        and vectors.ndim == 2
        and vectors.shape[1] == f.dim
        and 1 <= len(vectors) <= MAX_NQ
        and f.dtype == DataType.FLOAT_VECTOR
    ):
        return
    nq = len(vectors)
    if not 1 <= nq <= MAX_NQ:
        raise InvalidArgumentError(
            f"nq (number of search vector per search request) should be in range [1, {MAX_NQ}], got {nq}"
        )
    binary = f.dtype == DataType.BINARY_VECTOR
    if binary and vectors.dtype != np.uint8:
        raise InvalidArgumentError(f"field {f.name} holds binary vectors; send binary query vectors")
    if not binary and vectors.dtype.kind != "f":
        raise InvalidArgumentError(f"field {f.name} holds float vectors; send float query vectors")
    width = (f.dim or 0) // 8 if binary else f.dim
    if vectors.ndim != 2 or vectors.shape[1] != width:
        got = vectors.shape[1] if vectors.ndim == 2 else "?"
        if binary and isinstance(got, int):
            got *= 8
        raise InvalidArgumentError(
            f"the dim ({got}) of field data({f.name}) is not equal to schema dim ({f.dim})"
        )


def _check_limits(limit: int, offset: int) -> None:
    if limit <= 0 or limit > MAX_TOPK:
        raise InvalidArgumentError(f"topk [{limit}] is invalid, it should be in range [1, {MAX_TOPK}]")
    if offset < 0 or limit + offset > MAX_TOPK:
        raise InvalidArgumentError(
            f"topk + offset should be in range [1, {MAX_TOPK}], but got {limit + offset}"
        )


def _check_grouping(c: CollectionInfo, request: SearchRequest) -> None:
    name = request.group_by_field or ""
    f = c.schema.field(name)
    if f is None or f.is_dynamic:
        raise InvalidArgumentError(f"groupBy field({name}) not found in schema")
    if f.dtype not in GROUPABLE:
        raise InvalidArgumentError(
            f"group by field {name} of type {f.dtype.name} is not supported; group by a bool, "
            "integer or varchar field"
        )
    if not 1 <= request.group_size <= MAX_GROUP_SIZE:
        raise InvalidArgumentError(
            f"group_size should be in range [1, {MAX_GROUP_SIZE}], got {request.group_size}"
        )
    if request.iterator_v2:
        raise InvalidArgumentError("the search iterator does not support group_by_field")


def _check_iterator(request: SearchRequest) -> None:
    if len(request.vectors) != 1:
        raise InvalidArgumentError("the search iterator takes exactly one query vector")
    if request.offset:
        raise InvalidArgumentError("the search iterator does not support offset")


@dataclass(frozen=True, slots=True)
class _Shape:
    """What a search shape needs of a collection's schema: its vector field and output columns
    (the filter compiled once proves it valid)."""

    collection: CollectionInfo
    field: FieldSchema
    outputs: OutputPlan


#: search shapes remembered (they hold collection views; a changed collection is a new view)
MAX_SHAPES = 512
_shapes: dict[tuple[object, ...], _Shape] = {}


def _shape(c: CollectionInfo, request: SearchRequest) -> _Shape:
    key = (
        id(c),
        request.anns_field,
        tuple(request.output_fields),
        request.filter,
        frozen(request.filter_params),
    )
    found = _shapes.get(key)
    if found is None or found.collection is not c:
        field = vector_field(c, request.anns_field)
        outputs = plan_outputs(c.schema, list(request.output_fields), for_query=False)
        compile_filter(request.filter or "", c.schema, request.filter_params)
        found = _Shape(c, field, outputs)
        if len(_shapes) >= MAX_SHAPES:
            _shapes.clear()
        _shapes[key] = found
    return found


def prepare_search(host: SearchHost, request: SearchRequest) -> PreparedSearch:
    c = host.coord.collection(request.db, request.collection)
    partition_ids = host._loaded(c, request.options.partitions)
    shape = _shape(c, request)
    f = shape.field
    _check_vectors(f, request.vectors)
    limit = (request.iterator_batch_size or request.limit) if request.iterator_v2 else request.limit
    _check_limits(limit, request.offset)
    metric = resolve_metric(host.coord, c, f, request.metric_type)
    if request.group_by_field:
        _check_grouping(c, request)
    if request.iterator_v2:
        _check_iterator(request)
    return PreparedSearch(request, c, f, metric, partition_ids, shape.outputs)


# --- execution ----------------------------------------------------------------------------------


async def run_search(host: SearchHost, request: SearchRequest) -> SearchResult:
    return await execute(host, prepare_search(host, request))


async def execute(host: SearchHost, p: PreparedSearch) -> SearchResult:
    request, c = p.request, p.collection
    SEARCH_VECTORS.inc(p.nq)
    read_ts, guarantee = await host._guarantee(c, request.options)
    base = ShardSearch(
        collection_id=c.collection_id,
        channel=c.channels[0],
        partition_ids=p.partition_ids,
        vectors=request.vectors,
        field_name=p.field.name,
        limit=request.limit + request.offset,
        metric_type=str(p.metric),
        params=request.params,
        filter=request.filter or "",
        filter_params=request.filter_params,
        output_fields=p.outputs.columns,
        read_ts=read_ts,
        guarantee_ts=guarantee,
        ignore_growing=request.options.ignore_growing,
        group_by_field=request.group_by_field or None,
        group_size=request.group_size,
        strict_group_size=request.strict_group_size,
    )
    token = ""
    if request.group_by_field:
        reduced = await _grouped(host, c, base, p)
    elif request.iterator_v2:
        token = request.iterator_token or SESSIONS.new_token()
        reduced = await _iterator_page(host, c, base, p, token)
    else:
        parts = await _fan_out(host, c, base)
        reduced = reduce_topk(parts, p.nq, request.limit, request.offset, p.metric)
    return _result(p, reduced, read_ts, token)


async def _fan_out(host: SearchHost, c: CollectionInfo, base: ShardSearch) -> list[ShardSearchResult]:
    if len(c.channels) == 1:  # no task to schedule: one less turn of the event loop per request
        ch = c.channels[0]
        return [await host.coord.leader(ch).search(base if base.channel == ch else replace(base, channel=ch))]
    return list(
        await asyncio.gather(*(host.coord.leader(ch).search(replace(base, channel=ch)) for ch in c.channels))
    )


async def _grouped(host: SearchHost, c: CollectionInfo, base: ShardSearch, p: PreparedSearch) -> Reduced:
    request = p.request

    async def ask(shard: int, groups: int) -> ShardSearchResult:
        ch = c.channels[shard]
        return await host.coord.leader(ch).search(replace(base, channel=ch, limit=groups))

    return await reduce_groups(
        ask,
        len(c.channels),
        p.nq,
        request.limit,
        request.offset,
        request.group_size,
        p.metric,
    )


async def _iterator_page(
    host: SearchHost, c: CollectionInfo, base: ShardSearch, p: PreparedSearch, token: str
) -> Reduced:
    request = p.request
    batch = request.iterator_batch_size or request.limit
    after_pk, returned = SESSIONS.resume(token, request.iterator_last_bound)
    page = replace(
        base,
        limit=batch,
        iterator=True,
        iterator_bound=request.iterator_last_bound,
        iterator_after_pk=after_pk,
        iterator_skip=returned,
    )
    parts = await _fan_out(host, c, page)
    reduced = reduce_topk(parts, 1, batch, 0, p.metric, pk_order=True)
    if len(reduced.scores):
        SESSIONS.advance(token, float(reduced.scores[-1]), key_at(reduced.pks, -1), len(reduced.scores))
    return reduced


def _result(p: PreparedSearch, r: Reduced, read_ts: int, token: str) -> SearchResult:
    request = p.request
    scores = np.asarray(r.scores, dtype=np.float32)
    last_bound: float | None = None
    if request.iterator_v2:
        last_bound = float(scores[-1]) if len(scores) else request.iterator_last_bound
    if request.round_decimal >= 0:
        scores = np.round(scores, request.round_decimal).astype(np.float32)
    return SearchResult(
        num_queries=p.nq,
        top_k=request.limit,
        topks=np.asarray(r.topks, dtype=np.int64),
        ids=r.pks,
        scores=scores,
        fields=r.fields,
        primary_field=p.collection.schema.primary_field.name,
        output_fields=p.outputs.reported,
        session_ts=read_ts,
        iterator_token=token,
        iterator_last_bound=last_bound,
        group_by_field=request.group_by_field or "",
        group_values=r.group_values,
    )
