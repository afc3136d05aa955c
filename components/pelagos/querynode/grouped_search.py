"""Grouping search over the segments of one channel, exact across segments.

Each segment contributes its best candidates and an unseen bound
(segment_search); index/grouping.select_groups picks the best `limit`
groups of up to `group_size` hits and says, per query, whether any unseen
candidate could still change that choice. While it could, the segments
that still hold unseen candidates are searched again four times wider, so
the answer is the exact grouping of the channel (for exact segments; an
approximate index is as exact as its own top-k).

Invariants:
- The first round asks each segment for 2 * limit * group_size hits; each
  later round widens only segments whose bound is finite, at most up to the
  rows they allow, so the loop ends after O(log n) rounds.
- Group values are encoded together for all segments, so a group spread
  over several segments is one group (null is a group of its own).
- The result lists hits by group (best group first) then best first, with
  the group value of every hit and the selection's unseen bound for the
  proxy's own merge across shards.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa

from pelagos.index.grouping import GroupSelection, group_codes, select_groups
from pelagos.interfaces.roles import ShardSearchResult
from pelagos.querynode.search_context import SearchContext
from pelagos.querynode.segment_search import SegmentHits, SegmentScope, topk_hits
from pelagos.querynode.shard_merge import Candidates, empty_result, output_columns, output_names
from pelagos.schema import CollectionSchema

FIRST_ROUND_FACTOR = 2
WIDEN_FACTOR = 4


def _select(
    ctx: SearchContext, cands: Candidates, hits: list[SegmentHits]
) -> tuple[GroupSelection, pa.Array]:
    req = ctx.req
    assert req.group_by_field
    values = cands.column(req.group_by_field)
    keys = ctx.metric.sort_key(cands.scores)
    unseen = np.min(np.stack([h.bound for h in hits]), axis=0) if hits else np.full(ctx.nq, np.inf)
    sel = select_groups(
        cands.qidx, keys, group_codes(values), ctx.nq, req.limit, max(1, req.group_size), unseen
    )
    return sel, values


async def grouped_search(
    ctx: SearchContext,
    scopes: list[SegmentScope],
    schema: CollectionSchema,
    pk_type: pa.DataType,
) -> ShardSearchResult:
    req = ctx.req
    per_segment = [
        max(1, min(s.allowed, FIRST_ROUND_FACTOR * req.limit * max(1, req.group_size))) for s in scopes
    ]
    hits = list(
        await asyncio.gather(
            *(asyncio.to_thread(topk_hits, s, ctx, k) for s, k in zip(scopes, per_segment, strict=True))
        )
    )
    while True:
        cands = Candidates(scopes, hits)
        sel, values = await asyncio.to_thread(_select, ctx, cands, hits)
        unproven = ~sel.proven
        if not unproven.any():
            break
        widen = [
            i
            for i, h in enumerate(hits)
            if per_segment[i] < scopes[i].allowed and (~np.isposinf(h.bound[unproven])).any()
        ]
        if not widen:
            break  # every segment gave all it can (approximate indexes may stop early)
        for i in widen:
            per_segment[i] = min(scopes[i].allowed, WIDEN_FACTOR * per_segment[i])
        again = await asyncio.gather(
            *(asyncio.to_thread(topk_hits, scopes[i], ctx, per_segment[i]) for i in widen)
        )
        for i, h in zip(widen, again, strict=True):
            hits[i] = h
    if len(cands) == 0:
        result = empty_result(ctx, schema, pk_type)
        result.group_values = values.slice(0, 0)
        result.unseen_bound = sel.bound
        return result
    chosen = sel.chosen
    fields = output_columns(cands, output_names(req.output_fields, schema), chosen)
    return ShardSearchResult(
        topks=sel.topks,
        pks=cands.pks(chosen),
        scores=cands.scores[chosen].astype(np.float32),
        fields=fields,
        group_values=values.take(pa.array(chosen)),
        unseen_bound=sel.bound,
    )
