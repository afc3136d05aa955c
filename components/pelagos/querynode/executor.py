"""Search over the segments of one served channel (queries: query.py).

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

import numpy as np

from pelagos.expr import FieldStats
from pelagos.interfaces.roles import ShardSearch, ShardSearchResult
from pelagos.querynode.grouped_search import grouped_search
from pelagos.querynode.search_context import SearchContext, prepare
from pelagos.querynode.segment_search import SegmentHits, SegmentScope, topk_hits
from pelagos.querynode.segment_view import SegmentView
from pelagos.querynode.served_channel import ServedChannel
from pelagos.querynode.shard_merge import Candidates, merge_topk, one_segment_topk


def _and(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    out: np.ndarray = a & b
    return out


def _may_match(seg: SegmentView, ctx: SearchContext) -> bool:
    """False when the segment's min/max statistics rule the filter out."""
    if ctx.plan.is_always_true or not seg.stats:
        return True
    stats = {n: FieldStats(s.min, s.max, s.null_count, s.row_count) for n, s in seg.stats.items()}
    return bool(ctx.plan.may_match(stats))


def _scope(ch: ServedChannel, seg: SegmentView, ctx: SearchContext) -> SegmentScope:
    if not _may_match(seg, ctx):
        return SegmentScope(seg=seg, mask=np.zeros(seg.num_rows, dtype=bool), allowed=0)
    base = _and(ch.alive(seg), seg.partition_mask(ctx.req.partition_ids))
    if ctx.plan.is_always_true:
        allowed = seg.num_rows if base is None else int(np.count_nonzero(base))
        return SegmentScope(seg=seg, mask=base, allowed=allowed)
    filtered = ch.filters.rows(seg, ctx.plan)
    if base is None:  # the filter alone decides: its cached rows serve as they are
        kept = ch.filters.enabled
        return SegmentScope(
            seg=seg,
            mask=filtered.mask,
            allowed=filtered.count,
            filtered=filtered if kept else None,
            cache=ch.filters if kept else None,
        )
    mask = base & filtered.mask
    return SegmentScope(seg=seg, mask=mask, allowed=int(np.count_nonzero(mask)))


def _scoped_hits(ch: ServedChannel, seg: SegmentView, ctx: SearchContext) -> tuple[SegmentScope, SegmentHits]:
    scope = _scope(ch, seg, ctx)
    return scope, topk_hits(scope, ctx, ctx.req.limit)


#: work (query vectors x rows scanned, an indexed segment counting INDEXED_COST rows)
#: below which a search runs inline on the event loop: a thread hop costs more
INLINE_WORK = 200_000
INDEXED_COST = 2_000


def _work(segs: list[SegmentView], req: ShardSearch) -> int:
    rows = sum(INDEXED_COST if req.field_name in s.indexes else s.num_rows for s in segs)
    return len(req.vectors) * rows


def search_inline(ch: ServedChannel, ctx: SearchContext, segs: list[SegmentView]) -> ShardSearchResult:
    if len(segs) == 1 and not (ctx.is_range or ctx.is_iterator):
        scope = _scope(ch, segs[0], ctx)
        found = one_segment_topk(scope, ctx, ch.schema, ch._pk_type())
        if found is not None:
            return found
    done = [_scoped_hits(ch, s, ctx) for s in segs]
    cands = Candidates([d[0] for d in done], [d[1] for d in done])
    return merge_topk(ctx, cands, ctx.req.limit, ch.schema, ch._pk_type())


async def search_channel(ch: ServedChannel, req: ShardSearch) -> ShardSearchResult:
    ctx = prepare(req, ch.schema, ch.index_specs, ch.setups)
    segs = ch.segments(req.ignore_growing)
    pk_type = ch._pk_type()
    if not ctx.is_grouping and _work(segs, req) <= INLINE_WORK:
        return search_inline(ch, ctx, segs)
    if ctx.is_grouping:
        scopes = list(await asyncio.gather(*(asyncio.to_thread(_scope, ch, s, ctx) for s in segs)))
        return await grouped_search(ctx, scopes, ch.schema, pk_type)
    done = await asyncio.gather(*(asyncio.to_thread(_scoped_hits, ch, s, ctx) for s in segs))
    cands = Candidates([d[0] for d in done], [d[1] for d in done])
    return merge_topk(ctx, cands, req.limit, ch.schema, pk_type)
