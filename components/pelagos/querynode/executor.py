"""Search and query over the segments of one served channel.

Per segment: liveness & partition & filter make one bitset, then either the
segment's vector index (with the bitset as an ID selector) or exact search
over the allowed rows. Segments run in parallel threads (faiss and numpy
release the GIL); per-segment top-k lists are merged with one vectorised
sort, and output columns are gathered per segment with Arrow `take`.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pyarrow as pa

from pelagos.expr import compile_filter
from pelagos.index.exact import exact_knn, normalize_rows
from pelagos.index.kinds import MetricType
from pelagos.interfaces.roles import ShardQuery, ShardSearch, ShardSearchResult
from pelagos.querynode.segment_view import SegmentView
from pelagos.querynode.served_channel import ServedChannel
from pelagos.schema import DYNAMIC_FIELD_NAME


def _and(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    out: np.ndarray = a & b
    return out


def _row_mask(ch: ServedChannel, seg: SegmentView, plan: Any, partition_ids: list[int]) -> np.ndarray | None:
    """None: every row qualifies; else a bool per row."""
    mask = _and(ch.alive(seg), seg.partition_mask(partition_ids))
    if not plan.is_always_true:
        mask = _and(mask, np.asarray(plan.evaluate(seg.table), dtype=bool))
    return mask


def _empty_fields(seg_like: pa.Schema, columns: list[str]) -> pa.Table:
    return pa.table({c: pa.array([], seg_like.field(c).type) for c in columns})


def _search_segment(
    ch: ServedChannel, seg: SegmentView, req: ShardSearch, plan: Any, metric: MetricType
) -> tuple[np.ndarray, np.ndarray] | None:
    mask = _row_mask(ch, seg, plan, req.partition_ids)
    if mask is not None and not mask.any():
        return None
    index = seg.indexes.get(req.field_name)
    if index is not None:
        from pelagos.index.search_params import SearchParams

        params = SearchParams.parse(req.params, index.spec, req.limit)
        scores, ids = index.search(req.vectors, req.limit, params, allowed=mask)
    elif metric is MetricType.COSINE:
        queries = normalize_rows(np.asarray(req.vectors, dtype=np.float32))
        scores, ids = exact_knn(queries, seg.normalized_vectors(req.field_name), req.limit, metric, mask=mask)
    else:
        scores, ids = exact_knn(req.vectors, seg.vectors(req.field_name), req.limit, metric, mask=mask)
    return scores, ids


def search_channel_sync(ch: ServedChannel, req: ShardSearch, segs: list[SegmentView]) -> ShardSearchResult:
    metric = MetricType.of(req.metric_type)
    plan = compile_filter(req.filter, ch.schema, req.filter_params)
    nq, k = len(req.vectors), req.limit
    per_seg: list[tuple[int, np.ndarray, np.ndarray]] = []
    for i, seg in enumerate(segs):
        r = _search_segment(ch, seg, req, plan, metric)
        if r is not None:
            per_seg.append((i, r[0], r[1]))
    return _merge(ch, req, segs, per_seg, nq, k, metric)


async def search_channel(ch: ServedChannel, req: ShardSearch) -> ShardSearchResult:
    segs = ch.segments(req.ignore_growing)
    metric = MetricType.of(req.metric_type)
    plan = compile_filter(req.filter, ch.schema, req.filter_params)
    nq, k = len(req.vectors), req.limit
    if len(segs) <= 1:
        return await asyncio.to_thread(search_channel_sync, ch, req, segs)
    results = await asyncio.gather(
        *(asyncio.to_thread(_search_segment, ch, seg, req, plan, metric) for seg in segs)
    )
    per_seg = [(i, r[0], r[1]) for i, r in enumerate(results) if r is not None]
    return _merge(ch, req, segs, per_seg, nq, k, metric)


def _merge(
    ch: ServedChannel,
    req: ShardSearch,
    segs: list[SegmentView],
    per_seg: list[tuple[int, np.ndarray, np.ndarray]],
    nq: int,
    k: int,
    metric: MetricType,
) -> ShardSearchResult:
    pk_type = ch._pk_type()
    if not per_seg:
        fields = pa.table({c: pa.array([], _col_type(ch, c)) for c in req.output_fields})
        return ShardSearchResult(
            np.zeros(nq, np.int64), pa.array([], pk_type), np.zeros(0, np.float32), fields
        )
    scores = np.concatenate([s for _, s, _ in per_seg], axis=1)
    offsets = np.concatenate([ids for _, _, ids in per_seg], axis=1)
    seg_of = np.concatenate([np.full(ids.shape, i, dtype=np.int64) for i, _, ids in per_seg], axis=1)
    key = metric.sort_key(scores)
    key = np.where(offsets < 0, np.inf, key)
    order = np.argsort(key, axis=1, kind="stable")[:, :k]
    rows = np.arange(nq)[:, None]
    top_scores = scores[rows, order]
    top_offsets = offsets[rows, order]
    top_segs = seg_of[rows, order]
    valid = top_offsets >= 0
    topks = valid.sum(axis=1).astype(np.int64)
    flat_scores = top_scores[valid]
    flat_offsets = top_offsets[valid]
    flat_segs = top_segs[valid]
    # gather pks and output fields segment by segment, then restore hit order
    n = len(flat_offsets)
    order_by_seg = np.argsort(flat_segs, kind="stable")
    pieces_pk: list[pa.Array] = []
    pieces_fields: list[pa.Table] = []
    bounds = np.searchsorted(flat_segs[order_by_seg], np.arange(len(segs) + 1))
    for si in range(len(segs)):
        lo, hi = bounds[si], bounds[si + 1]
        if hi == lo:
            continue
        take = pa.array(flat_offsets[order_by_seg[lo:hi]])
        seg = segs[si]
        pieces_pk.append(seg.pks.take(take))
        if req.output_fields:
            pieces_fields.append(seg.table.select(req.output_fields).take(take))
    inverse = np.empty(n, dtype=np.int64)
    inverse[order_by_seg] = np.arange(n)
    back = pa.array(inverse)
    pks = pa.concat_arrays(pieces_pk).take(back)
    fields = (
        pa.concat_tables(pieces_fields, promote_options="permissive").take(back)
        if req.output_fields
        else pa.table({})
    )
    return ShardSearchResult(topks=topks, pks=pks, scores=flat_scores.astype(np.float32), fields=fields)


def _col_type(ch: ServedChannel, name: str) -> pa.DataType:
    from pelagos.schema.arrow import arrow_schema

    return arrow_schema(ch.schema).field(name).type


def query_channel_sync(ch: ServedChannel, req: ShardQuery) -> pa.Table:
    plan = compile_filter(req.filter, ch.schema, req.filter_params)
    segs = ch.segments(req.ignore_growing)
    if req.count_only:
        total = 0
        for seg in segs:
            mask = _row_mask(ch, seg, plan, req.partition_ids)
            total += seg.num_rows if mask is None else int(mask.sum())
        return pa.table({"count(*)": pa.array([total], pa.int64())})
    parts: list[pa.Table] = []
    remaining = req.limit
    for seg in segs:
        if remaining is not None and remaining <= 0:
            break
        mask = _row_mask(ch, seg, plan, req.partition_ids)
        cols = seg.table.select(req.output_fields)
        if mask is not None:
            idx = np.flatnonzero(mask)
            if remaining is not None:
                idx = idx[:remaining]
            part = cols.take(pa.array(idx))
        else:
            part = cols if remaining is None else cols.slice(0, remaining)
        if part.num_rows:
            parts.append(part)
            if remaining is not None:
                remaining -= part.num_rows
    if not parts:
        return pa.table({c: pa.array([], _col_type(ch, c)) for c in req.output_fields})
    return (
        pa.concat_tables(parts, promote_options="permissive").combine_chunks() if len(parts) > 1 else parts[0]
    )


async def query_channel(ch: ServedChannel, req: ShardQuery) -> pa.Table:
    return await asyncio.to_thread(query_channel_sync, ch, req)


_ = DYNAMIC_FIELD_NAME
