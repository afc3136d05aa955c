"""Search and query over the segments of one served channel.

Search: the request is prepared once (search_context: params validated
against the field's declared index, queries checked, filter compiled);
each segment gets its row mask (alive & partitions & filter) and is searched
in its own thread (faiss and numpy release the GIL) through its index or
exactly (segment_search); the per-segment candidates are merged with one
vectorised sort (shard_merge) or, for a grouping search, grouped exactly
across segments (grouped_search). Output columns are gathered per segment
with Arrow `take`.

Invariants:
- rows that are deleted or superseded (upserted) are never returned: the
  channel's liveness mask is part of every segment's row mask;
- a bad search parameter fails before any segment is searched;
- no Python loop over rows, hits or queries.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pyarrow as pa

from pelagos.expr import compile_filter
from pelagos.interfaces.roles import ShardQuery, ShardSearch, ShardSearchResult
from pelagos.interfaces.types import IndexInfo
from pelagos.querynode.grouped_search import grouped_search
from pelagos.querynode.search_context import SearchContext, prepare
from pelagos.querynode.segment_search import SegmentHits, SegmentScope, topk_hits
from pelagos.querynode.segment_view import SegmentView
from pelagos.querynode.served_channel import ServedChannel
from pelagos.querynode.shard_merge import Candidates, merge_topk


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


def _index_specs(ch: ServedChannel) -> list[IndexInfo]:
    """The indexes declared on the channel's collection (built or not)."""
    view = getattr(ch, "_view", None)
    return list(getattr(view, "index_specs", None) or [])


def _scope(ch: ServedChannel, seg: SegmentView, ctx: SearchContext) -> SegmentScope:
    mask = _row_mask(ch, seg, ctx.plan, ctx.req.partition_ids)
    allowed = seg.num_rows if mask is None else int(np.count_nonzero(mask))
    return SegmentScope(seg=seg, mask=mask, allowed=allowed)


def _scoped_hits(ch: ServedChannel, seg: SegmentView, ctx: SearchContext) -> tuple[SegmentScope, SegmentHits]:
    scope = _scope(ch, seg, ctx)
    return scope, topk_hits(scope, ctx, ctx.req.limit)


async def search_channel(ch: ServedChannel, req: ShardSearch) -> ShardSearchResult:
    ctx = prepare(req, ch.schema, _index_specs(ch))
    segs = ch.segments(req.ignore_growing)
    pk_type = ch._pk_type()
    if ctx.is_grouping:
        scopes = list(await asyncio.gather(*(asyncio.to_thread(_scope, ch, s, ctx) for s in segs)))
        return await grouped_search(ctx, scopes, ch.schema, pk_type)
    done = await asyncio.gather(*(asyncio.to_thread(_scoped_hits, ch, s, ctx) for s in segs))
    cands = Candidates([d[0] for d in done], [d[1] for d in done])
    return await asyncio.to_thread(merge_topk, ctx, cands, req.limit, ch.schema, pk_type)


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
