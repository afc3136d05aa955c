"""Query (filter -> rows) and count over the segments of one served channel.

The plan picks the cheapest way per segment:
- segments whose min/max statistics cannot match the filter are skipped
  (`FilterPlan.may_match`);
- `pk in [...]` / `pk == x` looks the keys up in the segment's primary-key
  index (built once per sealed segment) instead of scanning;
- otherwise the filter is evaluated over whole columns into a bitset, kept
  in the query node's filter cache for the next read of the same filter.
`count(*)` with no filter is the row count minus deleted rows, from the
cached liveness bitsets: no scan.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pyarrow as pa

from pelagos.expr import FieldStats, FilterPlan, compile_filter
from pelagos.interfaces.roles import ShardQuery
from pelagos.querynode.segment_view import SegmentView
from pelagos.querynode.served_channel import ServedChannel
from pelagos.schema.arrow import arrow_schema
from pelagos.segments import PrimaryKeyIndex

COUNT_COLUMN = "count(*)"


def _field_stats(seg: SegmentView) -> dict[str, FieldStats]:
    out: dict[str, FieldStats] = {}
    for name, s in seg.stats.items():
        out[name] = FieldStats(s.min, s.max, s.null_count, s.row_count)
    return out


def _pk_index(seg: SegmentView) -> PrimaryKeyIndex:
    index = seg.cache.get("pk_index")
    if index is None:
        index = PrimaryKeyIndex(seg.pks, seg.row_ts)
        if seg.sealed:
            seg.cache["pk_index"] = index
    assert isinstance(index, PrimaryKeyIndex)
    return index


def matching_rows(
    ch: ServedChannel, seg: SegmentView, plan: FilterPlan, partition_ids: list[int]
) -> np.ndarray | None:
    """Row offsets of `seg` that match (sorted), or None for "every row"."""
    if seg.sealed and seg.stats and not plan.is_always_true and not plan.may_match(_field_stats(seg)):
        return np.empty(0, dtype=np.int64)
    alive = ch.alive(seg)
    parts = seg.partition_mask(partition_ids)
    keys = plan.primary_key_lookup
    if keys is not None and seg.sealed:
        if not keys:
            return np.empty(0, dtype=np.int64)
        offsets, found = _pk_index(seg).lookup(pa.array(keys, type=seg.pks.type))
        rows = np.unique(offsets[found])
        if alive is not None:
            rows = rows[alive[rows]]
        if parts is not None:
            rows = rows[parts[rows]]
        return rows
    mask = alive
    if parts is not None:
        mask = parts if mask is None else mask & parts
    if not plan.is_always_true:
        filtered = ch.filters.rows(seg, plan)
        if mask is None:
            return filtered.rows  # the filter alone decides: its rows are cached with it
        mask = mask & filtered.mask
    return None if mask is None else np.flatnonzero(mask)


def count_rows(ch: ServedChannel, segs: list[SegmentView], plan: FilterPlan, partition_ids: list[int]) -> int:
    total = 0
    for seg in segs:
        rows = matching_rows(ch, seg, plan, partition_ids)
        total += seg.num_rows if rows is None else len(rows)
    return total


def query_channel_sync(ch: ServedChannel, req: ShardQuery) -> pa.Table:
    plan = compile_filter(req.filter, ch.schema, req.filter_params)
    segs = ch.segments(req.ignore_growing)
    if req.count_only:
        return pa.table({COUNT_COLUMN: pa.array([count_rows(ch, segs, plan, req.partition_ids)], pa.int64())})
    parts: list[pa.Table] = []
    remaining = req.limit
    for seg in segs:
        if remaining is not None and remaining <= 0:
            break
        rows = matching_rows(ch, seg, plan, req.partition_ids)
        cols = seg.table.select(req.output_fields)
        if rows is None:
            part = cols if remaining is None else cols.slice(0, remaining)
        else:
            if remaining is not None:
                rows = rows[:remaining]
            part = cols.take(pa.array(rows)) if len(rows) else cols.slice(0, 0)
        if part.num_rows:
            parts.append(part)
            if remaining is not None:
                remaining -= part.num_rows
    if not parts:
        schema = arrow_schema(ch.schema)
        return pa.table({c: pa.array([], schema.field(c).type) for c in req.output_fields})
    if len(parts) == 1:
        return parts[0]
    return pa.concat_tables(parts, promote_options="permissive").combine_chunks()


async def query_channel(ch: ServedChannel, req: ShardQuery) -> pa.Table:
    # small lookups and counts are cheaper inline than a thread hop
    segs = ch.segments(req.ignore_growing)
    if req.count_only or sum(s.num_rows for s in segs) <= 50_000:
        return query_channel_sync(ch, req)
    return await asyncio.to_thread(query_channel_sync, ch, req)
