"""Merging the candidates of a channel's segments into the shard's answer, and gathering columns.

Invariants:
- Top-k: per query the k best candidates over all segments, best first;
  equal scores are ordered by primary key for the search iterator (so pages
  can resume after (score, pk)), otherwise by segment and row (stable).
- Primary keys and output columns are gathered segment by segment with one
  Arrow `take` each, then put back in hit order with one more `take`; int64
  keys are gathered with numpy from each segment's zero-copy key array and
  stay numpy (interfaces/hit_keys.py). Output columns never include the
  primary key: a client that asked for it gets the keys. One segment needs
  no reordering, and a one-segment answer without other output columns
  touches no Arrow at all.
- One vectorised sort per merge; no Python loop over hits or queries.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from pelagos.interfaces.hit_keys import HitKeys, empty_keys, key_ranks, take_keys
from pelagos.interfaces.roles import ShardSearchResult
from pelagos.interfaces.types import NO_FIELDS
from pelagos.querynode.search_context import SearchContext
from pelagos.querynode.segment_search import SegmentHits, SegmentScope, knn
from pelagos.schema import CollectionSchema
from pelagos.schema.arrow import arrow_schema

Ids = npt.NDArray[np.int64]


class Candidates:
    """The candidates of every segment of a shard, concatenated."""

    def __init__(self, scopes: list[SegmentScope], hits: list[SegmentHits]) -> None:
        self.scopes = scopes
        if len(hits) == 1:
            only = hits[0]
            self.seg_of = np.zeros(len(only.rows), dtype=np.int64)
            self.qidx, self.scores, self.rows = only.qidx, only.scores, only.rows
            return
        self.seg_of = np.concatenate(
            [np.full(len(h.rows), i, dtype=np.int64) for i, h in enumerate(hits)] or [np.zeros(0, np.int64)]
        )
        self.qidx = np.concatenate([h.qidx for h in hits] or [np.zeros(0, np.int64)])
        self.scores = np.concatenate([h.scores for h in hits] or [np.zeros(0, np.float32)])
        self.rows = np.concatenate([h.rows for h in hits] or [np.zeros(0, np.int64)])

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str, which: Ids | None = None) -> pa.Array:
        """Column `name` of the chosen candidates (all when `which` is None), in that order."""
        return gather(self.scopes, self.seg_of, self.rows, [name], which).column(0).combine_chunks()

    def pks(self, which: Ids | None = None) -> HitKeys:
        seg_of = self.seg_of if which is None else self.seg_of[which]
        rows = self.rows if which is None else self.rows[which]
        numbers = [s.seg.pk_numbers for s in self.scopes]
        if len(numbers) == 1 and numbers[0] is not None:
            return numbers[0][rows]
        if numbers and all(n is not None for n in numbers):
            out = np.empty(len(rows), dtype=np.int64)
            for i in np.unique(seg_of).tolist():  # a loop over segments, not hits
                keys = numbers[i]
                assert keys is not None
                here = seg_of == i
                out[here] = keys[rows[here]]
            return out
        return _gather_arrays([s.seg.pks for s in self.scopes], seg_of, rows)


def _gather_arrays(arrays: list[pa.Array], seg_of: Ids, rows: Ids) -> pa.Array:
    n = len(rows)
    order = np.argsort(seg_of, kind="stable")
    bounds = np.searchsorted(seg_of[order], np.arange(len(arrays) + 1))
    pieces = [
        arrays[i].take(pa.array(rows[order[bounds[i] : bounds[i + 1]]]))
        for i in range(len(arrays))
        if bounds[i + 1] > bounds[i]
    ]
    if not pieces:
        return arrays[0].slice(0, 0) if arrays else pa.array([], pa.int64())
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    return pa.concat_arrays(pieces).take(pa.array(back))


def gather(
    scopes: list[SegmentScope], seg_of: Ids, rows: Ids, columns: list[str], which: Ids | None = None
) -> pa.Table:
    """Columns of the rows (segment seg_of[i], offset rows[i]), in that order."""
    if which is not None:
        seg_of, rows = seg_of[which], rows[which]
    if len(scopes) == 1:
        return scopes[0].seg.table.select(columns).take(pa.array(rows))
    n = len(rows)
    order = np.argsort(seg_of, kind="stable")
    bounds = np.searchsorted(seg_of[order], np.arange(len(scopes) + 1))
    pieces = [
        scopes[i].seg.table.select(columns).take(pa.array(rows[order[bounds[i] : bounds[i + 1]]]))
        for i in range(len(scopes))
        if bounds[i + 1] > bounds[i]
    ]
    if not pieces:
        return empty_columns(scopes[0].seg.schema, columns) if scopes else pa.table({})
    back = np.empty(n, dtype=np.int64)
    back[order] = np.arange(n)
    table = pa.concat_tables(pieces, promote_options="permissive") if len(pieces) > 1 else pieces[0]
    return table.take(pa.array(back))


def empty_columns(schema: CollectionSchema, columns: list[str]) -> pa.Table:
    target = arrow_schema(schema)
    return pa.table({c: pa.array([], target.field(c).type) for c in columns})


def output_names(names: list[str], schema: CollectionSchema) -> list[str]:
    """The output columns a shard gathers for `names`: all but the primary key (that is the keys)."""
    pk = schema.primary_field.name
    return [n for n in names if n != pk]


def empty_result(ctx: SearchContext, schema: CollectionSchema, pk_type: pa.DataType) -> ShardSearchResult:
    names = output_names(ctx.req.output_fields, schema)
    return ShardSearchResult(
        topks=np.zeros(ctx.nq, np.int64),
        pks=empty_keys(pk_type),
        scores=np.zeros(0, np.float32),
        fields=empty_columns(schema, names) if names else NO_FIELDS,
    )


def one_segment_topk(
    scope: SegmentScope, ctx: SearchContext, schema: CollectionSchema, pk_type: pa.DataType
) -> ShardSearchResult | None:
    """A plain top-k over a shard of one segment: the index's answer is the shard's, taken as it
    stands (no candidate lists, no merge). None when it cannot be (ties out of row order), and the
    caller merges."""
    if scope.allowed == 0:
        return empty_result(ctx, schema, pk_type)
    scores, ids = knn(scope, ctx, max(1, min(ctx.req.limit, scope.allowed)))
    valid = ids >= 0
    if ids.shape[1] > 1:
        tied = scores[:, 1:] == scores[:, :-1]
        if tied.any() and (tied & (ids[:, 1:] < ids[:, :-1])).any():
            return None  # equal scores must come in row order, as merge_topk orders them
    if valid.all():
        topks = np.empty(ctx.nq, np.int64)
        topks.fill(ids.shape[1])
        rows, hit_scores = ids.reshape(-1), scores.reshape(-1)
    else:
        topks = valid.sum(axis=1).astype(np.int64)
        rows, hit_scores = ids[valid], scores[valid]
    seg = scope.seg
    numbers = seg.pk_numbers
    pks = numbers[rows] if numbers is not None else seg.pks.take(pa.array(rows))
    names = output_names(ctx.req.output_fields, schema) if ctx.req.output_fields else None
    fields = gather([scope], np.zeros(len(rows), np.int64), rows, names) if names else NO_FIELDS
    return ShardSearchResult(
        topks=topks, pks=pks, scores=hit_scores.astype(np.float32, copy=False), fields=fields
    )


def merge_topk(
    ctx: SearchContext, cands: Candidates, k: int, schema: CollectionSchema, pk_type: pa.DataType
) -> ShardSearchResult:
    nq = ctx.nq
    if len(cands) == 0:
        return empty_result(ctx, schema, pk_type)
    keys = ctx.metric.sort_key(cands.scores)
    if not ctx.is_iterator and _in_merged_order(cands, keys):
        topks = np.bincount(cands.qidx, minlength=nq).astype(np.int64)
        if int(topks.max()) <= k:  # usually one segment: its hits are already the answer
            pks = cands.pks()
            return ShardSearchResult(
                topks=topks,
                pks=pks,
                scores=cands.scores.astype(np.float32, copy=False),
                fields=output_columns(cands, output_names(ctx.req.output_fields, schema), None),
            )
    all_pks: HitKeys | None = None
    if ctx.is_iterator:
        all_pks = cands.pks()
        order = np.lexsort((key_ranks(all_pks), keys, cands.qidx))
    else:
        order = np.lexsort((cands.rows, cands.seg_of, keys, cands.qidx))
    q_sorted = cands.qidx[order]
    starts = np.searchsorted(q_sorted, np.arange(nq))
    rank = np.arange(len(order)) - starts[q_sorted]
    chosen = order[rank < k]
    topks = np.bincount(cands.qidx[chosen], minlength=nq).astype(np.int64)
    return ShardSearchResult(
        topks=topks,
        pks=take_keys(all_pks, chosen) if all_pks is not None else cands.pks(chosen),
        scores=cands.scores[chosen].astype(np.float32),
        fields=output_columns(cands, output_names(ctx.req.output_fields, schema), chosen),
    )


def _in_merged_order(cands: Candidates, keys: npt.NDArray[np.float64]) -> bool:
    """Are the candidates already in the merged order: by query, then key, then segment and row?"""
    if len(cands) < 2:
        return True
    q, seg, rows = cands.qidx, cands.seg_of, cands.rows
    dq = q[1:] - q[:-1]
    dk = keys[1:] - keys[:-1]
    same = (dq == 0) & (dk == 0)
    later = (seg[1:] > seg[:-1]) | ((seg[1:] == seg[:-1]) & (rows[1:] > rows[:-1]))
    return bool(np.all((dq > 0) | ((dq == 0) & (dk > 0)) | (same & later)))


def output_columns(cands: Candidates, names: list[str], chosen: Ids | None) -> pa.Table:
    """Output columns `names` (the primary key not among them) of the chosen candidates."""
    if not names:
        return NO_FIELDS
    return gather(cands.scopes, cands.seg_of, cands.rows, names, chosen)
