"""Hybrid search: several searches on one collection (usually on different vector fields), fused.

Invariants:
- Every sub-search is validated and run as an ordinary search (its own
  field, metric, params, filter, limit and partitions), all concurrently,
  each returning the output fields the hybrid search asked for, so no
  second round trip is needed to fetch them.
- All sub-searches have the same number of queries; the fused list of
  query i only mixes hits of query i (rerank.fuse).
- Weighted ranking needs one weight in [0, 1] per sub-search; RRF's k is
  in (0, 16384), as in Milvus.
- `limit` / `offset` / `round_decimal` apply to the fused list.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import numpy as np
import pyarrow as pa

from pelagos.errors import InvalidArgumentError
from pelagos.interfaces.hit_keys import concat_keys, take_keys
from pelagos.interfaces.types import NO_FIELDS, HybridSearchRequest, SearchResult
from pelagos.proxy.outputs import plan_outputs
from pelagos.proxy.rerank import HitList, fuse
from pelagos.proxy.search import MAX_TOPK, SearchHost, execute, prepare_search

MAX_SUB_REQUESTS = 1024
MAX_RRF_K = 16384


def _check(request: HybridSearchRequest) -> None:
    n = len(request.requests)
    if not 1 <= n <= MAX_SUB_REQUESTS:
        raise InvalidArgumentError(f"a hybrid search takes 1 to {MAX_SUB_REQUESTS} search requests, got {n}")
    nqs = {len(r.vectors) for r in request.requests}
    if len(nqs) != 1:
        raise InvalidArgumentError(
            f"the search requests of a hybrid search must have the same nq, got {sorted(nqs)}"
        )
    ranker = request.ranker
    if ranker.kind == "weighted":
        if len(ranker.weights) != n:
            raise InvalidArgumentError(
                f"the length of weights param mismatch with ann search requests: "
                f"{len(ranker.weights)} weights for {n} requests"
            )
        bad = [w for w in ranker.weights if not 0.0 <= w <= 1.0]
        if bad:
            raise InvalidArgumentError(f"rank param weight should be in range [0, 1], got {bad[0]}")
    elif not 0 < ranker.k < MAX_RRF_K:
        raise InvalidArgumentError(f"The rank params k should be in range (0, {MAX_RRF_K}), got {ranker.k}")
    if request.limit <= 0 or request.limit > MAX_TOPK:
        raise InvalidArgumentError(
            f"topk [{request.limit}] is invalid, it should be in range [1, {MAX_TOPK}]"
        )
    if request.offset < 0 or request.limit + request.offset > MAX_TOPK:
        raise InvalidArgumentError(
            f"topk + offset should be in range [1, {MAX_TOPK}], but got {request.limit + request.offset}"
        )


async def run_hybrid_search(host: SearchHost, request: HybridSearchRequest) -> SearchResult:
    _check(request)
    c = host.coord.collection(request.db, request.collection)
    outputs = plan_outputs(c.schema, list(request.output_fields), for_query=False)
    prepared = [
        prepare_search(
            host,
            replace(
                sub,
                db=request.db,
                collection=request.collection,
                output_fields=list(request.output_fields),
                offset=0,
                round_decimal=-1,
                group_by_field=None,
            ),
        )
        for sub in request.requests
    ]
    results = await asyncio.gather(*(execute(host, p) for p in prepared))
    nq = len(request.requests[0].vectors)
    lists = [
        HitList(np.asarray(r.topks, dtype=np.int64), r.ids, r.scores, p.metric)
        for r, p in zip(results, prepared, strict=True)
    ]
    fused = fuse(lists, request.ranker, nq, request.limit, request.offset)
    tables = [r.fields for r in results]
    if any(t.num_columns for t in tables):
        fields = pa.concat_tables(tables, promote_options="permissive").take(pa.array(fused.source))
    else:  # nothing asked but the keys
        fields = NO_FIELDS
    scores = fused.scores
    if request.round_decimal >= 0:
        scores = np.round(scores, request.round_decimal).astype(np.float32)
    return SearchResult(
        num_queries=nq,
        top_k=request.limit,
        topks=fused.topks,
        ids=take_keys(concat_keys([r.ids for r in results]), fused.source),
        scores=scores,
        fields=fields,
        primary_field=c.schema.primary_field.name,
        output_fields=outputs.reported,
        session_ts=max(r.session_ts for r in results),
    )
